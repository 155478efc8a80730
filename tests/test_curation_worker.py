"""Curation end to end on a real Celery worker over Redis (database 13): an import of photos with
planted copies starts a photo run by itself (its chunks on the "curation" queue), a few labeled
sets with a repeated comment start a text run, and the planner's review queue then shows each
copy grouped with its original and the template comment's cluster. Issue 12's text detectors
(Redis database 12): imported sets with a phone number and an insult, and a labeler's insulting
set, end as PII and TOXICITY flags with their evidence after the automatic text run."""
from __future__ import annotations

import time

import numpy as np
import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError
from django.utils import translation

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
def english(settings):
    """These tests read the English messages (the Korean catalogue translates them all)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def redis_url():
    return REDIS_URL


@pytest.fixture(autouse=True)
def _redis(settings, redis_url):
    require_service("127.0.0.1", 6379, "Redis")
    import redis

    redis.Redis.from_url(redis_url).flushdb()  # the test's database (13, or 12 below) is its own
    settings.CURATION = {**settings.CURATION, "CHUNK_SIZE": 3, "TEXT_RUN_EVERY_SETS": 6, "RUN_AFTER_IMPORT": True}
    yield
    redis.Redis.from_url(redis_url).flushdb()


def wait_for(check, what: str, poll: float = 0.1, seconds: float = WAIT_SECONDS):
    """`check()` until it is true. On SQLite (one shared in-memory database) a read here can make
    the worker's write fail ("table is locked"): a slower `poll` makes that rarer."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = check()
        except OperationalError:  # SQLite: a table briefly locked by the worker
            value = None
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"{what} did not happen within {seconds} s")


def finished_run(trigger: str, poll: float = 0.1, seconds: float = WAIT_SECONDS) -> CurationRun:
    def check():
        run = CurationRun.objects.filter(trigger=trigger).first()
        return run if run is not None and run.status not in ACTIVE_RUN_STATUSES else None
    return wait_for(check, f"a {trigger} run", poll, seconds)


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
    # quality, signatures, perceptual, photo_pii (skipped where OpenCV is missing)
    states = [s.state for s in photo_run.run_steps.order_by("position")]
    assert states[:3] == ["done"] * 3 and states[3] in ("done", "skipped") and len(states) == 4
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
    # One card per group, both of its photos on it.
    assert page.count('data-flag="') == 3 and page.count('data-member-flag="') == 6 and "Suggested keeper" in page
    page = client.get("/curation/review/?kind=template_comment", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "A cluster of 6 comments" in page and "와 진짜 맛있겠다" in page


def test_the_embedded_worker_takes_the_curation_queue_too(tmp_path, settings):
    """The one-command run's worker (no -Q) on the filesystem broker consumes the "curation"
    queue: a run's chunk and finish tasks go there."""
    from curation import runs

    folder = tmp_path / "broker"
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "processed_folder": str(folder / "done"),
               "control_folder": str(folder / "control"), "store_processed": False, "polling_interval": 0.1}
    for path in (folder, folder / "done", folder / "control"):
        path.mkdir(parents=True, exist_ok=True)
    project = labeling.create_project("fs project")
    with broker("filesystem://", options, transport="config.broker:Transport"):
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            run = runs.start_run(project, ["text"], trigger=RunTrigger.API)
            run = wait_for(lambda: (r := CurationRun.objects.get(pk=run.pk)).status not in ACTIVE_RUN_STATUSES and r,
                           "the run on the filesystem broker")
    assert run.status == RunStatus.DONE, run.error
    assert not [p for p in folder.iterdir() if p.is_file()]


