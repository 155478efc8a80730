"""Issue 9, finding 7: production settings pass `manage.py check --deploy` with no warning, HTTPS is
enforced (redirect and HSTS) with a documented switch for plain-http checks on the same machine, and
the API schema and docs need a sign-in in production (open in the embedded default).

Production cases start a fresh interpreter, since settings are read once per process."""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse

from accounts import services as accounts

ROOT = Path(__file__).resolve().parent.parent
CLEARED = ("PLATFORM_ENV", "DJANGO_", "DATABASE_URL", "CELERY_", "S3_", "AWS_", "INGEST_", "MEDIA_ROOT", "API_")

# Requests through the test client with production settings: no database is touched on these paths.
PROBE = """
import json, sys, django
django.setup()
from django.test import Client
out = {}
c = Client(HTTP_HOST="example.com")
for name, path, headers in json.loads(sys.argv[1]):
    r = c.get(path, **headers)
    out[name] = {"status": r.status_code, "location": r.get("Location", ""),
                 "hsts": r.get("Strict-Transport-Security", "")}
print(json.dumps(out))
"""
HTTPS = {"HTTP_X_FORWARDED_PROTO": "https"}


def production_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(CLEARED)}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings", PLATFORM_ENV="production", PLATFORM_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50), DJANGO_ALLOWED_HOSTS="example.com",
        DATABASE_URL="postgres://platform:secret@db.internal:5432/platform", **extra,
    )
    return env


def probe(tmp_path, requests, **extra) -> dict:
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(requests)], cwd=ROOT,
                          env=production_env(tmp_path, **extra), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_check_deploy_with_production_settings_exits_clean(tmp_path):
    proc = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                          env=production_env(tmp_path), capture_output=True, text=True, timeout=120)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_production_redirects_to_https_and_sends_hsts(tmp_path):
    out = probe(tmp_path, [["http", "/api/", {}], ["https", "/api/", HTTPS]])
    assert out["http"]["status"] == 301 and out["http"]["location"] == "https://example.com/api/"
    assert out["https"]["status"] == 401  # no redirect behind a proxy that says https
    assert out["https"]["hsts"] == "max-age=31536000; includeSubDomains"


def test_hsts_and_redirect_follow_the_environment(tmp_path):
    out = probe(tmp_path, [["http", "/api/", {}], ["https", "/api/", HTTPS]], DJANGO_SSL_REDIRECT="0",
                DJANGO_HSTS_SECONDS="600", DJANGO_HSTS_INCLUDE_SUBDOMAINS="0", DJANGO_HSTS_PRELOAD="1")
    # The switch for plain-http checks on the server itself (gunicorn on 127.0.0.1).
    assert out["http"]["status"] == 401
    assert out["https"]["hsts"] == "max-age=600; preload"


def test_production_docs_need_a_sign_in(tmp_path):
    paths = [["schema", "/api/schema/", HTTPS], ["docs", "/api/docs/", HTTPS], ["redoc", "/api/redoc/", HTTPS]]
    out = probe(tmp_path, paths)
    assert out["schema"]["status"] == 401
    for name in ("docs", "redoc"):
        assert out[name]["status"] == 302
        assert out[name]["location"].startswith("/accounts/login/?next=/api/")
    out = probe(tmp_path, paths[:1], API_DOCS_PUBLIC="1")
    assert out["schema"]["status"] == 200


DOCS = ("/api/schema/", "/api/docs/", "/api/redoc/")


@pytest.mark.django_db
@pytest.mark.parametrize("path", DOCS)
def test_embedded_docs_are_public(client, path):
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("path", DOCS)
def test_private_docs_need_a_sign_in_of_any_role(client, users, settings, path):
    settings.API_DOCS_PUBLIC = False
    r = client.get(path)
    if path == "/api/schema/":
        assert r.status_code == 401
    else:
        assert r.status_code == 302 and r["Location"] == reverse("login") + "?next=" + path
    client.force_login(users["labeler"])
    assert client.get(path).status_code == 200
    client.logout()
    _token, key = accounts.create_token(users["engineer"], "docs")
    assert client.get("/api/schema/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
