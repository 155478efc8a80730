"""Importing comments made elsewhere (labeling.external): Label Studio, COCO captions, CSV and
JSON Lines; photos through the normal ingest; idempotent re-import; bad rows and bad files; a
snapshot mixing imported and labelers' sets; the comment browser, export and stats with sets that
have no labeler."""
from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import translation

from datasets.models import Image, ImportJob
from labeling import comment_export, external, selectors, services
from labeling.models import (
    Assignment,
    Comment,
    CommentImport,
    CommentImportOutcome,
    CommentImportRow,
    ExternalSource,
    ProjectImage,
)
from labeling.snapshots import freeze_snapshot, labeler_pseudonym
from tests.conftest import make_photo
from tests.factories import texts


@pytest.fixture
def photos_dir(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in range(4):
        (folder / f"p{n}.jpg").write_bytes(make_photo(seed=100 + n))
    return folder


@pytest.fixture
def project(make_project, labelers):
    return make_project(0, overlap=2, members=labelers[:2])


def run(project, source, data, fmt, photos_dir, **kwargs):
    ci = external.start_comment_import(
        project, data=data if isinstance(data, (bytes, str)) else json.dumps(data, ensure_ascii=False),
        fmt=fmt, source_name=kwargs.pop("source_name", "Vendor A"), photo_source=source, images_dir=str(photos_dir),
        trusted=True, enqueue=False, **kwargs,
    )
    return external.run_comment_import(ci.pk)


def lines(ci):
    return {row.name: row for row in ci.rows.order_by("position")}


LABEL_STUDIO = [
    {"id": 11, "data": {"image": "/data/upload/1/p0.jpg", "licence": "cc-by-4.0", "author": "Kim"},
     "annotations": [
         {"id": 1, "result": [
             {"type": "textarea", "from_name": "short", "value": {"text": ["와 진짜 맛있겠다"]}},
             {"type": "textarea", "from_name": "specific", "value": {"text": ["족발 윤기가 장난 아니네요 쫀득해 보여요"]}},
             {"type": "choices", "from_name": "mood", "value": {"choices": ["happy"]}},
         ]},
         {"id": 2, "result": [{"type": "textarea", "from_name": "short", "value": {"text": ["고양이 너무 귀엽다"]}}]},
         {"id": 3, "was_cancelled": True, "result": []},
     ]},
    {"id": 12, "data": {"image": "/data/local-files/?d=p1.jpg"},
     "annotations": [{"id": 4, "result": [{"type": "textarea", "from_name": "mood", "value": {"text": ["음"]}}]}]},
    {"id": 13, "data": {"image": "missing.jpg"},
     "annotations": [{"id": 5, "result": [{"type": "textarea", "from_name": "short", "value": {"text": ["없는 사진이네"]}}]}]},
]


def test_label_studio_export_is_imported_with_a_set_per_annotation(project, source, photos_dir, users):
    ci = run(project, source, LABEL_STUDIO, "labelstudio", photos_dir, type_map={"short": "reaction"})
    assert (ci.total, ci.imported, ci.refused, ci.already, ci.comments) == (4, 2, 2, 0, 3)
    by_name = lines(ci)
    # from_name "mood" names no comment type: refused whole, and its photo was never imported.
    with translation.override("en"):
        assert "no comment type “mood”" in by_name["task 12, annotation 4"].reason_text
        assert "No such file" in by_name["task 13, annotation 5"].reason_text
    assert not Image.objects.filter(original_name="p1.jpg").exists()
    photo = Image.objects.get(original_name="p0.jpg")
    assert (photo.licence.code, photo.author, photo.source) == ("cc-by-4.0", "Kim", source)
    sets = Assignment.objects.filter(project=project, image=photo).order_by("external_id")
    assert [(a.labeler, a.external_source.name, a.external_id, a.status) for a in sets] == [
        (None, "Vendor A", "ls:11:1", "submitted"), (None, "Vendor A", "ls:11:2", "submitted")]
    assert sorted(Comment.objects.filter(assignment__in=sets).values_list("comment_type__slug", "text")) == [
        ("reaction", "고양이 너무 귀엽다"), ("reaction", "와 진짜 맛있겠다"), ("specific", "족발 윤기가 장난 아니네요 쫀득해 보여요")]
    # The photo joined the project's queue, and imported sets took no labeler's slot.
    row = ProjectImage.objects.get(project=project, image=photo)
    assert (row.slots_taken, row.submitted_count) == (0, 0)
    # The photos went through the catalogue's own import, with its per-photo report.
    job = ci.import_job
    assert (job.kind, job.accepted, job.refused) == ("manifest", 1, 1)


def test_re_importing_the_same_file_adds_nothing(project, source, photos_dir):
    first = run(project, source, LABEL_STUDIO, "labelstudio", photos_dir, type_map={"short": "reaction"})
    again = run(project, source, LABEL_STUDIO, "labelstudio", photos_dir, type_map={"short": "reaction"})
    assert (again.imported, again.already, again.refused) == (0, 2, 2)
    assert again.import_job.duplicates == 1 and Image.objects.count() == 1
    assert Assignment.objects.filter(external_source__isnull=False).count() == 2
    assert Comment.objects.count() == first.comments == 3
    with translation.override("en"):
        assert "Already imported" in lines(again)["task 11, annotation 1"].reason_text
    # Another source's copy of the same file is another set of sets.
    other = run(project, source, LABEL_STUDIO, "labelstudio", photos_dir, type_map={"short": "reaction"},
                source_name="Vendor B")
    assert other.imported == 2 and ExternalSource.objects.count() == 2


def coco(url_images=False):
    return {
        "licenses": [{"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}],
        "images": [{"id": 1, "file_name": "p2.jpg", "license": 1}, {"id": 2, "file_name": "p3.jpg"}],
        "annotations": [{"id": 10, "image_id": 1, "caption": "맛있는 떡볶이가 접시에 담겨 있어요"},
                        {"id": 11, "image_id": 1, "caption": "떡볶이 색이 진짜 빨갛다"},
                        {"id": 12, "image_id": 2, "caption": "  "},
                        {"id": 13, "image_id": 99, "caption": "사진이 없는 캡션"}],
    }


def test_coco_captions_each_caption_is_a_set_of_the_chosen_type(project, source, photos_dir):
    ci = run(project, source, coco(), "coco", photos_dir, comment_type="specific")
    assert (ci.imported, ci.refused) == (2, 2)
    with translation.override("en"):
        texts_ = {name: row.reason_text for name, row in lines(ci).items()}
    assert "Empty text" in texts_["annotation 12: p3.jpg"]
    assert "image_id 99" in texts_["annotation 13"]
    image = Image.objects.get(original_name="p2.jpg")
    assert image.external_id == "1" and image.licence.code == "cc-by-4.0"
    assert set(Comment.objects.values_list("comment_type__slug", flat=True)) == {"specific"}
    assert set(Assignment.objects.values_list("external_id", flat=True)) == {"coco:10", "coco:11"}


def test_csv_one_row_per_comment_grouped_by_set_id_and_rule_breaks_are_warnings(project, source, photos_dir):
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["path", "licence", "set_id", "comment_type", "text"])
    w.writerow(["p0.jpg", "", "a", "reaction", "와 진짜 맛있겠다"])
    w.writerow(["p0.jpg", "", "a", "specific", "ㅋㅋ"])  # breaks rules (too short, jamo only): a warning
    w.writerow(["p0.jpg", "", "b", "reaction", "e\u0301 decomposed"])  # stored NFC
    w.writerow(["p1.jpg", "no-such-licence", "", "reaction", "라이선스가 이상한 사진"])
    w.writerow(["p2.jpg", "", "", "nope", "없는 유형"])
    w.writerow(["p3.jpg", "", "", "reaction", "x" * (external.MAX_TEXT_LENGTH + 1)])
    ci = run(project, source, buf.getvalue(), "csv", photos_dir)
    by_name = lines(ci)
    assert (ci.imported, ci.refused, ci.warnings) == (2, 3, 1)
    a = by_name["row 2: p0.jpg, 3"]
    assert a.outcome == CommentImportOutcome.IMPORTED and set(a.warnings) >= {"too_short", "jamo_or_emoji_only"}
    assert Comment.objects.filter(text="\u00e9 decomposed").exists()
    with translation.override("en"):
        assert "Too short" in a.warnings_text
        assert "Unknown licence 'no-such-licence'" in by_name["row 5: p1.jpg"].reason_text
        assert "limit is 5,000" in by_name["row 7: p3.jpg"].reason_text or "5000" in by_name["row 7: p3.jpg"].reason_text
    # Refused rows stored nothing: no set, no photo imported for them.
    assert not Image.objects.filter(original_name__in=["p2.jpg", "p3.jpg"]).exists()
    assert not Assignment.objects.filter(image__original_name="p1.jpg").exists()


def test_jsonl_one_row_per_set_with_a_column_per_type(project, source, photos_dir):
    rows = [{"path": "p0.jpg", "text:reaction": "와 진짜 맛있겠다", "text:specific": "족발 윤기가 장난 아니네요"},
            {"path": "p1.jpg", "text:reaction": "고양이 귀엽다", "text:reaction2": "???"},
            "not json"]
    data = "\n".join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows)
    ci = run(project, source, data, "jsonl", photos_dir)
    assert (ci.imported, ci.refused) == (1, 2)
    with translation.override("en"):
        assert "not valid JSON" in lines(ci)["row 3"].reason_text


@pytest.mark.parametrize("fmt,data,message", [
    ("labelstudio", b"\xff\xfe not utf-8", "not UTF-8"),
    ("labelstudio", "{not json", "not valid JSON"),
    ("labelstudio", {"tasks": []}, "JSON list of tasks"),
    ("coco", [], "lists “images” and “annotations”"),
    ("csv", "name,text\nx,y\n", "'path' or 'url' column"),
    ("labelstudio", [], "holds no records"),
])
def test_a_file_that_cannot_be_read_is_refused_whole_and_writes_nothing(project, source, photos_dir, fmt, data,
                                                                        message):
    with translation.override("en"):
        with pytest.raises(ValidationError) as exc:
            external.start_comment_import(project, data=data if isinstance(data, (bytes, str)) else json.dumps(data),
                                          fmt=fmt, source_name="Vendor A", photo_source=source, trusted=True,
                                          enqueue=False)
        assert message in " ".join(exc.value.messages)
    assert not ImportJob.objects.exists() and not ExternalSource.objects.exists()


def test_snapshot_mixes_imported_and_labeler_sets_with_an_external_pseudonym(project, source, photos_dir, labelers):
    run(project, source, LABEL_STUDIO, "labelstudio", photos_dir, type_map={"short": "reaction"})
    photo = Image.objects.get(original_name="p0.jpg")
    # One labeler adds a set on the imported photo: with the two imported sets, three.
    a = services.next_assignment(project, labelers[0])
    assert a.image_id == photo.pk
    services.submit(a, labelers[0], texts(1))
    snapshot = freeze_snapshot("mixed", projects=[project], min_sets=3)
    assert (snapshot.image_count, snapshot.comment_count) == (1, 5)
    authors = sorted(set(snapshot.comments.values_list("labeler", flat=True)))
    assert authors == sorted([labeler_pseudonym(labelers[0].pk), "ext:vendor-a"])
    # Imported sets alone make a photo complete (overlap 2, two imported sets).
    assert freeze_snapshot("imported", projects=[project]).image_count == 1


def test_comment_browser_export_and_stats_show_the_external_source(project, source, photos_dir, labelers, client,
                                                                   users):
    run(project, source, LABEL_STUDIO, "labelstudio", photos_dir, type_map={"short": "reaction"})
    a = services.next_assignment(project, labelers[0])
    services.submit(a, labelers[0], texts(1))
    names = [c.assignment.author_name for c in selectors.project_comments(project, order="labeler")]
    assert names.count("Vendor A") == 3 and names.count(labelers[0].username) == 2
    only = selectors.project_comments(project, selectors.CommentFilters(labeler="ext:vendor-a"))
    assert only.count() == 3
    rows = [json.loads(line) for line in comment_export.jsonl_lines(project, selectors.CommentFilters())]
    assert {(r["labeler"], r["external_source"]) for r in rows} == {("ext:vendor-a", "Vendor A"),
                                                                     (labelers[0].username, "")}
    total, stats = selectors.labeler_stats(project)
    assert total == 2 and {r["username"]: r["submitted_count"] for r in stats}[labelers[0].username] == 1
    client.force_login(users["planner"])
    html = client.get(f"/projects/{project.pk}/comments/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Vendor A" in html and "?labeler=ext:vendor-a" in html
    page = client.get(reverse("image-detail", args=[a.image_id]), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and "Vendor A" in page.content.decode()


def test_management_command_imports_and_reports(project, source, photos_dir, tmp_path):
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(LABEL_STUDIO))
    out = io.StringIO()
    call_command("import_comments", str(project.pk), str(path), "--format", "labelstudio", "--source-name",
                 "Vendor A", "--photo-source", source.name, "--images", str(photos_dir), "--type-map",
                 "short=reaction", stdout=out)
    assert "2 sets imported (3 comments" in out.getvalue() and "task 13, annotation 5: refused" in out.getvalue()
    with pytest.raises(CommandError, match="No catalogue source"):
        call_command("import_comments", str(project.pk), str(path), "--format", "labelstudio", "--source-name",
                     "Nobody")


# ---------------------------------------------------------------- the API and the pages


def csv_file(name="comments.csv"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    body = "path,comment_type,text\np0.jpg,reaction,와 진짜 맛있겠다\np1.jpg,nope,없는 유형\n"
    return SimpleUploadedFile(name, body.encode(), content_type="text/csv")


def test_api_imports_a_file_and_reports_it(project, source, photos_dir, api, settings,
                                           django_capture_on_commit_callbacks):
    settings.INGEST = {**settings.INGEST, "ALLOWED_ROOTS": [str(photos_dir)]}
    url = reverse("api:project-comment-import-list", kwargs={"project_pk": project.pk})
    with django_capture_on_commit_callbacks(execute=True):
        r = api("planner").post(url, {"file": csv_file(), "format": "csv", "source_name": "Legacy tool",
                                      "photo_source": source.pk, "images_dir": str(photos_dir)}, format="multipart")
    assert r.status_code == 201, r.content
    assert r.json()["status"] == "queued"  # it runs on a worker once the request commits
    body = api("planner").get(reverse("api:project-comment-import-detail",
                                      kwargs={"project_pk": project.pk, "pk": r.json()["id"]})).json()
    assert (body["status"], body["imported"], body["refused"], body["external_pseudonym"]) == (
        "done", 1, 1, "ext:legacy-tool")
    rows = api("engineer").get(reverse("api:project-comment-import-rows",
                                       kwargs={"project_pk": project.pk, "pk": body["id"]}),
                               HTTP_ACCEPT_LANGUAGE="en").json()["results"]
    assert [r["outcome"] for r in rows] == ["imported", "refused"]
    assert rows[1]["reason_code"] == "unknown_comment_type" and "nope" in rows[1]["reason"]
    assert api("labeler").get(url).status_code == 403
    # A folder outside the allowed roots is each photo's refusal, as for manifests.
    with django_capture_on_commit_callbacks(execute=True):
        r = api("planner").post(url, {"file": csv_file(), "format": "csv", "source_name": "Legacy tool",
                                      "photo_source": source.pk, "images_dir": "/etc"}, format="multipart")
    ci = CommentImport.objects.get(pk=r.json()["id"])
    assert (ci.imported, ci.refused) == (0, 2)


def test_api_refuses_a_bad_file_with_400_and_writes_nothing(project, source, api):
    from django.core.files.uploadedfile import SimpleUploadedFile

    url = reverse("api:project-comment-import-list", kwargs={"project_pk": project.pk})
    r = api("planner").post(url, {"file": SimpleUploadedFile("x.json", b"[1, 2"), "format": "labelstudio",
                                  "source_name": "X", "photo_source": source.pk}, format="multipart",
                            HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 400 and "not valid JSON" in str(r.json())
    assert not ImportJob.objects.exists()


def test_pages_import_and_show_the_report(project, source, photos_dir, client, users, settings,
                                          django_capture_on_commit_callbacks):
    settings.INGEST = {**settings.INGEST, "ALLOWED_ROOTS": [str(photos_dir)]}
    client.force_login(users["planner"])
    page = reverse("project-comment-imports", args=[project.pk])
    assert "Import comments made elsewhere" in client.get(page, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post(page, {"file": csv_file(), "format": "csv", "source_name": "Legacy tool",
                               "photo_source": source.pk, "images_dir": str(photos_dir)})
    assert r.status_code == 302
    report = client.get(r["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Legacy tool" in report and "ext:legacy-tool" in report and "no comment type “nope”" in report
    refused = client.get(r["Location"] + "?outcome=refused", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "p1.jpg" in refused and "p0.jpg" not in refused
    # A bad file stays on the form with its reason.
    from django.core.files.uploadedfile import SimpleUploadedFile

    r = client.post(page, {"file": SimpleUploadedFile("x.json", b"{}"), "format": "coco", "source_name": "X",
                           "photo_source": source.pk}, HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 200 and "lists “images” and “annotations”" in r.content.decode()
    # Engineers read; only planners import.
    client.force_login(users["engineer"])
    assert client.get(page).status_code == 200
    assert client.post(page, {}).status_code == 403
    client.force_login(users["labeler"])
    assert client.get(page).status_code == 403


def test_a_run_that_crashes_part_way_goes_on_without_storing_anything_twice(project, source, photos_dir, monkeypatch):
    ci = external.start_comment_import(project, data=json.dumps(LABEL_STUDIO), fmt="labelstudio",
                                       source_name="Vendor A", photo_source=source, images_dir=str(photos_dir),
                                       type_map={"short": "reaction"}, trusted=True, enqueue=False)
    monkeypatch.setattr(external, "STORE_BATCH", 1)
    real, calls = external._store_batch, []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise ConnectionError("worker lost")
        return real(*args, **kwargs)

    monkeypatch.setattr(external, "_store_batch", crash_on_second)
    with pytest.raises(ConnectionError):
        external.run_comment_import(ci.pk)
    assert Assignment.objects.count() == 1
    monkeypatch.setattr(external, "_store_batch", real)
    ci = external.run_comment_import(ci.pk)
    assert (ci.status, ci.imported, ci.already, ci.refused, ci.comments) == ("done", 2, 0, 2, 3)
    assert Assignment.objects.count() == 2 and Comment.objects.count() == 3 and Image.objects.count() == 1


def test_a_batch_that_meets_a_concurrent_run_goes_one_set_at_a_time(project, source, photos_dir, monkeypatch):
    from django.db import IntegrityError

    real, calls = CommentImportRow.objects.bulk_create, []

    def conflict_once(objs, *args, **kwargs):
        if not calls and any(o.outcome == CommentImportOutcome.IMPORTED for o in objs):  # the batch's lines
            calls.append(1)
            raise IntegrityError("reported by another run")
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(CommentImportRow.objects, "bulk_create", conflict_once)
    ci = run(project, source, LABEL_STUDIO, "labelstudio", photos_dir, type_map={"short": "reaction"})
    assert (ci.imported, ci.refused, ci.comments) == (2, 2, 3) and Comment.objects.count() == 3


def test_hostile_values_are_reported_not_crashed_on(project, source, photos_dir):
    tasks = [
        {"id": "t\x00", "data": {"image": "p0.jpg"}, "annotations": [
            {"id": "a\ud800", "result": [{"type": "textarea", "from_name": "reaction", "value": {"text": ["좋아요\x00"]}}]},
            {"id": 2, "result": [{"type": "textarea", "from_name": "re\x00action", "value": {"text": ["좋아요"]}}]},
            {"id": 3, "result": [{"type": "textarea", "from_name": "reaction", "value": {"text": [1, 2]}}]},
            {"id": 4, "result": "not a list"},
        ]},
        {"id": 5, "data": {"image": ["p1.jpg"]}, "annotations": 7},
        "not a task",
    ]
    ci = run(project, source, json.dumps(tasks), "labelstudio", photos_dir)
    assert (ci.imported, ci.refused) == (0, 6)
    names = [row.name for row in ci.rows.order_by("position")]
    assert names[0] == "task t\\x00, annotation a\\ud800"
    coco_doc = {"images": [{"id": [1]}, {"id": 1, "file_name": "p0.jpg"}],
                "annotations": [{"id": 1, "image_id": {"x": 1}, "caption": "하나"}, {"id": 2, "image_id": 1, "caption": 5}]}
    ci = run(project, source, json.dumps(coco_doc), "coco", photos_dir)
    assert (ci.imported, ci.refused) == (1, 1)
    with pytest.raises(ValidationError):
        external.start_comment_import(project, data="[]", fmt="labelstudio", source_name="a\x00b",
                                      photo_source=source, enqueue=False)
