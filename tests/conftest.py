"""Shared fixtures: a user per role, a source, generated images, API clients.

Services the suite talks to (PostgreSQL, Redis, moto's S3) are real; `require_service` skips a
test when one is missing on a developer's machine, and fails it under CI=true.
"""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw

ROLES = ("labeler", "planner", "engineer", "admin")
PASSWORD = "correct-horse-battery"


def require_service(host: str, port: int, name: str) -> None:
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        message = f"{name} is not reachable at {host}:{port}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI=true: services must be running)")
        pytest.skip(message)


def pytest_runtest_setup(item):
    """`@pytest.mark.once`: what the test proves does not depend on the database, and it is slow,
    so of scripts/test.sh's two runs only the SQLite one runs it."""
    if item.get_closest_marker("once"):
        from django.conf import settings

        if "sqlite" not in settings.DATABASES["default"]["ENGINE"]:
            pytest.skip("marked `once`: runs in the SQLite run only (what it proves does not depend on the database)")


def _transactional(item) -> bool:
    marker = item.get_closest_marker("django_db")
    in_marker = marker is not None and bool(marker.kwargs.get("transaction", marker.args[0] if marker.args else False))
    return in_marker or "live_server" in getattr(item, "fixturenames", ())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After a transactional test's flush, put the migrated data back (the same rows, same keys).
    pytest-django runs transactional tests after the others, but with the suite spread over
    processes one file at a time (scripts/test.sh), a file's transactional tests can come before
    another file's ordinary ones in the same process, which expect the seeded categories and
    licences. (Browser tests also need it within their own files: Playwright's thread hands out
    connection wrappers of its own, see tests/browser/conftest.py.)"""
    yield
    if not _transactional(item):
        return
    from django.db import connections
    from pytest_django.plugin import blocking_manager_key

    with item.config.stash[blocking_manager_key].unblock():
        for conn in connections.all(initialized_only=True):
            contents = getattr(conn, "_test_serialized_contents", None)
            # Only into the test database: a wrapper made inside Playwright's context can point at
            # the configured (real) database name.
            if contents and conn.settings_dict["NAME"] == conn.creation._get_test_db_name():
                conn.creation.deserialize_db_from_string(contents)


def fresh_python(code: str, cwd: Path, tmp_path: Path, *, timeout: int = 300, env: dict | None = None) -> dict:
    """Run `code` in a new interpreter that knows none of our code (isolated mode: no cwd, no
    PYTHONPATH, no user site on sys.path; no PYTHON* or DJANGO* variables); it prints one JSON
    line last, returned. `env` adds variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "DJANGO"))}
    clean.update(HF_HOME=str(tmp_path / "hf"), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1",
                 HF_HUB_DISABLE_TELEMETRY="1", **(env or {}))
    done = subprocess.run([sys.executable, "-I", "-c", textwrap.dedent(code)], cwd=cwd, env=clean,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(autouse=True)
def _eager_celery():
    """Tasks run in the test's own thread unless a test starts a real worker. The Celery app
    reads Django settings once, so this sets the app's own config too."""
    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Every test writes media to its own folder (unless it configures S3 itself)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.EXPORT = {**settings.EXPORT, "ROOT": str(tmp_path / "exports")}  # local exports likewise
    settings.RUNS = {**settings.RUNS, "ROOT": str(tmp_path / "runs")}  # and run folders
    settings.INGEST = {**settings.INGEST, "URL_ALLOW_PRIVATE": True, "ALLOWED_ROOTS": [str(tmp_path)]}
    settings.CELERY_TASK_ALWAYS_EAGER = True
    # No automatic curation run after imports and comment sets (eager, they would run inside every
    # test that imports or labels): the tests of those runs turn them on.
    settings.CURATION = {**settings.CURATION, "RUN_AFTER_IMPORT": False, "TEXT_RUN_EVERY_SETS": 0}
    # A fast hasher: the real one costs ~0.3 s per user created.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def users(db):
    from accounts import services

    return {role: services.create_user(f"{role}1", PASSWORD, role) for role in ROLES}


@pytest.fixture
def licence(db):
    from datasets.models import Licence

    return Licence.objects.get(code="cc-by-4.0")


@pytest.fixture
def source(db, licence):
    from datasets.models import Source

    return Source.objects.create(kind="upload", name="Test uploads", default_licence=licence)


def make_photo(width: int = 640, height: int = 480, seed: int = 0, fmt: str = "JPEG", **save_kwargs) -> bytes:
    """A photo-like image (gradient, noise, shapes): each seed gives different pixels."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x / width * 200 + 30, y / height * 180 + 40, (x + y) / (width + height) * 150 + 60], -1)
    base += rng.normal(0, 6, (height, width, 3))
    img = PILImage.fromarray(base.clip(0, 255).astype("uint8"))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(10, max(11, min(width, height) // 3)))
        draw.ellipse([x0, y0, x0 + r, y0 + r], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    buf = io.BytesIO()
    img.save(buf, fmt, **save_kwargs)
    return buf.getvalue()


@pytest.fixture
def photo():
    return make_photo


@pytest.fixture
def api(users):
    """api('planner') -> a DRF APIClient logged in as that role."""
    from rest_framework.test import APIClient

    def client(role: str | None = None):
        c = APIClient()
        if role:
            c.force_authenticate(users[role])
        return c

    return client


@pytest.fixture
def food(db):
    """The seeded "food" category (datasets/migrations/0002)."""
    from datasets.models import Category

    return Category.objects.get(slug="food")


@pytest.fixture
def people(db):
    """The seeded "people" category."""
    from datasets.models import Category

    return Category.objects.get(slug="people")


@pytest.fixture
def labelers(db):
    """Four labelers, lab0..lab3 ("Lab 0".."Lab 3"); slice where a test wants fewer."""
    from tests.factories import make_labelers

    return make_labelers(4)


@pytest.fixture
def make_project(db, source, labelers):
    """make(n_images=3, *, overlap=2, cap=300, category=None, members=labelers, ...): `n_images`
    new catalogue rows (without files), then a project over the catalogue with its queue and
    members. Each call's rows and name are its own."""
    import itertools

    from tests.factories import fake_images
    from tests.factories import make_project as build

    counter = itertools.count()

    def make(n_images=3, *, overlap=2, cap=300, category=None, members=None, start=None, image_fields=None, **fields):
        n = next(counter)
        fake_images(source, n_images, start=n * 1000 if start is None else start,
                    **{"category": category, **(image_fields or {})})
        return build(overlap=overlap, cap_per_labeler=cap, members=labelers if members is None else members, **fields)

    return make


@pytest.fixture
def frozen_snapshot(make_project, labelers, food, people):
    """A frozen snapshot of 12 photos (6 food, 6 people; real JPEGs in storage, 160x120 and
    120x160) with two comment sets each (48 comments: 24 train, 12 val, 12 test); one comment
    with control characters (factories.EXPORT_CONTROL_TEXT), one very long (EXPORT_LONG_TEXT),
    one without a guideline version; 3 val and 3 test photos."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from datasets.models import Image
    from labeling import services as labeling
    from labeling.models import Comment
    from labeling.snapshots import freeze_snapshot
    from tests.factories import EXPORT_CONTROL_TEXT, EXPORT_LONG_TEXT, fake_images
    from tests.test_snapshots import label_all

    project = make_project(6, category=food, members=labelers[:2])
    fake_images(project.queue.first().image.source, 6, category=people, start=5000)
    labeling.sync_project_images(project)
    for i, image in enumerate(Image.objects.order_by("sha256")):
        width, height = (160, 120) if i % 2 else (120, 160)
        default_storage.save(image.file.name, ContentFile(make_photo(width, height, seed=i, quality=90)))
        Image.objects.filter(pk=image.pk).update(width=width, height=height)
    label_all(project, labelers[:2])
    comments = list(Comment.objects.order_by("pk"))
    Comment.objects.filter(pk=comments[3].pk).update(text=EXPORT_CONTROL_TEXT)
    Comment.objects.filter(pk=comments[5].pk).update(text=EXPORT_LONG_TEXT)
    Comment.objects.update(guideline_version=2)
    Comment.objects.filter(pk=comments[-1].pk).update(guideline_version=None)
    return freeze_snapshot("food", projects=[project], counts={"val": 3, "test": 3}, seed=3)
