"""The issue's concurrency test over a real HTTP server: a crowd of labelers, each in its own
thread with its own HTTP session and API token, asks for work and submits until none is left
(POST /api/projects/{id}/next/ and /api/assignments/{id}/submit/, a few skips and retried
submits); then the engine's promises are checked on what the database holds.

PostgreSQL (DATABASE_URL=postgres://...): 64 labelers. SQLite: 8, on a file database
(SQLITE_TEST_NAME=/tmp/x.sqlite3; the in-memory test database cannot serve several threads).

The server is pytest-django's `live_server` (Django's threaded WSGI server on a socket). Each
request in flight holds a database connection, so at most SERVER_SLOTS requests are handled at
once (the others wait in their keep-alive connection, as they would for a production server's
fixed pool of workers); that keeps PostgreSQL well under its max_connections of 100.
"""
from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import pytest
import requests
from django.db import connection

from accounts import services as accounts
from datasets.models import Licence, Source
from labeling import services
from labeling.models import Assignment, AssignmentStatus, Comment, ProjectImage, ProjectMember
from tests.factories import fake_images

from .conftest import require_service

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SERVER_SLOTS = int(os.environ.get("HTTP_CROWD_SERVER_SLOTS", "32"))


class Bounded:
    """WSGI middleware: at most `slots` requests inside the application at once. A slot is held
    until the response is closed, which is when Django closes the request's database connection."""

    def __init__(self, app, slots: int):
        self.app = app
        self.slots = threading.BoundedSemaphore(slots)

    def __call__(self, environ, start_response):
        self.slots.acquire()
        try:
            response = self.app(environ, start_response)
        except BaseException:
            self.slots.release()
            raise
        close = response.close

        def close_and_release():
            try:
                close()
            finally:
                self.slots.release()

        response.close = close_and_release
        return response


def run_http_crowd(base_url: str, *, labelers: int, photos: int, overlap: int, cap: int,
                   small_caps: dict[int, int], skippers: set[int]):
    source = Source.objects.create(kind="upload", name="http crowd", default_licence=Licence.objects.get(code="cc-by-4.0"))
    fake_images(source, photos)
    project = services.create_project("http crowd", overlap=overlap, cap_per_labeler=cap)
    services.sync_project_images(project)
    users, keys = [], []
    for i in range(labelers):
        user = accounts.create_user(f"http{i}", "pw-long-enough-1", "labeler")
        services.add_member(project, user, cap_override=small_caps.get(i))
        users.append(user)
        keys.append(accounts.create_token(user, "crowd")[1])

    lock = threading.Lock()
    barrier = threading.Barrier(labelers)
    accepted: list[int] = []  # assignment ids the server answered 201 for
    repeats: list[int] = []  # retried submits the server answered 200 for
    skipped: list[int] = []
    errors: list[str] = []
    final_states: Counter = Counter()
    idle = {"n": 0}  # workers whose last `next` said no_work (they hold no lease)
    done = {"n": 0}

    def work(i: int):
        rng = random.Random(i)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {keys[i]}"
        skip_at = rng.randrange(3) if i in skippers else -1
        n = 0
        waiting = False
        try:
            barrier.wait()
            while True:
                r = session.post(f"{base_url}/api/projects/{project.pk}/next/", json={"count": 1}, timeout=60)
                if r.status_code != 200:
                    raise AssertionError(f"next: {r.status_code} {r.text[:300]}")
                body = r.json()
                if body["state"] == "no_work":
                    # Work may come back while others hold leases (a skip frees a slot): wait until
                    # every labeler is idle or finished, then no lease is out and no_work is final.
                    with lock:
                        if not waiting:
                            waiting = True
                            idle["n"] += 1
                        if idle["n"] + done["n"] == labelers:
                            final_states["no_work"] += 1
                            return
                    time.sleep(0.05)
                    continue
                with lock:
                    if waiting:
                        waiting = False
                        idle["n"] -= 1
                if body["state"] == "cap_reached":
                    assert body["assignments"] == [] and body["progress"]["done"] == body["progress"]["cap"], body
                    final_states["cap_reached"] += 1
                    return
                (a,) = body["assignments"]
                if n == skip_at:
                    skip_at = -1
                    r = session.post(f"{base_url}/api/assignments/{a['id']}/skip/", timeout=60)
                    if r.status_code != 200:
                        raise AssertionError(f"skip: {r.status_code} {r.text[:300]}")
                    with lock:
                        skipped.append(a["id"])
                    continue
                texts = {"reaction": f"와 멋지다 {n}",
                         "specific": f"사진 속 풍경이 정말 아름다워요 {i}-{n}번"}
                headers = {"Idempotency-Key": f"{i}-{n}"}
                r = session.post(f"{base_url}/api/assignments/{a['id']}/submit/", json={"comments": texts},
                                 headers=headers, timeout=60)
                if r.status_code != 201:
                    raise AssertionError(f"submit: {r.status_code} {r.text[:300]}")
                with lock:
                    accepted.append(a["id"])
                if rng.random() < 0.1:  # the app retries, as after a lost response
                    again = session.post(f"{base_url}/api/assignments/{a['id']}/submit/", json={"comments": texts},
                                         headers=headers, timeout=60)
                    if again.status_code != 200 or again.json()["comments"] != r.json()["comments"]:
                        raise AssertionError(f"retry: {again.status_code} {again.text[:300]}")
                    with lock:
                        repeats.append(a["id"])
                n += 1
        except Exception as e:  # noqa: BLE001 - reported below with the labeler
            with lock:
                errors.append(f"http{i}: {e!r}")
        finally:
            with lock:
                if waiting:
                    idle["n"] -= 1
                done["n"] += 1
            session.close()

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(i,)) for i in range(labelers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "workers still running after 300 s"
    elapsed = time.monotonic() - started
    assert errors == [], errors[:10]

    # Every photo has exactly `overlap` submitted comment sets, from distinct labelers.
    submitted = Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED)
    per_image = Counter(submitted.values_list("image_id", flat=True))
    queue = ProjectImage.objects.filter(project=project)
    assert queue.count() == photos
    assert all(per_image[pi.image_id] == overlap for pi in queue), Counter(per_image.values())
    assert set(queue.values_list("slots_taken", "submitted_count")) == {(overlap, overlap)}
    assert not Assignment.objects.filter(project=project, status=AssignmentStatus.LEASED).exists()
    # No labeler past their cap; the small caps bind.
    per_labeler = Counter(submitted.values_list("labeler_id", flat=True))
    for member in ProjectMember.objects.filter(project=project).select_related("project", "user"):
        assert per_labeler[member.user_id] <= member.cap, member.user.username
        assert member.submitted_count == per_labeler[member.user_id], member.user.username
    assert any(per_labeler[users[i].pk] == small for i, small in small_caps.items())
    # No (image, labeler) pair twice.
    pairs = Counter(Assignment.objects.filter(project=project).values_list("image_id", "labeler_id"))
    assert max(pairs.values()) == 1
    # Every submission the server answered 201 is stored, once; skips stayed skips.
    assert len(accepted) == len(set(accepted)) == photos * overlap
    assert set(accepted) == set(submitted.values_list("pk", flat=True))
    assert set(repeats) <= set(accepted)
    assert set(Assignment.objects.filter(pk__in=skipped).values_list("status", flat=True)) <= {AssignmentStatus.SKIPPED}
    assert Comment.objects.filter(assignment__project=project).count() == 2 * photos * overlap
    assert sum(final_states.values()) == labelers
    return {"elapsed": elapsed, "submits": len(accepted), "skips": len(skipped), "retries": len(repeats),
            "final_states": dict(final_states)}