def test_a_worker_killed_mid_run_loses_no_work_and_the_resumed_run_finishes_once(settings, tmp_path):
    """A worker process SIGKILLed in the middle of a run: the chunks it finished stay counted,
    the resumed run (stale after CURATION_STALE_SECONDS) finishes on another worker, every photo is
    counted once and the planted copies are grouped as by an uninterrupted run."""
    import os
    import signal
    import subprocess
    import sys

    from curation import runs
    from tests.test_import_lifecycle import ROOT, _database_url

    url = _database_url()
    if url is None:
        pytest.skip("needs a database another process can open (SQLite on a file: SQLITE_TEST_NAME, or PostgreSQL)")
    source = Source.objects.create(kind="upload", name="Killed run", default_licence=Licence.objects.get(code="cc0-1.0"))
    originals = [synthetic.photo(900 + i, 480, 360) for i in range(36)]
    for i, img in enumerate(originals):
        datasets.ingest_one(synthetic.jpeg(img, 92), source=source, category="food", original_name=f"k{i}.jpg")
    copies = {"k0.jpg": synthetic.resize(originals[0], 0.5), "k1.jpg": synthetic.recode(originals[1], 40),
              "k2.jpg": synthetic.crop(originals[2], 0.06, np.random.default_rng(4)),
              "k3.jpg": synthetic.brightness(originals[3], 1.15)}
    for name, img in copies.items():
        datasets.ingest_one(synthetic.jpeg(img, 92), source=source, category="food", original_name=f"copy-of-{name}")
    settings.CURATION = {**settings.CURATION, "CHUNK_SIZE": 2}
    env = {**os.environ, "DATABASE_URL": url, "MEDIA_ROOT": str(settings.MEDIA_ROOT),
           "PLATFORM_VAR_DIR": str(tmp_path / "var"), "CELERY_BROKER_URL": REDIS_URL, "CELERY_TASK_ALWAYS_EAGER": "0",
           "CURATION_CHUNK_SIZE": "2"}
    env.pop("SQLITE_TEST_NAME", None)
    with broker(REDIS_URL):
        proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo", "--without-gossip",
             "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        try:
            run = runs.start_run(None, ["quality", "perceptual"], trigger=RunTrigger.API)
            wait_for(lambda: proc.poll() is not None or run.run_steps.filter(name="quality", done__gte=6).exists(),
                     "the worker's first chunks")
            assert proc.poll() is None, proc.stdout.read().decode()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING  # killed: nobody says so but the missing heartbeat
        assert [s.state for s in run.run_steps.order_by("position")] != ["done"] * 3

        settings.CURATION = {**settings.CURATION, "STALE_SECONDS": 0}
        run.refresh_from_db()
        assert runs.is_stalled(run)
        runs.resume_run(run)
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            run = wait_for(lambda: (r := CurationRun.objects.get(pk=run.pk)).status not in ACTIVE_RUN_STATUSES and r,
                           "the resumed run")
    assert run.status == RunStatus.DONE, run.error
    for step in run.run_steps.all():
        assert (step.state, step.done, step.total) == ("done", 40, 40), step.name
    assert run.run_steps.get(name="quality").counts["photos"] == 40  # each chunk counted once
    names = {str(i.pk): i.original_name for i in Image.objects.all()}
    groups: dict[str, set] = {}
    for f in Flag.objects.filter(kind=FlagKind.NEAR_DUPLICATE_PHOTO):
        groups.setdefault(f.group_key, set()).add(names[str(f.image_id)])
    assert sorted(sorted(g) for g in groups.values()) == sorted(sorted([n, f"copy-of-{n}"]) for n in copies)


