# The production image: one image for web (gunicorn), worker and beat. Secrets never enter it: they are
# mounted at run time (docker-compose.yml, /run/secrets), and .dockerignore keeps keys, .env, tests, benches,
# node_modules and instance/ out of the build context.
FROM python:3.11.10-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    APP_ENV=production \
    INSTANCE_PATH=/app/instance

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
RUN useradd --create-home --uid 10001 newsletter \
    && mkdir -p /app/instance \
    && chown -R newsletter:newsletter /app/instance
USER newsletter

EXPOSE 8000
# Workers, timeouts and logging live in gunicorn.conf.py; only the address is given here.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "wsgi:app"]