@pytest.fixture
def bounded_live_server(live_server):
    """The session's live server, with at most SERVER_SLOTS requests in the application at once
    and a listen backlog for a crowd (socketserver's default of a few connections resets the
    rest when 64 clients connect at the same moment; gunicorn's default is 2048)."""
    httpd = live_server.thread.httpd
    httpd.socket.listen(1024)
    original = httpd.get_app()
    httpd.set_app(Bounded(original, SERVER_SLOTS))
    try:
        yield live_server
    finally:
        httpd.set_app(original)


def test_64_labelers_over_http_on_postgresql(bounded_live_server):
    if connection.vendor != "postgresql":
        pytest.skip("the 64-labeler HTTP crowd runs on PostgreSQL (DATABASE_URL=postgres://...)")
    settings = connection.settings_dict
    require_service(settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432), "PostgreSQL")
    # Supply: whichever photo is left, at least 64 - 1 (its one labeler) - 8 (skippers) = 55
    # labelers may still take it, and the 55 smallest caps sum to 8*3 + 47*6 = 306 >= 300 sets,
    # so every photo must reach its overlap while the cap-3 labelers surely reach their cap.
    stats = run_http_crowd(
        bounded_live_server.url, labelers=64, photos=150, overlap=2, cap=6,
        small_caps={i: 3 for i in range(0, 64, 8)}, skippers=set(range(1, 64, 8)),
    )
    print("http crowd (PostgreSQL):", stats)


def test_8_labelers_over_http_on_sqlite(bounded_live_server):
    if connection.vendor != "sqlite":
        pytest.skip("the SQLite HTTP crowd runs when the suite runs on SQLite")
    if connection.creation.is_in_memory_db(connection.settings_dict["NAME"]):
        pytest.skip(
            "the live server's threads share one in-memory SQLite connection, which is not safe across "
            "threads; run with SQLITE_TEST_NAME=/tmp/test.sqlite3 for a file database"
        )
    # Supply: 8 - 1 - 1 (the skipper) = 6 labelers with the smallest caps: 3 + 3 + 4*8 = 38 >= 32.
    stats = run_http_crowd(
        bounded_live_server.url, labelers=8, photos=16, overlap=2, cap=8,
        small_caps={0: 3, 1: 3}, skippers={2},
    )
    print("http crowd (SQLite):", stats)
