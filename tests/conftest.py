"""Shared fixtures: a user per role, a source, generated images, API clients.

Services the suite talks to (PostgreSQL, Redis, moto's S3) are real; `require_service` skips a
test when one is missing on a developer's machine, and fails it under CI=true.
"""
from __future__ import annotations

import io
import os
import socket

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
    settings.INGEST = {**settings.INGEST, "URL_ALLOW_PRIVATE": True, "ALLOWED_ROOTS": [str(tmp_path)]}
    settings.CELERY_TASK_ALWAYS_EAGER = True
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
