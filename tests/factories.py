"""What tests build, in one place: catalogue rows without files, labelers, projects with their
queue and members, and comment texts the rules accept. Fixtures that wrap these live in
tests/conftest.py (`labelers`, `make_project`); import the functions here where a test needs
more than the fixtures give."""
from __future__ import annotations

import hashlib
import itertools

from accounts import services as accounts
from datasets.models import Image
from labeling import services as labeling

LABELER_PASSWORD = "pw-long-enough-1"

# A comment set every default rule accepts.
GOOD = {"reaction": "와 진짜 맛있겠다", "specific": "족발 윤기가 장난 아니네요 쫀득해 보여요"}
# Comments the export must clean (control characters) and keep whole (very long): conftest's
# frozen_snapshot holds one of each.
EXPORT_CONTROL_TEXT = "종소리\x07 들리나요\x1b 정말"
EXPORT_LONG_TEXT = "아주 길고 자세한 코멘트입니다. " * 2000

_project_numbers = itertools.count()


def texts(n) -> dict[str, str]:
    """A distinct, rule-abiding comment set (the own-repeat rule refuses the same text twice)."""
    return {"reaction": f"와 멋지다 {n}", "specific": f"사진 속 풍경이 정말 아름다워요 {n}번"}


def fake_images(source, n, *, category=None, subcategory=None, start=0, **fields) -> list[Image]:
    """Catalogue rows without files (the engine and the pages that list rows never open them);
    `start` keeps the hashes of several batches apart."""
    rows = []
    for i in range(start, start + n):
        digest = hashlib.sha256(f"{source.pk}-{i}".encode()).hexdigest()
        rows.append(Image(
            file=f"images/{i}.jpg", thumbnail=f"thumbs/{i}.jpg", sha256=digest,
            pixel_sha256=hashlib.sha256(digest.encode()).hexdigest(), phash=i, width=10, height=10,
            original_width=10, original_height=10, original_format="JPEG", original_bytes=100,
            category=category, subcategory=subcategory, source=source, licence=source.default_licence, **fields,
        ))
    return Image.objects.bulk_create(rows)


def make_labelers(n: int, *, prefix: str = "lab") -> list:
    """`n` labelers named lab0, lab1, ... with display names "Lab 0", "Lab 1", ..."""
    return [accounts.create_user(f"{prefix}{i}", LABELER_PASSWORD, "labeler", first_name=f"Lab {i}") for i in range(n)]


def make_project(name: str | None = None, *, members=(), created_by=None, **fields):
    """A project (the service's defaults: two comment types, overlap 2, cap 300) whose queue holds
    the catalogue's matching photos, with `members` as its labelers."""
    project = labeling.create_project(name or f"project {next(_project_numbers)}", created_by=created_by, **fields)
    labeling.sync_project_images(project)
    for user in members:
        labeling.add_member(project, user)
    return project
