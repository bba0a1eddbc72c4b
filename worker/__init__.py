"""Celery for the newsletter: `celery -A worker worker` and `celery -A worker beat`, or the same started without
Celery's command line: `python -m worker` (worker/__main__.py) and `python -m worker.beat` (worker/beat.py).

The only place that builds the Flask app for Celery (worker/celery.py, where Celery finds it). The tasks
live in newsletter/tasks.py as `@shared_task`s, so the web app hands work off without importing this package.
"""
