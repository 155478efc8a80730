#!/usr/bin/env bash
# Does `pip install -r requirements.txt` alone run the production path? In .venv-prod (made from
# requirements.txt and nothing else, so a package that only the dev requirements bring in cannot
# hide a gap) it runs, with PLATFORM_ENV=production on PostgreSQL and Redis (no S3: media in a
# temporary folder): migrate, the deploy checks, gunicorn answering a request, and a folder import
# of two JPEGs queued to a Celery worker started as the README starts it, which must report
# "done: 2 accepted". The last line printed is the verdict; the exit status is non-zero on any
# failure. Without PostgreSQL or Redis it is skipped on a developer's machine and fails under CI=true.
# scripts/test.sh runs it; on its own: scripts/check_production_install.sh
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

started=$SECONDS
verdict() {  # exit status, sentence
    echo "Production install: $2 ($((SECONDS - started)) s)"
    exit "$1"
}

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for service in "PostgreSQL 5432" "Redis 6379"; do
    if ! answers "${service#* }"; then
        if [ -n "${CI:-}" ]; then verdict 1 "FAILED: ${service% *} is not reachable at 127.0.0.1:${service#* }"; fi
        verdict 0 "skipped: ${service% *} is not reachable at 127.0.0.1:${service#* } (CI=true makes this a failure)"
    fi
done

# One run at a time on this machine, whichever clone it runs from: .venv-prod and the Redis
# database below are shared.
exec 9>/tmp/platform-production-install-check.lock
flock -w 300 9 || verdict 1 "FAILED: another check held /tmp/platform-production-install-check.lock for 5 minutes"

VENV=.venv-prod VENV_EXACT=1 scripts/venv.sh requirements.txt \
    || verdict 1 "FAILED: pip could not install requirements.txt into .venv-prod"
py=.venv-prod/bin/python

tmp="$(mktemp -d)"
broker="redis://127.0.0.1:6379/14"  # the tests use 15
db="prodcheck_$$"
admin_url="postgres://postgres@127.0.0.1:5432/postgres"
worker_pid=""
server_pid=""
cleanup() {
    # Each runs in its own process group (setsid): stop the whole group, forked children included.
    for pid in $worker_pid $server_pid; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for pid in $worker_pid $server_pid; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    "$py" -c 'import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    c.execute(f"DROP DATABASE IF EXISTS {sys.argv[2]} WITH (FORCE)")' "$admin_url" "$db" || true
    "$py" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1]).flushdb()' "$broker" || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Everything a production installation must give, bar S3 (README, "Production").
export PLATFORM_ENV=production
export DJANGO_SECRET_KEY="production-install-check-$(head -c 48 /dev/urandom | base64 | tr -d "\n/+=")"  # Django wants 50+ characters
export DJANGO_ALLOWED_HOSTS=127.0.0.1
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
export CELERY_BROKER_URL="$broker"
export PLATFORM_VAR_DIR="$tmp/var" MEDIA_ROOT="$tmp/media"
unset S3_BUCKET CELERY_TASK_ALWAYS_EAGER INGEST_ALLOWED_ROOTS  # the commands are trusted without it
export PYTHONUNBUFFERED=1

fail() {  # step, log file: show the log's end, then the verdict with the log's last line
    echo "--- last lines of $2:"
    tail -n 30 "$2"
    verdict 1 "FAILED: $1: $(grep -v '^[[:space:]]*$' "$2" | tail -n1 | sed 's/^[[:space:]]*//')"
}

say "Creating database $db; migrating"
"$py" -c 'import sys, psycopg
with psycopg.connect(sys.argv[1], autocommit=True) as c:
    c.execute(f"CREATE DATABASE {sys.argv[2]}")' "$admin_url" "$db" >"$tmp/createdb.log" 2>&1 \
    || fail "could not create database $db" "$tmp/createdb.log"
"$py" manage.py migrate --no-input -v 0 >"$tmp/migrate.log" 2>&1 || fail "manage.py migrate" "$tmp/migrate.log"
"$py" manage.py check --deploy --fail-level WARNING >"$tmp/check.log" 2>&1 || fail "manage.py check --deploy" "$tmp/check.log"

say "Starting gunicorn (as the README does) and asking /api/ for a 401"
setsid .venv-prod/bin/gunicorn config.wsgi --bind 127.0.0.1:0 --workers 1 >"$tmp/gunicorn.log" 2>&1 </dev/null 9>&- &
server_pid=$!
port=""
for _ in $(seq 100); do
    port="$(sed -n 's/.*Listening at: http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$tmp/gunicorn.log")"
    [ -n "$port" ] || ! kill -0 "$server_pid" 2>/dev/null && break
    sleep 0.2
done
[ -n "$port" ] || fail "gunicorn did not start" "$tmp/gunicorn.log"
# As the TLS proxy in front of it would (production redirects plain http to https).
"$py" -c 'import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(urllib.request.Request(sys.argv[1], headers={"X-Forwarded-Proto": "https"}), timeout=30)
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code == 401 else f"GET /api/ answered {e.code}, not 401")
sys.exit("GET /api/ answered 200 without credentials")' "http://127.0.0.1:$port/api/" >>"$tmp/gunicorn.log" 2>&1 \
    || fail "gunicorn did not serve the API" "$tmp/gunicorn.log"

say "Starting a Celery worker on Redis (as the README does; prefork pool)"
.venv-prod/bin/celery -A config purge -f >"$tmp/purge.log" 2>&1 || fail "celery purge on Redis" "$tmp/purge.log"
# The README's command; two processes rather than one per CPU, enough for two files.
setsid .venv-prod/bin/celery -A config worker -l info --concurrency=2 --hostname "prodcheck-$$@%h" \
    >"$tmp/worker.log" 2>&1 </dev/null 9>&- &
worker_pid=$!
for _ in $(seq 300); do
    grep -q ' ready\.' "$tmp/worker.log" && break
    kill -0 "$worker_pid" 2>/dev/null || fail "the Celery worker died at start" "$tmp/worker.log"
    sleep 0.2
done
grep -q ' ready\.' "$tmp/worker.log" || fail "the Celery worker was not ready within 60 s" "$tmp/worker.log"

say "Importing two JPEGs through the worker (ingest_folder --queue)"
mkdir -p "$tmp/photos"
"$py" -c 'import sys
from PIL import Image
for i, colour in enumerate([(200, 90, 40), (40, 120, 200)]):
    im = Image.new("RGB", (320, 240), colour)
    im.paste((255 - 60 * i, 230, 60 * i), (40 + 80 * i, 30, 160 + 80 * i, 200))
    im.save(f"{sys.argv[1]}/photo-{i}.jpg", quality=90)' "$tmp/photos" || verdict 1 "FAILED: could not draw the test JPEGs"
"$py" manage.py ingest_folder "$tmp/photos" --source "Production install check" --licence cc0-1.0 \
    --category food --queue --timeout 60 -v 0 >"$tmp/ingest.log" 2>&1 || fail "ingest_folder --queue" "$tmp/ingest.log"
cat "$tmp/ingest.log"
grep -q 'done: 2 accepted' "$tmp/ingest.log" || fail "the import did not report 'done: 2 accepted'" "$tmp/ingest.log"

verdict 0 "OK: requirements.txt alone migrates, serves and runs an import on a Celery worker over Redis and PostgreSQL"
