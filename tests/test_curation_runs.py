"""Curation runs (issue 11, items 2-4 and 6): the photo and text steps on generated photos and
texts with known answers, the runner's chunks (a chunk delivered twice counts once, a stalled or
cancelled run resumes where it stopped), the automatic runs after an import and after comment
sets, duplicate groups and choosing another keeper."""
from __future__ import annotations

import itertools
from datetime import timedelta

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone, translation
from PIL import Image as PILImage

from curation import runs, steps, synthetic
from curation import services as curation
from curation.models import (
    CurationRun,
    Decision,
    Flag,
    FlagKind,
    PhotoSignature,
    RunChunk,
    RunStatus,
    RunStep,
    RunTrigger,
    StepState,
)
from datasets import services as datasets
from datasets.models import Image, Licence, Source
from labeling import services as labeling
from labeling.models import Assignment, AssignmentStatus


@pytest.fixture(autouse=True)
def english(settings):
    """These tests read the English messages (the Korean catalogue translates them all)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def upload(source, images: dict[str, PILImage.Image], **kwargs):
    files = [SimpleUploadedFile(name, synthetic.jpeg(img, 92)) for name, img in images.items()]
    job = datasets.create_import(source=source, files=files, enqueue=False, **kwargs)
    return datasets.run_import(job.pk)


def by_name() -> dict[str, Image]:
    return {img.original_name: img for img in Image.objects.all()}


def dark(seed: int) -> PILImage.Image:
    return synthetic.brightness(synthetic.photo(seed), 0.12)


def grey(seed: int) -> PILImage.Image:
    return synthetic.photo(seed).convert("L").convert("RGB")


@pytest.fixture
def catalogue(db, source, food, people):
    """8 distinct photos and 4 planted copies (resize, 10 % crop, brightness, JPEG q30), two of
    them in another category and from another source with a worse licence; a dark photo and a
    grey one."""
    originals = {f"o{i}.jpg": synthetic.photo(100 + i, 480, 360) for i in range(8)}
    upload(source, originals, category=food)
    rng = np.random.default_rng(5)
    other = Source.objects.create(kind="upload", name="Other source", default_licence=Licence.objects.get(code="cc-by-sa-4.0"))
    upload(other, {
        "copy-resize.jpg": synthetic.resize(originals["o0.jpg"], 0.5),
        "copy-crop.jpg": synthetic.crop(originals["o1.jpg"], 0.10, rng),
    }, category=people)
    upload(source, {
        "copy-bright.jpg": synthetic.brightness(originals["o2.jpg"], 1.2),
        "copy-q30.jpg": synthetic.recode(originals["o3.jpg"], 30),
        "dark.jpg": dark(200),
        "grey.jpg": grey(201),
    }, category=food)
    return by_name()


PLANTED = {("o0.jpg", "copy-resize.jpg"), ("o1.jpg", "copy-crop.jpg"), ("o2.jpg", "copy-bright.jpg"),
           ("o3.jpg", "copy-q30.jpg")}


def groups_found() -> set[tuple[str, str]]:
    names = {str(i.pk): i.original_name for i in Image.objects.all()}
    groups: dict[str, set[str]] = {}
    keepers = {}
    for flag in Flag.objects.filter(kind=FlagKind.NEAR_DUPLICATE_PHOTO):
        groups.setdefault(flag.group_key, set()).add(names[str(flag.image_id)])
        keepers[flag.group_key] = names[str(flag.keeper_id)]
    out = set()
    for key, members in groups.items():
        assert len(members) == 2, members
        keeper = keepers[key]
        (copy,) = members - {keeper}
        out.add((keeper, copy))
    return out


def test_photo_steps_find_the_planted_copies_and_the_quality_problems(catalogue):
    run = runs.start_run(None, ["quality", "perceptual"], enqueue=False)
    assert run.steps == ["quality", "signatures", "perceptual"]  # what perceptual requires is added
    run = runs.run_here(run)
    assert run.status == RunStatus.DONE, run.error
    # Every copy grouped with its original, across categories and sources; the original is the
    # keeper (larger, better licence, or older).
    assert groups_found() == PLANTED
    flag = Flag.objects.get(kind=FlagKind.NEAR_DUPLICATE_PHOTO, image=catalogue["copy-crop.jpg"])
    assert flag.evidence["keeper"] == str(catalogue["o1.jpg"].pk)
    assert flag.evidence["confirmation"] >= 0.8 and flag.evidence["distance"] <= 8
    assert PhotoSignature.objects.count() == Image.objects.count()
    # Quality: the dark photo and the grey one, each with its number and threshold.
    dark_flag = Flag.objects.get(kind=FlagKind.QUALITY_DARK)
    assert dark_flag.image_id == catalogue["dark.jpg"].pk
    assert dark_flag.evidence["value"] < dark_flag.evidence["threshold"] == 0.32
    assert set(Flag.objects.filter(kind=FlagKind.QUALITY_GRAYSCALE).values_list("image_id", flat=True)) == {
        catalogue["grey.jpg"].pk}
    counts = {s.name: s.counts for s in run.run_steps.all()}
    assert counts["perceptual"]["groups"] == 4 and counts["perceptual"]["flags_new"] == 8
    assert counts["quality"]["photos"] == 14
    # A second run over the same photos changes nothing.
    again = runs.run_here(runs.start_run(None, ["quality", "perceptual"], enqueue=False))
    assert again.status == RunStatus.DONE
    assert Flag.objects.filter(kind=FlagKind.NEAR_DUPLICATE_PHOTO).count() == 8
    assert again.run_steps.get(name="perceptual").counts.get("flags_new", 0) == 0
    assert again.run_steps.get(name="signatures").total == 0  # hashes are stored once


def test_quality_thresholds_come_from_settings(catalogue, settings):
    settings.CURATION = {**settings.CURATION, "QUALITY_THRESHOLDS": {
        **settings.CURATION["QUALITY_THRESHOLDS"], "dark": None, "tiny": 300}}
    runs.run_here(runs.start_run(None, ["quality"], enqueue=False))
    assert not Flag.objects.filter(kind=FlagKind.QUALITY_DARK).exists()
    tiny = Flag.objects.get(kind=FlagKind.QUALITY_TINY)  # the half-size copy: 240 px on its short side
    assert tiny.image_id == catalogue["copy-resize.jpg"].pk
    assert tiny.evidence == {"statistic": "tiny", "value": 180.0, "threshold": 300.0}


def test_a_run_after_an_import_groups_new_copies_with_photos_already_there(catalogue, source, food, settings,
                                                                          django_capture_on_commit_callbacks):
    settings.CURATION = {**settings.CURATION, "RUN_AFTER_IMPORT": True}
    runs.run_here(runs.start_run(None, ["perceptual"], enqueue=False))
    original = synthetic.photo(100, 480, 360)  # o0, whose resized copy is grouped already
    with django_capture_on_commit_callbacks(execute=True):
        job = upload(source, {"o0-again.jpg": synthetic.crop(original, 0.06, np.random.default_rng(9))}, category=food)
    run = CurationRun.objects.get(trigger=RunTrigger.IMPORT)
    assert run.options == {"import_job": job.pk} and run.status == RunStatus.DONE, run.error
    assert run.run_steps.get(name="perceptual").total == 1  # the import's own photo only
    names = {str(i.pk): i.original_name for i in Image.objects.all()}
    group = Flag.objects.filter(kind=FlagKind.NEAR_DUPLICATE_PHOTO, image__original_name="o0-again.jpg").get().group_key
    members = {names[str(f.image_id)] for f in Flag.objects.filter(group_key=group)}
    assert members == {"o0.jpg", "copy-resize.jpg", "o0-again.jpg"}
    assert {str(f.keeper_id) for f in Flag.objects.filter(group_key=group)} == {str(catalogue["o0.jpg"].pk)}


# ---------------------------------------------------------------- the runner


@pytest.fixture
def small_chunks(settings):
    settings.CURATION = {**settings.CURATION, "CHUNK_SIZE": 3}


def test_chunks_count_once_and_a_stalled_run_resumes_where_it_stopped(catalogue, small_chunks, settings):
    run = runs.start_run(None, ["quality"], enqueue=False)
    runs.advance(run.pk, enqueue=False)
    step = RunStep.objects.get(run=run, name="quality")
    assert (step.state, step.total) == (StepState.RUNNING, 14)
    chunks = list(RunChunk.objects.filter(step=step).order_by("position"))
    assert [len(c.ids) for c in chunks] == [3, 3, 3, 3, 2]
    assert runs.run_chunk(chunks[0].pk, enqueue=False) is True
    # Delivered again (acks late, a worker lost after the work): nothing counted twice.
    assert runs.run_chunk(chunks[0].pk, enqueue=False) is False
    runs.run_chunk(chunks[1].pk, enqueue=False)
    step.refresh_from_db()
    assert step.done == 6 and step.state == StepState.RUNNING
    flags_before = Flag.objects.count()
    # The worker dies; after STALE_SECONDS the run may be resumed.
    run.refresh_from_db()
    assert not runs.can_resume(run)
    with pytest.raises(curation.CurationError):
        runs.resume_run(run, enqueue=False)
    CurationRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    run.refresh_from_db()
    assert runs.is_stalled(run)
    run = runs.resume_run(run, enqueue=False)
    run = runs.run_here(run)
    assert run.status == RunStatus.DONE
    step.refresh_from_db()
    assert (step.done, step.total, step.state) == (14, 14, StepState.DONE)
    assert step.counts["photos"] == 14
    assert Flag.objects.count() >= flags_before
    # The same flags as a run from scratch.
    first = set(Flag.objects.values_list("kind", "image_id"))
    runs.run_here(runs.start_run(None, ["quality"], enqueue=False))
    assert set(Flag.objects.values_list("kind", "image_id")) == first


def test_a_cancelled_run_stops_before_its_next_chunk_and_can_be_resumed(catalogue, small_chunks, users):
    run = runs.start_run(None, ["quality"], enqueue=False)
    runs.advance(run.pk, enqueue=False)
    chunks = list(RunChunk.objects.filter(step__run=run).order_by("position"))
    runs.run_chunk(chunks[0].pk, enqueue=False)
    run = runs.cancel_run(run, users["planner"])
    assert run.status == RunStatus.CANCELLED and "planner1" in run.error
    assert runs.run_chunk(chunks[1].pk, enqueue=False) is False
    with pytest.raises(curation.CurationError):
        runs.cancel_run(run)
    run = runs.run_here(runs.resume_run(run, enqueue=False))
    assert run.status == RunStatus.DONE
    assert RunStep.objects.get(run=run).done == 14


def test_a_step_that_cannot_run_here_is_skipped_with_its_reason(db, monkeypatch):
    class NoModel(steps.Step):
        name = "no_model"
        label = "No model"

        def unavailable(self, run):
            return "no weights for test-model on this machine"

        def plan(self, run):
            raise AssertionError("a skipped step is not planned")

        def process(self, run, ids):
            raise AssertionError("a skipped step does no work")

    monkeypatch.setattr(steps, "STEPS", [*steps.STEPS, NoModel()])
    run = runs.run_here(runs.start_run(None, ["no_model", "text"], enqueue=False))
    assert run.status == RunStatus.DONE
    skipped = run.run_steps.get(name="no_model")
    assert (skipped.state, skipped.reason) == (StepState.SKIPPED, "no weights for test-model on this machine")
    assert run.run_steps.get(name="text").state == StepState.DONE


def test_unknown_steps_are_refused(db):
    with pytest.raises(ValidationError):
        runs.start_run(None, ["nonsense"], enqueue=False)
    assert not CurationRun.objects.exists()


def test_a_run_on_workers_goes_through_every_step_in_eager_mode(catalogue, small_chunks,
                                                               django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        run = runs.start_run(None, ["quality", "perceptual"])
    run.refresh_from_db()
    assert run.status == RunStatus.DONE, run.error
    assert [s.state for s in run.run_steps.all()] == [StepState.DONE] * 3
    assert groups_found() == PLANTED


# ---------------------------------------------------------------- comments


def submit_sets(project, plan: list[tuple]):
    """plan: (labeler, reaction text, specific text) in order; each labeler takes their next photo."""
    for user, reaction, specific in plan:
        a = labeling.next_assignment(project, user)
        labeling.submit(a, user, {"reaction": reaction, "specific": specific})


DISTINCT = [
    "김이 모락모락 나는 국밥 한 그릇이네요", "빨간 자전거가 골목 담벼락에 기대어 있어요",
    "눈 덮인 산봉우리 위로 구름이 걸렸습니다", "강아지 두 마리가 잔디밭에서 뛰놀아요",
    "야경 속 다리 조명이 물에 비쳐 반짝여요", "떡볶이 소스가 치즈랑 섞여서 진해 보여요",
    "햇살이 따뜻해 보이는 오후 풍경이에요", "창문에 비친 하늘이 맑아 보여요 정말로",
]


def test_text_step_finds_templates_duplicates_and_self_copies(make_project, labelers):
    project = make_project(16, overlap=1, reject_own_repeats=False)
    lab0, lab1, lab2, lab3 = labelers
    plan = []
    for n in range(6):  # the same reaction on six photos by two labelers: a template
        plan.append(((lab0, lab1)[n % 2], "와 진짜 맛있겠다!!", DISTINCT[n]))
    # lab2 copies their own specific comment, nearly, three times out of four.
    for n, reaction in enumerate(["좋아요 첫 번째", "두 번째도 멋져요", "세 번째는 색감이 좋네", "마지막 사진 최고"]):
        plan.append((lab2, reaction, "노을 지는 바닷가 모래사장이 정말 아름답네요" + "!" * n))
    # Two labelers once wrote the same distinct text: a duplicate, not a template.
    plan.append((lab3, "고양이가 창밖을 보고 있어요", DISTINCT[6]))
    plan.append((lab0, "고양이가 창밖을 보고 있어요 ㅋㅋㅋㅋ", DISTINCT[7]))
    submit_sets(project, plan)
    run = runs.run_here(runs.start_run(project, ["text"], enqueue=False))
    assert run.status == RunStatus.DONE, run.error
    template = Flag.objects.filter(kind=FlagKind.TEMPLATE_COMMENT)
    assert template.count() == 6 and len({f.group_key for f in template}) == 1
    evidence = template.first().evidence
    assert evidence["count"] == 6 and evidence["photos"] == 6 and evidence["examples"] == ["와 진짜 맛있겠다!!"]
    assert template.first().project_id == project.pk
    dup = Flag.objects.filter(kind=FlagKind.DUPLICATE_COMMENT)
    clusters: dict[str, set] = {}
    for f in dup:
        clusters.setdefault(f.group_key, set()).add(f.comment.text)
    assert sorted(map(len, clusters.values())) == [2, 4]  # the cat, and lab2's sunset four times
    assert {"고양이가 창밖을 보고 있어요", "고양이가 창밖을 보고 있어요 ㅋㅋㅋㅋ"} in clusters.values()
    copies = Flag.objects.filter(kind=FlagKind.SELF_COPY_COMMENT)
    # lab2's three near-copies, and lab0's and lab1's repeated template (two each); lab3 none.
    per_labeler = {}
    for f in copies:
        per_labeler.setdefault(f.comment.assignment.labeler_id, []).append(f)
    assert {k: len(v) for k, v in per_labeler.items()} == {lab2.pk: 3, lab0.pk: 2, lab1.pk: 2}
    evidence = per_labeler[lab2.pk][0].evidence
    assert evidence["share"] == 0.375 and evidence["threshold"] == 0.2  # 3 of their 8 comments
    assert evidence["text"] == "노을 지는 바닷가 모래사장이 정말 아름답네요"  # the comment copied
    assert evidence["examples"][0] == "노을 지는 바닷가 모래사장이 정말 아름답네요!"
    counts = run.run_steps.get(name="text").counts
    assert counts["templates"] == 1 and counts["comments"] == 24


def test_a_text_run_starts_after_every_n_submitted_sets(make_project, labelers, settings,
                                                        django_capture_on_commit_callbacks):
    settings.CURATION = {**settings.CURATION, "TEXT_RUN_EVERY_SETS": 3}
    project = make_project(6, overlap=2)
    from tests.factories import texts

    numbers = itertools.count(900)
    with django_capture_on_commit_callbacks(execute=True):
        for user in labelers[:2]:
            a = labeling.next_assignment(project, user)
            labeling.submit(a, user, texts(next(numbers)))
    assert not CurationRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        a = labeling.next_assignment(project, labelers[2])
        labeling.submit(a, labelers[2], texts(next(numbers)))
    run = CurationRun.objects.get()
    assert (run.trigger, run.project_id, run.steps, run.new_only) == (RunTrigger.COMMENTS, project.pk, ["text", "pii", "toxicity", "embed_images", "embed_comments", "scores"], True)
    assert run.status == RunStatus.DONE
    assert Assignment.objects.filter(project=project, status=AssignmentStatus.SUBMITTED).count() == 3


# ---------------------------------------------------------------- keepers


def test_choosing_another_keeper_is_audited_undoable_and_kept_by_later_runs(catalogue, users):
    runs.run_here(runs.start_run(None, ["perceptual"], enqueue=False))
    copy = Flag.objects.get(kind=FlagKind.NEAR_DUPLICATE_PHOTO, image=catalogue["copy-crop.jpg"])
    original = catalogue["o1.jpg"]
    assert copy.keeper_id == original.pk
    decision = curation.choose_keeper(copy, users["planner"], "the crop is better framed")
    group = Flag.objects.filter(group_key=copy.group_key)
    assert {f.keeper_id for f in group} == {catalogue["copy-crop.jpg"].pk}
    assert (decision.action, decision.actor, decision.duplicate_of_id) == (
        "choose_keeper", users["planner"], catalogue["copy-crop.jpg"].pk)
    with pytest.raises(curation.CurationError):
        curation.choose_keeper(Flag.objects.get(pk=copy.pk), users["planner"])
    # A later run keeps the planner's choice.
    runs.run_here(runs.start_run(None, ["perceptual"], enqueue=False))
    assert {f.keeper_id for f in group.all()} == {catalogue["copy-crop.jpg"].pk}
    # "Mark as duplicate" on the original now excludes it in favour of the crop.
    orig_flag = Flag.objects.get(kind=FlagKind.NEAR_DUPLICATE_PHOTO, image=original)
    curation.decide([orig_flag], "mark_duplicate", users["planner"])
    assert Decision.objects.filter(flag=orig_flag).get().duplicate_of_id == catalogue["copy-crop.jpg"].pk
    # The crop (the keeper) is the only one open in its group: its flag was kept automatically.
    auto = Decision.objects.filter(flag=copy).order_by("-pk").first()
    assert (auto.action, auto.changes) == ("keep", {"auto": True, "as_keeper": True})
    # Undo of the keeper choice (after that automatic keep) puts the suggested keeper back.
    curation.undo(auto, users["planner"])
    curation.undo(decision, users["planner"])
    assert {f.keeper_id for f in group.all()} == {original.pk}


# ---------------------------------------------------------------- API, pages, command


def test_api_starts_follows_and_cancels_runs_and_lists_duplicate_groups(catalogue, api, users,
                                                                       django_capture_on_commit_callbacks):
    planner, engineer = api("planner"), api("engineer")
    assert planner.post("/api/curation/runs/", {"steps": ["nonsense"]}, format="json").status_code == 400
    assert engineer.post("/api/curation/runs/", {"steps": ["quality"]}, format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        response = planner.post("/api/curation/runs/", {"steps": ["perceptual"]}, format="json")
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]
    detail = engineer.get(f"/api/curation/runs/{run_id}/").json()
    assert detail["status"] == "done" and detail["trigger"] == "api" and detail["created_by"] == "planner1"
    steps_ = {s["name"]: s for s in detail["progress"]}
    assert steps_["perceptual"]["done"] == steps_["perceptual"]["total"] == 14
    assert steps_["perceptual"]["counts"]["groups"] == 4 and steps_["perceptual"]["percent"] == 100
    assert planner.post(f"/api/curation/runs/{run_id}/cancel/").status_code == 409  # done already
    assert [r["id"] for r in engineer.get("/api/curation/runs/").json()["results"]] == [run_id]

    groups = engineer.get("/api/curation/duplicate-groups/").json()
    assert groups["count"] == 4
    crop = next(g for g in groups["results"] if any(m["image"]["id"] == str(catalogue["copy-crop.jpg"].pk)
                                                     for m in g["members"]))
    keeper, copy = crop["members"]
    assert keeper["is_keeper"] and keeper["image"]["id"] == crop["keeper"] == str(catalogue["o1.jpg"].pk)
    assert (copy["licence"], copy["source"], copy["is_keeper"]) == ("cc-by-sa-4.0", "Other source", False)
    assert copy["image"]["category"] == "people" and keeper["image"]["category"] == "food"
    assert copy["distance"] <= 8 and copy["confirmation"] >= 0.8
    one = engineer.get(f"/api/curation/duplicate-groups/?image={catalogue['copy-crop.jpg'].pk}").json()
    assert [g["group_key"] for g in one["results"]] == [crop["group_key"]]

    # Keep the crop instead: every member's flag names it; the decision history has it.
    assert engineer.post(f"/api/curation/flags/{copy['flag']}/keep-instead/", {}, format="json").status_code == 403
    response = planner.post(f"/api/curation/flags/{copy['flag']}/keep-instead/", {"reason": "sharper"}, format="json")
    assert response.status_code == 200 and response.json()["action"] == "choose_keeper"
    again = engineer.get(f"/api/curation/duplicate-groups/?image={catalogue['copy-crop.jpg'].pk}").json()["results"][0]
    assert again["keeper"] == str(catalogue["copy-crop.jpg"].pk) and again["members"][0]["is_keeper"]
    assert planner.post(f"/api/curation/flags/{copy['flag']}/keep-instead/", {}, format="json").status_code == 409


def test_api_cancel_and_resume(db, api, django_capture_on_commit_callbacks):
    run = runs.start_run(None, ["text"], enqueue=False)
    planner = api("planner")
    assert planner.post(f"/api/curation/runs/{run.pk}/resume/").status_code == 409  # alive
    response = planner.post(f"/api/curation/runs/{run.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert response.json()["can_resume"] is True
    with django_capture_on_commit_callbacks(execute=True):
        response = planner.post(f"/api/curation/runs/{run.pk}/resume/")
    assert response.status_code == 200 and response.json()["status"] == "running"
    run.refresh_from_db()
    assert run.status == RunStatus.DONE and run.started_at is not None  # eager: it ran on commit


def test_run_pages_start_and_show_progress(catalogue, client, users, django_capture_on_commit_callbacks):
    client.force_login(users["engineer"])
    page = client.get("/curation/runs/")
    assert page.status_code == 200 and b"Start the run" not in page.content
    assert client.post("/curation/runs/", {"steps": ["quality"]}).status_code == 403
    client.force_login(users["planner"])
    page = client.get("/curation/runs/")
    assert b"Start the run" in page.content and b"Near-duplicate photos" in page.content
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/curation/runs/", {"steps": ["quality", "perceptual"], "project": ""})
    run = CurationRun.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/curation/runs/{run.pk}/"
    page = client.get(response["Location"]).content.decode()
    assert "Image quality" in page and "Window hashes" in page and "14 / 14" in page
    assert "duplicate groups <strong>4</strong>" in page and "data-active=\"0\"" in page
    assert run.trigger == RunTrigger.PAGE and run.created_by == users["planner"]
    listing = client.get("/curation/runs/").content.decode()
    assert f"/curation/runs/{run.pk}/" in listing


def test_review_page_offers_keep_this_one_instead(catalogue, client, users):
    runs.run_here(runs.start_run(None, ["perceptual"], enqueue=False))
    client.force_login(users["planner"])
    page = client.get("/curation/review/?kind=near_duplicate_photo").content.decode()
    assert page.count("data-keep-instead=") >= 4  # one per copy shown beside its keeper at least
    copy = Flag.objects.get(image=catalogue["copy-q30.jpg"])
    response = client.post("/curation/review/keep-instead/", {"keep_instead": copy.pk, "next": "/curation/review/"})
    assert response.status_code == 302
    assert set(Flag.objects.filter(group_key=copy.group_key).values_list("keeper_id", flat=True)) == {
        catalogue["copy-q30.jpg"].pk}
    history = client.get("/curation/decisions/").content.decode()
    assert "Keep this one instead" in history and "keeper" in history
    client.force_login(users["engineer"])
    assert b"data-keep-instead" not in client.get("/curation/review/?kind=near_duplicate_photo").content


def test_curate_command_runs_here_with_progress(catalogue, capsys):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out, err = StringIO(), StringIO()
    call_command("curate", "--all", "--steps", "quality", "perceptual", "--here", stdout=out, stderr=err)
    text = out.getvalue()
    assert "quality: done" in text and "perceptual: done" in text and "groups 4" in text
    assert "Near-duplicate photos" in err.getvalue()  # the bars
    with pytest.raises(CommandError, match="Unknown step"):
        call_command("curate", "--steps", "nope", stdout=out, stderr=err)
    with pytest.raises(CommandError, match="no project"):
        call_command("curate", "--project", "999", stdout=out, stderr=err)
    queued = StringIO()
    call_command("curate", "--steps", "text", stdout=queued, stderr=err)  # queued (eager here: it runs)
    assert "Queued" in queued.getvalue()


def test_imported_comment_sets_count_towards_the_next_text_run(make_project, settings, source, tmp_path,
                                                              django_capture_on_commit_callbacks):
    from labeling import external

    settings.CURATION = {**settings.CURATION, "TEXT_RUN_EVERY_SETS": 2}
    project = make_project(0)
    rows = ""
    for n in range(2):
        path = tmp_path / f"vendor-{n}.jpg"
        path.write_bytes(synthetic.jpeg(synthetic.photo(600 + n, 320, 240)))
        rows += f"{path},reaction,와 맛있겠다 {n}\n"
    with django_capture_on_commit_callbacks(execute=True):
        ci = external.start_comment_import(project, data="path,comment_type,text\n" + rows, fmt="csv",
                                           source_name="Vendor", photo_source=source, file_name="c.csv",
                                           trusted=True, enqueue=False)
        ci = external.run_comment_import(ci.pk)
    assert ci.imported == 2, ci.error
    run = CurationRun.objects.get()
    assert (run.trigger, run.project_id, run.status) == (RunTrigger.COMMENTS, project.pk, RunStatus.DONE)
    assert run.run_steps.get(name="text").counts["comments"] == 2
