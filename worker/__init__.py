"""Celery for the newsletter: `celery -A worker worker` and `celery -A worker beat`.

The only place that builds the Flask app for Celery (worker/celery.py, where Celery finds it). The tasks
live in newsletter/tasks.py as `@shared_task`s, so the web app hands work off without importing this package.
"""
