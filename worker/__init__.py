"""Celery for the newsletter: `celery -A worker worker` and `celery -A worker beat`.

The Celery app itself is built in worker/celery.py (Celery finds it there), so importing
worker.tasks from the web app never builds a second Flask app.
"""
