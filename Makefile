# Shortcuts for the README's two set-up commands (scripts/run.sh and scripts/test.sh, which need
# nothing but bash, so they also work on a machine without make).
.PHONY: run test

# Install, migrate, load demo data, start a Celery worker and serve at http://127.0.0.1:8000.
run:
	@bash scripts/run.sh

# Install everything (chromium too) and run the whole suite on SQLite and on PostgreSQL.
test:
	@bash scripts/test.sh
