"""feedpipe's async core: one module per pipeline stage. Imports no Celery."""
