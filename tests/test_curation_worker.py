"""Curation end to end on a real Celery worker over Redis (database 13): an import of photos with
planted copies starts a photo run by itself (its chunks on the "curation" queue), a few labeled
sets with a repeated comment start a text run, and the planner's review queue then shows each
copy grouped with its original and the template comment's cluster."""
from __future__ import annotations

import time

import numpy as np
import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError

from config.celery import app as celery_app
from curation import synthetic
from curation.models import ACTIVE_RUN_STATUSES, CurationRun, Flag, FlagKind, RunStatus, RunTrigger
from datasets import services as datasets
from datasets.models import Category, Image, ImportJob, ImportStatus, Licence, Source
from labeling import services as labeling
from tests.conftest import require_service
from tests.factories import make_labelers
from tests.test_celery_worker import broker

REDIS_URL = "redis://127.0.0.1:6379/13"
WAIT_SECONDS = 120

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _redis_13(settings):
    require_service("127.0.0.1", 6379, "Redis")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # database 13 is these tests' own
    settings.CURATION = {**settings.CURATION, "CHUNK_SIZE": 3, "TEXT_RUN_EVERY_SETS": 6}
    yield
    redis.Redis.from_url(REDIS_URL).flushdb()


def wait_for(check, what: str):
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            value = check()
        except OperationalError:  # SQLite: a table briefly locked by the worker
            value = None
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"{what} did not happen within {WAIT_SECONDS} s")


def finished_run(trigger: str) -> CurationRun:
    def check():
        run = CurationRun.objects.filter(trigger=trigger).first()
        return run if run is not None and run.status not in ACTIVE_RUN_STATUSES else None
    return wait_for(check, f"a {trigger} run")


def test_an_import_and_labeled_sets_end_in_the_review_queue_through_a_real_worker(client):
    from accounts import services as accounts

    source = Source.objects.create(kind="upload", name="Worker photos", default_licence=Licence.objects.get(code="cc0-1.0"))
    food = Category.objects.get(slug="food")
    originals = [synthetic.photo(300 + i, 480, 360) for i in range(7)]
    rng = np.random.default_rng(3)
    files = {f"o{i}.jpg": img for i, img in enumerate(originals)}
    files.update({"copy-half.jpg": synthetic.resize(originals[0], 0.5), "copy-crop.jpg": synthetic.crop(originals[1], 0.08, rng),
                  "copy-dark.jpg": synthetic.brightness(originals[2], 0.8)})
    project = labeling.create_project("worker project", categories=[food], overlap=1, reject_own_repeats=False)
    labelers = make_labelers(2, prefix="wlab")
    for user in labelers:
        labeling.add_member(project, user)
    with broker(REDIS_URL):
        celery_app.control.purge()
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            job = datasets.create_import(source=source, files=[SimpleUploadedFile(n, synthetic.jpeg(img, 92))
                                                               for n, img in files.items()], category=food)
            wait_for(lambda: ImportJob.objects.get(pk=job.pk).status == ImportStatus.DONE, "the import")
            photo_run = finished_run(RunTrigger.IMPORT)
            # The photos joined the project on the worker; two labelers write six sets, the same
            # reaction on every photo: the sixth set starts a text run.
            wait_for(lambda: project.queue.count() == 10, "the photos joining the project")
            for n in range(6):
                user = labelers[n % 2]
                a = labeling.next_assignment(project, user)
                labeling.submit(a, user, {"reaction": "와 진짜 맛있겠다!!",
                                          "specific": ["노을빛 하늘이 정말 붉네요", "골목길 고양이가 귀엽게 앉아 있어요",
                                                       "김이 나는 국수가 먹음직스러워요", "바다 위 작은 배가 평화로워요",
                                                       "눈 덮인 나무가 반짝이는 아침", "시장 골목의 과일이 알록달록해요"][n]})
            text_run = finished_run(RunTrigger.COMMENTS)
    assert photo_run.status == RunStatus.DONE, photo_run.error
    assert photo_run.options == {"import_job": job.pk}
    assert [s.state for s in photo_run.run_steps.order_by("position")] == ["done"] * 3
    assert photo_run.run_steps.get(name="quality").done == 10
    assert text_run.status == RunStatus.DONE, text_run.error

    # Each copy is grouped with its original, which is the suggested keeper.
    names = {str(i.pk): i.original_name for i in Image.objects.all()}
    groups: dict[str, set] = {}
    for f in Flag.objects.filter(kind=FlagKind.NEAR_DUPLICATE_PHOTO):
        groups.setdefault(f.group_key, set()).add((names[str(f.image_id)], names[str(f.keeper_id)]))
    found = sorted(sorted(m for m, _k in members) for members in groups.values())
    assert found == [["copy-crop.jpg", "o1.jpg"], ["copy-dark.jpg", "o2.jpg"], ["copy-half.jpg", "o0.jpg"]]
    assert all({k for _m, k in members} <= {"o0.jpg", "o1.jpg", "o2.jpg"} for members in groups.values())
    template = Flag.objects.filter(kind=FlagKind.TEMPLATE_COMMENT)
    assert template.count() == 6 and template.first().evidence["count"] == 6

    # The planner's review queue shows them.
    planner = accounts.create_user("wplanner", "pw-long-enough-1", "planner")
    client.force_login(planner)
    page = client.get("/curation/review/?kind=near_duplicate_photo", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert page.count('data-flag="') == 6 and "Suggested keeper" in page
    page = client.get("/curation/review/?kind=template_comment", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "A cluster of 6 comments" in page and "와 진짜 맛있겠다" in page
