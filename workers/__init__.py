"""Celery glue and the `feedpipe` command. The pipeline itself lives in ``pipeline``."""
