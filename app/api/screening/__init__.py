"""Screening runs: start, status, batches, cancel, retry, results, review and export."""
