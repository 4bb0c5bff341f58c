"""Celery task names. The web process sends tasks by name, so ``app/`` never imports ``tasks/``."""

PING = "litscreen.ping"
SCREEN_BATCH = "litscreen.screening.screen_batch"
FINALIZE_TASK = "litscreen.screening.finalize_task"
DRIFT_CHECK = "litscreen.screening.drift_check"
SWEEP = "litscreen.maintenance.sweep"
CLEAN_CACHE = "litscreen.maintenance.clean_cache"
CLEAN_BROKER = "litscreen.maintenance.clean_broker"
# test and benchmark probes (tasks/diagnostics.py)
DIAG_RECORD_EXECUTION = "litscreen.diagnostics.record_execution"
DIAG_NOOP = "litscreen.diagnostics.noop"
DIAG_STOP_OWN_WORKER = "litscreen.diagnostics.stop_own_worker"
