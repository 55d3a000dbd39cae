"""Celery app configuration shared by publishers and workers."""
