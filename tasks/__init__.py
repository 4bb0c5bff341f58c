"""Celery side of litscreen: task modules, the worker entry (``tasks.celery``) and the broker transport.

Kept free of side effects: every publishing process imports the transport from this package by dotted path.
"""
