#!/usr/bin/env bash
# Quickstart 2: set up and run the test suite (SQLite and PostgreSQL, real Redis, SMTP server,
# Celery workers and Chromium). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ensure_venv requirements-dev.txt
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# tests/test_security_headers.py validates docker-compose.yml as a deployer would, with Debian's docker-compose.
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
# tests/test_mail_filters.py scores every mail with the spam filters receiving servers run.
# SpamAssassin as a daemon (spamd, in /usr/sbin) and its client: the rules are loaded once, not once per mail.
[ -x /usr/sbin/spamd ] || command -v spamd >/dev/null 2>&1 || missing+=(spamd)
command -v spamc >/dev/null 2>&1 || missing+=(spamc)
command -v rspamd >/dev/null 2>&1 || missing+=(rspamd)
# ... verifies each mail's DKIM signature with Perl's Mail::DKIM, and tests/test_mail_quality.py runs the Nu HTML
# checker (vnu.jar, from npm's vnu-jar) with Java 17 or later.
perl -MMail::DKIM::Verifier -e 1 >/dev/null 2>&1 || missing+=(libmail-dkim-perl)
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
apt_install "${missing[@]}"

# The mail checks (tests/test_mail_quality.py) run caniemail's data, axe-core and vnu.jar from node_modules.
# --ignore-scripts: vnu-jar's install script would download a Java runtime; Debian's is used instead.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "Installing the mail checks' JavaScript packages (npm ci)"
  npm ci --ignore-scripts --no-audit --no-fund --silent
fi

set +e
python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure, not a pass." >&2
  exit 1
fi
exit "$status"
