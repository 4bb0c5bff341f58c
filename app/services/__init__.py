"""Business logic, callable without Flask request handling or Celery."""
