"""Test helpers: database provisioning and real subprocesses (workers, servers)."""
