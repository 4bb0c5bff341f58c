"""Clinical-record extraction (``dc``): datasets from CSV/XLSX, their health check, field schemas, accuracy
and export. The ``dc_extraction`` task kind itself lives in ``app/services/kinds/dc_extraction.py``."""
