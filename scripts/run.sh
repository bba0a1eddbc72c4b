#!/usr/bin/env bash
# Quickstart 1: set up and run the whole product locally on the embedded defaults:
# SQLite under instance/, a broker in a SQLite file, mail written to instance/outbox/.
# Web, worker and scheduler run together with labelled logs; Ctrl-C stops all three.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ensure_venv requirements.txt
say "Migrating the database"
flask --app wsgi db upgrade
port="${WEB_PORT:-5000}"
export WEB_PORT="$port" BASE_URL="${BASE_URL:-http://localhost:$port}"
cat <<MSG

  The newsletter runs at  http://localhost:$port/
  Admin area:             http://localhost:$port/admin/
  Create your admin (in another terminal, from this folder):
      .venv/bin/flask --app wsgi create-admin you@example.com
  Mail goes to instance/outbox/ (see Admin → Outbox) unless SMTP_HOST is set.
  Ctrl-C stops web, worker and scheduler.

MSG
exec honcho --procfile Procfile.dev start
