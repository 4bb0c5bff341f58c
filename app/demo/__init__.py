"""The terminal side of litscreen: ``litscreen demo`` (the whole pipeline on bundled review data) and the
terminal client commands ``import``, ``screen``, ``watch`` and ``export``."""
