"""The terminal client: an HTTP client for a running service (:mod:`.client`), the ``litscreen import``,
``screen``, ``watch`` and ``export`` commands (:mod:`.commands`) and the live progress bar (:mod:`.progress`)."""
