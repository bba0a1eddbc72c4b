#!/usr/bin/env bash
# Quickstart 2: set up and run the test suite (SQLite and PostgreSQL, real Redis, SMTP server,
# Celery workers and Chromium). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ensure_venv requirements-dev.txt
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
apt_install "${missing[@]}"

set +e
python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass." >&2
  exit 1
fi
exit "$status"
