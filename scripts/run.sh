#!/usr/bin/env bash
# The embedded platform on this machine: SQLite, media under var/, a Celery worker on the
# filesystem broker, and Django's development server at http://127.0.0.1:8000.
# Ctrl-C (or SIGTERM to this script) stops the server and the worker.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

scripts/venv.sh requirements.txt
export PYTHONUNBUFFERED=1
py=.venv/bin/python
host_port="${RUN_ADDR:-127.0.0.1:8000}"

say "Migrating the database (var/db.sqlite3)"
$py manage.py migrate --no-input -v 0

say "Loading demo data (users, a source, demo photos; safe to repeat)"
$py manage.py seed_demo

worker_pid=""
server_pid=""
stop() {
    trap - EXIT INT TERM
    # Each runs in its own process group (setsid): stop the whole group, reloader child included.
    for pid in $server_pid $worker_pid; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in $server_pid $worker_pid; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    echo "Stopped the server and the Celery worker."
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p var
say "Starting a Celery worker on the filesystem broker (log: var/celery-worker.log)"
setsid .venv/bin/celery -A config worker -l info --pool=threads --concurrency=2 \
    >var/celery-worker.log 2>&1 </dev/null &
worker_pid=$!

say "Serving at http://$host_port/ (Ctrl-C stops the server and the worker)"
setsid $py manage.py runserver "$host_port" </dev/null &
server_pid=$!
# Poll rather than block in `wait`: a signal then reaches the traps within a second.
while kill -0 "$server_pid" 2>/dev/null; do sleep 1; done
wait "$server_pid"  # the server's own exit status (non-zero if, say, the port is taken)
