#!/usr/bin/env bash
# Install everything the tests need, run the linter (ruff), run the whole suite twice with coverage:
# on SQLite and on PostgreSQL, and report the coverage of both together; then check that requirements.txt alone runs a Celery worker on Redis
# (scripts/check_production_install.sh). Starts PostgreSQL and Redis when they are installed but
# not answering. Exits non-zero if any of the three fails. Extra arguments go to both pytest runs
# (e.g. scripts/test.sh -x -k quota).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

scripts/venv.sh requirements-dev.txt || exit 1

if [ ! -x /usr/bin/chromium ]; then
    say "Installing Debian's chromium for the browser tests"
    apt_install chromium || exit 1
fi
if command -v dpkg >/dev/null 2>&1 && ! dpkg -s fonts-nanum >/dev/null 2>&1; then
    # A Korean font, so the screenshots the browser tests take show Hangul, not boxes.
    say "Installing a Korean font (fonts-nanum) for the browser screenshots"
    apt_install fonts-nanum || echo "(no Korean font: screenshots will show boxes; tests still run)"
fi

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if ! answers 5432; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
        say "Starting PostgreSQL"
        as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start || true
    fi
fi
if ! answers 6379; then
    if command -v redis-server >/dev/null 2>&1; then
        say "Starting Redis"
        as_root mkdir -p /var/lib/redis /var/log/redis
        as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    fi
fi
for _ in $(seq 30); do answers 5432 && answers 6379 && break; sleep 1; done

mkdir -p test-artifacts

# The linter first (a second or two); a finding fails the run, but the suites still run.
say "Linter (ruff check .)"
.venv/bin/ruff check . 2>&1 | tee test-artifacts/ruff.log
lint_rc=${PIPESTATUS[0]}
# Tests never touch the developer's var/ (SQLite file, media, broker folder).
export PLATFORM_VAR_DIR="$PWD/test-artifacts/var"
unset DATABASE_URL CELERY_BROKER_URL S3_BUCKET PLATFORM_ENV

# Each pass runs on TEST_WORKERS processes (pytest-xdist; default: one a core, at most 4), a test
# file to one process; each process has its own test database. TEST_WORKERS=1 (or 0): one process.
workers="${TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}"
[ "$workers" -gt 4 ] && workers=4
parallel=()
[ "$workers" -gt 1 ] && parallel=(-n "$workers" --dist loadfile)

# pytest's exit status: 0 passed, 5 collected no tests (a failure here), anything else failed.
run_suite() {  # name, log file, pytest args...
    local name="$1" log="$2"; shift 2
    say "Test suite on $name (${workers} processes)"
    .venv/bin/pytest "${parallel[@]}" --durations=25 --cov --cov-append --cov-report= "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    if [ "$rc" -eq 5 ]; then
        echo "pytest collected no tests on $name: counted as a failure"
        rc=1
    fi
    return "$rc"
}

# Coverage of both runs goes into one data file (.coveragerc), reported after the second.
rm -f test-artifacts/.coverage test-artifacts/.coverage.*

# SQLite on a file (as the embedded default runs), not in memory: threads and a worker share it,
# so the labelers' concurrency test runs on SQLite too.
rm -f test-artifacts/test-sqlite.sqlite3*
SQLITE_TEST_NAME="$PWD/test-artifacts/test-sqlite.sqlite3" \
    run_suite SQLite test-artifacts/pytest-sqlite.log "$@"
sqlite_rc=$?

if answers 5432; then
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/platform" \
        run_suite PostgreSQL test-artifacts/pytest-postgres.log "$@"
    postgres_rc=$?
else
    echo "PostgreSQL is not reachable at 127.0.0.1:5432" | tee test-artifacts/pytest-postgres.log
    if [ -n "${CI:-}" ]; then postgres_rc=1; else echo "(skipped locally; CI=true makes this a failure)"; postgres_rc=0; fi
fi

say "Coverage of both runs (line by line: test-artifacts/coverage/index.html)"
.venv/bin/coverage report 2>&1 | tee test-artifacts/coverage.log | tail -n 40
.venv/bin/coverage html -q || true

# requirements.txt alone (no test packages) must run the production path: a worker on Redis.
say "Production install check (requirements.txt alone, a Celery worker on Redis)"
scripts/check_production_install.sh 2>&1 | tee test-artifacts/production-install.log
production_rc=${PIPESTATUS[0]}

say "Summary"
printf 'Linter:     %s  (exit %s)\n' "$(tail -n1 test-artifacts/ruff.log)" "$lint_rc"
printf 'Coverage:   %s\n' "$(grep '^TOTAL' test-artifacts/coverage.log)"
# pytest's closing line (with several processes, a line from a process can follow it).
closing() { grep -E '^=+ .* in [0-9.]+s' "$1" | tail -n1 | grep . || tail -n1 "$1"; }
printf 'SQLite:     %s  (exit %s)\n' "$(closing test-artifacts/pytest-sqlite.log)" "$sqlite_rc"
printf 'PostgreSQL: %s  (exit %s)\n' "$(closing test-artifacts/pytest-postgres.log)" "$postgres_rc"
printf '%s  (exit %s)\n' "$(tail -n1 test-artifacts/production-install.log)" "$production_rc"
if [ "$lint_rc" -ne 0 ] || [ "$sqlite_rc" -ne 0 ] || [ "$postgres_rc" -ne 0 ] || [ "$production_rc" -ne 0 ]; then
    echo "FAILED (linter exit $lint_rc, SQLite exit $sqlite_rc, PostgreSQL exit $postgres_rc, production install exit $production_rc)"
    exit 1
fi
echo "OK: the linter, both runs and the production install check passed"
