"""A crowd of labelers, each in its own thread with its own database connection, asks for work and
submits until none is left; then the engine's promises are checked on what the database holds.

PostgreSQL: 32 labelers (plus a second browser tab for each small-cap labeler).
SQLite: 4 labelers, on a file database (see `sqlite_file_db`).
"""
from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.db import connection

from accounts import services as accounts
from datasets.models import Licence, Source
from labeling import services
from labeling.models import Assignment, AssignmentStatus, Comment, ProjectImage, ProjectMember
from tests.factories import fake_images

from .conftest import require_service

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def run_crowd(*, labelers: int, photos: int, small_caps: dict[int, int], tabs: int = 1, overlap: int = 2,
              check_caps_bind: bool = False):
    source = Source.objects.create(kind="upload", name="crowd", default_licence=Licence.objects.get(code="cc-by-4.0"))
    fake_images(source, photos)
    project = services.create_project("crowd", overlap=overlap)
    services.sync_project_images(project)
    users = [accounts.create_user(f"crowd{i}", "pw-long-enough-1", "labeler") for i in range(labelers)]
    for i, user in enumerate(users):
        services.add_member(project, user, cap_override=small_caps.get(i))

    # Small-cap labelers work in `tabs` browser tabs at once: their cap must hold across tabs.
    workers = [(user, 0) for user in users] + [
        (users[i], tab) for i in small_caps for tab in range(1, tabs)
    ]
    barrier = threading.Barrier(len(workers))
    accepted: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def work(user, tab):
        n = 0
        try:
            barrier.wait()
            while True:
                try:
                    a = services.next_assignment(project, user)
                except (services.CapReached, services.NoWorkLeft):
                    return
                texts = {"reaction": f"멋지다 {user.pk} {tab} {n}", "specific": f"사진이 정말 좋네요 {user.pk}-{tab}-{n}"}
                n += 1
                # Two tabs may hold the same lease: the second submit returns the stored set.
                services.submit(a, user, texts)
                with lock:
                    accepted.append(a.pk)
        except Exception as e:  # noqa: BLE001 - reported below with the labeler
            with lock:
                errors.append(f"{user.username}/{tab}: {e!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=w) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    # Every photo has exactly `overlap` submitted comment sets from distinct labelers.
    per_image = Counter(
        Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED).values_list("image_id", flat=True)
    )
    queue = ProjectImage.objects.filter(project=project)
    assert queue.count() == photos
    assert all(per_image[pi.image_id] == overlap for pi in queue), Counter(per_image.values())
    assert set(queue.values_list("slots_taken", "submitted_count")) == {(overlap, overlap)}
    assert not Assignment.objects.filter(project=project, status=AssignmentStatus.LEASED).exists()
    # No labeler past their cap.
    per_labeler = Counter(
        Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED).values_list("labeler_id", flat=True)
    )
    for member in ProjectMember.objects.filter(project=project).select_related("project"):
        assert per_labeler[member.user_id] <= member.cap, member.user.username
    if check_caps_bind:  # with many small-cap labelers, some surely reach their cap
        assert any(per_labeler[users[i].pk] == cap for i, cap in small_caps.items())
    # No (image, labeler) pair twice.
    pairs = Counter(Assignment.objects.filter(project=project).values_list("image_id", "labeler_id"))
    assert max(pairs.values()) == 1
    # Every accepted submission is stored, with one comment per type.
    assert set(accepted) == set(
        Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED).values_list("pk", flat=True)
    )
    assert Comment.objects.filter(assignment__project=project).count() == 2 * photos * overlap


def test_crowd_on_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the 32-labeler crowd runs on PostgreSQL (DATABASE_URL=postgres://...)")
    settings = connection.settings_dict
    require_service(settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432), "PostgreSQL")
    run_crowd(labelers=32, photos=150, small_caps={i: 3 for i in range(0, 32, 4)}, tabs=2, check_caps_bind=True)


def test_crowd_on_sqlite():
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite crowd runs when the suite runs on SQLite")
    if connection.creation.is_in_memory_db(connection.settings_dict["NAME"]):
        pytest.skip(
            "threads on an in-memory shared-cache SQLite database get table locks that do not wait "
            "('database table is locked'); run with SQLITE_TEST_NAME=/tmp/test.sqlite3 for a file database"
        )
    run_crowd(labelers=4, photos=30, small_caps={0: 5}, tabs=2)
