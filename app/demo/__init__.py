"""``litscreen demo``: the whole pipeline on bundled review data, on a private stack of real processes
(command in :mod:`.cli`, run in :mod:`.runner`, its database and processes in :mod:`.stack`,
``--kill-a-worker`` in :mod:`.kill_a_worker`)."""
