#!/bin/sh
# The compose `backup` service (docker-compose.yml), in the postgres image so pg_dump matches the server.
# Once at start and then every BACKUP_EVERY_HOURS (24): pg_dump --format=custom (what `flask restore` and
# pg_restore read) to a temporary name, mode 0600, renamed into backups/daily/ only when complete. A copy of
# Sunday's is kept in backups/weekly/. Keeps BACKUP_KEEP_DAILY (7) daily and BACKUP_KEEP_WEEKLY (8) weekly
# files, and records the backup in the heartbeats table, where `flask doctor` reads its age.
set -u
umask 077
export PGHOST=postgres PGUSER=newsletter PGDATABASE=newsletter
PGPASSWORD="$(cat /run/secrets/postgres_password)"
export PGPASSWORD
mkdir -p /backups/daily /backups/weekly

keep_newest() {  # keep_newest FOLDER COUNT: delete all but the COUNT newest dumps
    ls -1t "$1"/newsletter-*.dump 2>/dev/null | tail -n +"$(($2 + 1))" | while read -r old; do rm -f "$old"; done
}

back_up() {
    name="newsletter-$(date -u +%Y-%m-%d).dump"
    partial="/backups/.$name.partial"
    pg_dump --format=custom --file="$partial" || { rm -f "$partial"; return 1; }
    chmod 600 "$partial" && mv "$partial" "/backups/daily/$name" || return 1
    if [ "$(date -u +%u)" = 7 ]; then
        cp -p "/backups/daily/$name" "/backups/weekly/$name"
    fi
    keep_newest /backups/daily "${BACKUP_KEEP_DAILY:-7}"
    keep_newest /backups/weekly "${BACKUP_KEEP_WEEKLY:-8}"
    psql --quiet --command "INSERT INTO heartbeats (name, beat_at) VALUES ('backup', now() AT TIME ZONE 'utc')
        ON CONFLICT (name) DO UPDATE SET beat_at = EXCLUDED.beat_at"
    echo "backup written: /backups/daily/$name"
}

until pg_isready --quiet; do sleep 5; done
while true; do
    back_up || echo "BACKUP FAILED: the previous backups are untouched" >&2
    sleep "$((${BACKUP_EVERY_HOURS:-24} * 3600))"
done