class TestTextDetectorsOnTheWorker:
    """Issue 12, item 8: the part-2 text detectors (PII, toxicity) in the automatic text run."""

    @pytest.fixture
    def redis_url(self):
        return "redis://127.0.0.1:6379/12"

    def test_imported_and_submitted_comments_end_as_pii_and_toxicity_flags(self, redis_url, settings, tmp_path, client):
        import json

        from accounts import services as accounts
        from curation import pii
        from labeling import external
        from labeling.models import CommentImport, CommentImportStatus
        from tests.conftest import make_photo

        # An import does not refuse what breaks the text rules (labeling/external.py: warnings
        # only), so a phone number reaches the database that way; the text run must find it.
        settings.CURATION = {**settings.CURATION, "TEXT_RUN_EVERY_SETS": 4, "RUN_AFTER_IMPORT": False}
        folder = tmp_path / "photos"
        folder.mkdir()
        for n in range(4):
            (folder / f"t{n}.jpg").write_bytes(make_photo(seed=700 + n))
        source = Source.objects.create(kind="upload", name="Text photos", default_licence=Licence.objects.get(code="cc0-1.0"))
        food = Category.objects.get(slug="food")
        project = labeling.create_project("text worker project", categories=[food], overlap=1)
        [user] = make_labelers(1, prefix="tlab")
        labeling.add_member(project, user)
        phone = "사장님 번호 공일공-일이삼사-오육칠팔 로 예약했어요"
        insult = "이거 찍은 놈 진짜 병신 같네"
        rows = [{"path": "t0.jpg", "text:reaction": "와 맛있겠다", "text:specific": phone},
                {"path": "t1.jpg", "text:reaction": "별로네요", "text:specific": insult},
                {"path": "t2.jpg", "text:reaction": "좋아요", "text:specific": "국물이 진하고 면발이 쫄깃해 보여요"}]
        data = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
        # The worker is a thread of this process: build presidio's engine (spaCy's import, a minute
        # on a busy machine) before it starts, so the PII step does not spend the wait on it.
        pii.analyzer()
        with broker(redis_url):
            celery_app.control.purge()
            with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=120):
                ci = external.start_comment_import(project, data=data, fmt="jsonl", source_name="Vendor T",
                                                   photo_source=source, images_dir=str(folder), category=food,
                                                   trusted=True)
                ci = wait_for(lambda: (c := CommentImport.objects.get(pk=ci.pk)).status == CommentImportStatus.DONE and c,
                              "the comment import", poll=1.0)
                assert ci.imported == 3 and "phone" in ci.rows.get(position=0).warnings
                assert not CurationRun.objects.exists()  # 3 sets: under TEXT_RUN_EVERY_SETS
                # A labeler's insulting set: flagged at submit (inline lexicon), and the 4th set.
                def lease_and_submit():
                    try:
                        a = labeling.next_assignment(project, user)
                        return labeling.submit(a, user, {"reaction": "음 이게 뭐지", "specific": "ㅅㅂ 사진 개못찍었네 진짜"})
                    except OperationalError:  # SQLite: a table the worker is writing (nothing was stored)
                        return None
                wait_for(lease_and_submit, "the labeler's submit", poll=1.0)
                inline = Flag.objects.get(kind=FlagKind.TOXICITY)
                assert inline.evidence["source"] == "inline at submit"
                text_run = finished_run(RunTrigger.COMMENTS, poll=1.0, seconds=300)
        assert text_run.status == RunStatus.DONE, text_run.error
        steps = {s.name: s for s in text_run.run_steps.all()}
        # The comment scores (and the embedding steps they need) are skipped without model weights.
        assert {n: s.state for n, s in steps.items()} == {
            "text": "done", "pii": "done", "toxicity": "done",
            "embed_images": "skipped", "embed_comments": "skipped", "scores": "skipped"}
        assert steps["toxicity"].counts["flags_new"] == 1 and steps["toxicity"].counts["flags_updated"] == 1

        pii_flag = Flag.objects.get(kind=FlagKind.PII)
        assert pii_flag.comment.text == phone and pii_flag.project_id == project.pk
        assert pii_flag.evidence["kinds"] == ["phone"] and "오육칠팔" not in json.dumps(pii_flag.evidence, ensure_ascii=False)
        toxic = {f.comment.text: f for f in Flag.objects.filter(kind=FlagKind.TOXICITY).select_related("comment")}
        assert set(toxic) == {insult, "ㅅㅂ 사진 개못찍었네 진짜"}  # one flag each: the step updated the inline one
        assert toxic[insult].evidence["matched"] == "병신 (general)"
        assert toxic["ㅅㅂ 사진 개못찍었네 진짜"].pk == inline.pk and "source" not in toxic["ㅅㅂ 사진 개못찍었네 진짜"].evidence

        planner = accounts.create_user("tplanner", "pw-long-enough-1", "planner")
        client.force_login(planner)
        page = client.get("/curation/review/?kind=toxicity", HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert insult in page and "병신 (general)" in page
        page = client.get("/curation/review/?kind=pii", HTTP_ACCEPT_LANGUAGE="en").content.decode()
        assert pii_flag.evidence["masked_text"] in page  # the evidence masked (the card quotes the comment)
