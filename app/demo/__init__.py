"""``litscreen demo``: the whole pipeline on bundled review data, on a private stack of real processes
(command in :mod:`.cli`, run in :mod:`.runner`, processes in :mod:`.stack`)."""
