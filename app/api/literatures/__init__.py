"""Bibliographic records of a project: import (JSON or file upload) and listing."""
