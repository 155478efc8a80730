"""Settings come from environment variables alone; production mode has no committed secrets.

Each case starts a fresh interpreter, since settings are read once per process.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "engine": s.DATABASES["default"]["ENGINE"], "db_name": s.DATABASES["default"]["NAME"],
    "db_host": s.DATABASES["default"].get("HOST"), "storage": s.STORAGES["default"]["BACKEND"],
    "storage_options": s.STORAGES["default"].get("OPTIONS", {}), "broker": s.CELERY_BROKER_URL,
    "debug": s.DEBUG, "secret": s.SECRET_KEY, "hosts": s.ALLOWED_HOSTS, "csrf": s.CSRF_TRUSTED_ORIGINS,
    "commercial_only": s.INGEST["COMMERCIAL_ONLY"], "longest_side": s.INGEST["STORED_LONGEST_SIDE"],
}))
"""
# Everything the settings read that might be set in the shell running the tests.
CLEARED = ("PLATFORM_ENV", "DJANGO_", "DATABASE_URL", "CELERY_", "S3_", "AWS_", "INGEST_", "MEDIA_ROOT")


def setup_django(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", PLATFORM_VAR_DIR=str(tmp_path / "var"), **env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


def settings_for(tmp_path, **env) -> dict:
    proc = setup_django(tmp_path, **env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_embedded_default_needs_no_server(tmp_path):
    s = settings_for(tmp_path)
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["db_name"].startswith(str(tmp_path / "var"))
    assert s["storage"] == "django.core.files.storage.FileSystemStorage"
    assert s["broker"] == "filesystem://"
    assert s["debug"] is True


@pytest.mark.parametrize(
    "env, missing",
    [({}, "DJANGO_SECRET_KEY"), ({"DJANGO_SECRET_KEY": "s3cret-from-the-vault"}, "DJANGO_ALLOWED_HOSTS")],
)
def test_production_refuses_to_start_without_its_secrets(tmp_path, env, missing):
    proc = setup_django(tmp_path, PLATFORM_ENV="production", **env)
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr
    assert f"PLATFORM_ENV=production needs {missing}" in proc.stderr


def test_production_uses_the_given_secret_hosts_database_broker_and_s3(tmp_path):
    s = settings_for(
        tmp_path,
        PLATFORM_ENV="production",
        DJANGO_SECRET_KEY="s3cret-from-the-vault",
        DJANGO_ALLOWED_HOSTS="data.example.com, api.example.com",
        DJANGO_CSRF_TRUSTED_ORIGINS="https://data.example.com",
        DATABASE_URL="postgres://app:pw@db.internal:5432/platform",
        CELERY_BROKER_URL="redis://redis.internal:6379/0",
        S3_BUCKET="dataset-media",
        S3_PREFIX="media",
        AWS_S3_ENDPOINT_URL="https://s3.example.com",
        S3_SIGNED_URLS="false",
        INGEST_LONGEST_SIDE="2048",
    )
    assert s["secret"] == "s3cret-from-the-vault"
    assert s["debug"] is False
    assert s["hosts"] == ["data.example.com", "api.example.com"]
    assert s["csrf"] == ["https://data.example.com"]
    assert s["engine"] == "django.db.backends.postgresql"
    assert (s["db_name"], s["db_host"]) == ("platform", "db.internal")
    assert s["broker"] == "redis://redis.internal:6379/0"
    assert s["storage"] == "storages.backends.s3.S3Storage"
    opts = s["storage_options"]
    assert (opts["bucket_name"], opts["location"], opts["endpoint_url"]) == ("dataset-media", "media", "https://s3.example.com")
    assert opts["querystring_auth"] is False
    assert s["longest_side"] == 2048


def test_database_url_alone_selects_postgresql(tmp_path):
    s = settings_for(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/platform")
    assert s["engine"] == "django.db.backends.postgresql"
    assert s["storage"] == "django.core.files.storage.FileSystemStorage"


def test_rabbitmq_broker_and_s3_storage_each_by_one_variable(tmp_path):
    s = settings_for(tmp_path, CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//", S3_BUCKET="media-bucket")
    assert s["broker"] == "amqp://guest:guest@127.0.0.1:5672//"
    assert s["storage"] == "storages.backends.s3.S3Storage"
    assert s["engine"] == "django.db.backends.sqlite3"


def test_bad_numbers_and_switches_are_each_named_by_manage_py_check(tmp_path):
    """`manage.py check` lists every bad variable at once with the form it needs (config.E001);
    the settings still load (each falls back to its default), so the check can run at all."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", PLATFORM_VAR_DIR=str(tmp_path / "var"),
                INGEST_MAX_PIXELS="50M", DJANGO_DEBUG="maybe", LABELING_MAX_COMMENT_TYPES="0")
    proc = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=base, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode != 0
    out = proc.stderr + proc.stdout
    assert "ValueError" not in out and "Traceback" not in out
    assert "(config.E001) INGEST_MAX_PIXELS='50M' is not valid." in out
    assert "Set INGEST_MAX_PIXELS to a whole number of at least 1" in out
    assert "(config.E001) DJANGO_DEBUG='maybe' is not valid." in out
    assert "Set DJANGO_DEBUG to one of 1/true/yes/on or 0/false/no/off" in out
    assert "(config.E001) LABELING_MAX_COMMENT_TYPES='0' is not valid." in out
    assert "identified 3 issues" in out


def test_production_refuses_to_start_with_a_bad_number_naming_it(tmp_path):
    proc = setup_django(tmp_path, PLATFORM_ENV="production", DJANGO_SECRET_KEY="s3cret-from-the-vault",
                        DJANGO_ALLOWED_HOSTS="example.org", INGEST_MAX_PIXELS="50M")
    assert proc.returncode != 0
    assert "ImproperlyConfigured" in proc.stderr and "ValueError" not in proc.stderr
    assert "INGEST_MAX_PIXELS='50M' is not valid: expected a whole number of at least 1" in proc.stderr


def test_good_numbers_still_parse(tmp_path):
    s = settings_for(tmp_path, INGEST_LONGEST_SIDE="2_048")
    assert s["longest_side"] == 2048


def test_a_bad_database_url_and_log_level_are_named_without_the_password(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED + ("LOG_LEVEL",))}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", PLATFORM_VAR_DIR=str(tmp_path / "var"),
                DATABASE_URL="postgress://app:hunter2@db/app", LOG_LEVEL="LOUD")
    proc = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=base, capture_output=True,
                          text=True, timeout=120)
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0 and "Traceback" not in out
    assert "(config.E001) DATABASE_URL='postgress://...' is not valid." in out and "hunter2" not in out
    assert "Set LOG_LEVEL to one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in out


def test_a_misspelt_platform_env_refuses_to_start(tmp_path):
    proc = setup_django(tmp_path, PLATFORM_ENV="prod")
    assert proc.returncode != 0
    assert "PLATFORM_ENV='prod' is not valid: expected embedded or production." in proc.stderr
