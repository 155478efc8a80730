"""Exports run as shard groups (datasets.export.services): planning, groups, finishing with
SHA256SUMS last, resuming, determinism against the single-process writer, two exports of one
version at once, refusals, missing photo files, the command with its bar, the API and the pages."""
from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.core.management import CommandError, call_command
from django.db import connection
from django.urls import reverse
from django.utils import translation

from datasets import services as dataset_services
from datasets.export import services
from datasets.export.errors import ExportConflict, ExportError
from datasets.export.source import export_to_directory
from datasets.models import Export, ExportShard, ExportStatus, ShardStatus, Snapshot, SnapshotImage
from tests.exporting import check_sums, folder_files, make_snapshot

SMALL = {"max_samples": 4}


@pytest.fixture(autouse=True)
def _export_root(settings, tmp_path):
    settings.EXPORT = {**settings.EXPORT, "ROOT": str(tmp_path / "exports"), "SHARDS_PER_TASK": 2}
    services._rows_cache.clear()


def run_all(export: Export) -> Export:
    """Every pending group in this process, in order, then the finishing step (what the tasks do)."""
    return services.run_export(export)


# ---------------------------------------------------------------- the run


@pytest.mark.django_db
def test_an_export_is_planned_in_groups_written_and_finished_with_sha256sums_last(tmp_path, django_capture_on_commit_callbacks):
    snapshot = make_snapshot(10, 3)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        export = services.start_export(snapshot, "", SMALL, None)
    assert export.status == ExportStatus.QUEUED
    assert export.folder == str(tmp_path / "exports" / "food" / "v1")
    shards = list(export.shards.all())
    assert export.shards_total == len(shards) >= 4
    assert [s.group for s in shards] == [n // 2 for n in range(len(shards))]  # two shards a task
    assert {s.path.split("/")[0] for s in shards} >= {"train", "val", "test", "eval"}
    assert export.samples_total == 30
    assert len(queued) == 1  # one callback queues every group, after the commit

    export = run_all(export)
    assert export.status == ExportStatus.DONE, export.error
    assert (export.shards_done, export.samples_done, export.percent) == (export.shards_total, 30, 100)
    sums = check_sums(export.folder)
    assert set(sums) == {f["path"] for f in export.files} - {"SHA256SUMS"}
    assert {"manifest.parquet", "images.parquet", "train/sizes.json", "stats.json", "dataset_card.md",
            "croissant.json", "labelstudio.json", "coco_captions.json"} <= set(sums)
    assert export.sums_sha256 == hashlib.sha256(Path(export.folder, "SHA256SUMS").read_bytes()).hexdigest()
    # No temporary file left, nothing outside the listing but SHA256SUMS itself.
    assert set(folder_files(export.folder)) == set(sums) | {"SHA256SUMS"}


@pytest.mark.django_db
def test_the_groups_run_through_the_tasks_and_the_last_one_queues_the_finish_once(
        tmp_path, monkeypatch, django_capture_on_commit_callbacks):
    """Eager Celery (tests/conftest.py): the tasks run as they are queued."""
    from datasets import tasks

    snapshot = make_snapshot(8, 2)
    export = services.start_export(snapshot, "eager", SMALL, None, enqueue=False)
    calls = []
    real = services.finalize_export
    monkeypatch.setattr(services, "finalize_export", lambda export_id: calls.append(export_id) or real(export_id))
    with django_capture_on_commit_callbacks(execute=True):
        for group in sorted(set(export.shards.values_list("group", flat=True))):
            tasks.export_group_task.delay(export.pk, group)
        # A group delivered twice (a redelivery) writes nothing new and finishes nothing again.
        tasks.export_group_task.delay(export.pk, 0)
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE, export.error
    assert calls == [export.pk]
    assert export.shards_done == export.shards_total


@pytest.mark.django_db
def test_the_distributed_export_is_byte_identical_to_the_single_process_writer(tmp_path):
    snapshot = make_snapshot(12, 3)
    export = run_all(services.start_export(snapshot, str(tmp_path / "dist"), SMALL, None, trusted=True,
                                           enqueue=False))
    assert export.status == ExportStatus.DONE, export.error
    from datasets.export.layout import ExportOptions

    # Read back from the database, as every worker does (PostgreSQL's jsonb orders `ratios`' keys).
    export_to_directory(Snapshot.objects.get(pk=snapshot.pk), tmp_path / "single", ExportOptions(**SMALL))
    distributed, single = folder_files(export.folder), folder_files(tmp_path / "single")
    assert sorted(distributed) == sorted(single)
    assert [p for p in distributed if distributed[p] != single[p]] == []


@pytest.mark.django_db
def test_a_second_export_of_the_same_version_has_the_same_sha256sums(tmp_path):
    snapshot = make_snapshot(9, 2)
    first = run_all(services.start_export(snapshot, "a", SMALL, None, enqueue=False))
    services._rows_cache.clear()
    second = run_all(services.start_export(snapshot, "b", SMALL, None, enqueue=False))
    assert first.status == second.status == ExportStatus.DONE
    assert first.sums_sha256 == second.sums_sha256
    assert folder_files(first.folder) == folder_files(second.folder)


@pytest.mark.django_db
def test_resume_skips_the_shards_already_written_and_rewrites_a_lost_one(tmp_path, monkeypatch):
    snapshot = make_snapshot(10, 3)
    export = services.start_export(snapshot, "", SMALL, None, enqueue=False)
    services.run_shard_group(export.pk, 0, enqueue_finalize=False)
    # The worker "dies" in group 1: the export fails with the reason, group 0 stays written.
    monkeypatch.setattr(services.layout, "write_shard", _boom)
    export = services.run_shard_group(export.pk, 1, enqueue_finalize=False)
    monkeypatch.undo()
    assert export.status == ExportStatus.FAILED and "disk on fire" in export.error
    done = {s.path: s.sha256 for s in export.shards.filter(status=ShardStatus.DONE)}
    assert len(done) == 2 and export.shards_done == 2
    first = sorted(done)[0]
    mtime = Path(export.folder, first).stat().st_mtime_ns
    second = sorted(done)[1]
    Path(export.folder, second).unlink()  # a file lost meanwhile

    written = []
    real = services.layout.write_shard
    monkeypatch.setattr(services.layout, "write_shard", lambda spec, *a, **k: written.append(spec.path) or real(spec, *a, **k))
    export = services.resume_export(export, enqueue=False)
    assert export.status == ExportStatus.QUEUED
    export = run_all(export)
    assert export.status == ExportStatus.DONE, export.error
    assert first not in written and second in written  # skipped: there with its checksum
    assert Path(export.folder, first).stat().st_mtime_ns == mtime
    assert export.shards_done == export.shards_total  # counted once each
    check_sums(export.folder)


def _boom(*args, **kwargs):
    raise OSError(28, "disk on fire")


@pytest.mark.django_db
def test_a_finished_export_is_verified_not_rewritten_and_other_options_are_refused(tmp_path):
    snapshot = make_snapshot(6, 2)
    first = run_all(services.start_export(snapshot, "", SMALL, None, enqueue=False))
    before = {p: Path(first.folder, p).stat().st_mtime_ns for p in folder_files(first.folder)}
    again = run_all(services.start_export(snapshot, "", SMALL, None, enqueue=False))
    assert again.status == ExportStatus.DONE and again.sums_sha256 == first.sums_sha256
    assert {p: Path(first.folder, p).stat().st_mtime_ns for p in folder_files(first.folder)} == before

    with pytest.raises(ExportConflict) as refused:
        services.start_export(snapshot, "", {"max_samples": 5}, None, enqueue=False)
    with translation.override("en"):
        assert "already holds a finished export of this version with other options" in refused.value.text()
    assert Export.objects.count() == 2

    # The same folder filled by something this database does not know: checked file by file.
    Export.objects.all().delete()
    other = run_all(services.start_export(snapshot, "", {"max_samples": 5}, None, enqueue=False))
    assert other.status == ExportStatus.FAILED and other.error_code == "content_differs"
    assert {p: Path(first.folder, p).stat().st_mtime_ns for p in folder_files(first.folder)} == before


@pytest.mark.django_db
def test_a_running_export_with_other_options_to_the_same_folder_is_refused(tmp_path):
    snapshot = make_snapshot(4, 1)
    services.start_export(snapshot, "", SMALL, None, enqueue=False)
    with pytest.raises(ExportConflict) as refused:
        services.start_export(snapshot, "", {"max_samples": 9}, None, enqueue=False)
    assert refused.value.code == "busy_other_options"
    services.start_export(snapshot, "", SMALL, None, enqueue=False)  # the same options: allowed


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_exports_of_the_same_version_at_once_end_identical_and_valid(tmp_path):
    snapshot = make_snapshot(12, 2)
    a = services.start_export(snapshot, "", SMALL, None, enqueue=False)
    b = services.start_export(snapshot, "", SMALL, None, enqueue=False)
    if connection.vendor == "sqlite":
        # SQLite takes one writer at a time (the in-memory test database answers a second one
        # "table is locked"): the two runs interleave group by group, each finishing on its own.
        groups = sorted(set(a.shards.values_list("group", flat=True)))
        for group in groups:
            services.run_shard_group(a.pk, group, enqueue_finalize=False)
            services.run_shard_group(b.pk, group, enqueue_finalize=False)
        services.run_export(Export.objects.get(pk=b.pk))
        services.run_export(Export.objects.get(pk=a.pk))
        threads = []
    errors = []

    def run(export):
        try:
            run_all(export)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    if connection.vendor != "sqlite":
        threads = [threading.Thread(target=run, args=(e,)) for e in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.status == b.status == ExportStatus.DONE, (a.error, b.error)
    assert a.sums_sha256 == b.sums_sha256
    check_sums(a.folder)
    assert not [p for p in folder_files(a.folder) if p.endswith(".part")]


# ---------------------------------------------------------------- refusals and problems


@pytest.mark.django_db
def test_an_empty_snapshot_bad_options_and_bad_destinations_are_refused_with_the_reason(tmp_path):
    empty = Snapshot.objects.create(name="empty", version=1, min_sets=1)
    snapshot = make_snapshot(2, 1)
    with translation.override("en"):
        with pytest.raises(ExportError, match="no photos"):
            services.start_export(empty, "", None, None)
        with pytest.raises(ExportError, match="max_samples"):
            services.start_export(snapshot, "", {"max_samples": 0}, None)
        with pytest.raises(ExportError, match="not valid"):
            services.start_export(snapshot, "", {"colour": "red"}, None)
        with pytest.raises(ExportError, match="outside it"):
            services.start_export(snapshot, "../../etc", None, None)
        with pytest.raises(ExportError, match="outside it"):
            services.start_export(snapshot, "/tmp", None, None)
        with pytest.raises(ExportError, match="s3://bucket/prefix"):
            services.start_export(snapshot, "ftp://host/x", None, None)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(ExportError) as refused:
        services.start_export(snapshot, str(blocked), None, None, trusted=True)
    assert refused.value.code == "folder_unwritable"
    assert Export.objects.count() == 0


@pytest.mark.django_db
def test_an_archived_version_is_exported_as_it_was_frozen(tmp_path):
    snapshot = dataset_services.archive_snapshot(make_snapshot(3, 1))
    export = run_all(services.start_export(snapshot, "", None, None, enqueue=False))
    assert export.status == ExportStatus.DONE


@pytest.mark.django_db
def test_photos_whose_file_is_missing_are_reported_not_crashed_on(tmp_path):
    snapshot = make_snapshot(6, 2, missing=2)
    export = run_all(services.start_export(snapshot, "", SMALL, None, enqueue=False))
    assert export.status == ExportStatus.DONE, export.error
    missing = {str(i) for i in SnapshotImage.objects.filter(snapshot=snapshot).order_by("-image_id")
               .values_list("image_id", flat=True)[:2]}
    assert {p["image_id"] for p in export.problems if p["code"] == "missing_file"} == missing
    assert export.samples_done == 8  # the other photos' comments
    check_sums(export.folder)


@pytest.mark.django_db
def test_cancel_stops_before_the_next_shard_and_resume_finishes(tmp_path, users):
    snapshot = make_snapshot(8, 2)
    export = services.start_export(snapshot, "", SMALL, None, enqueue=False)
    services.run_shard_group(export.pk, 0, enqueue_finalize=False)
    export = services.cancel_export(export, users["engineer"])
    assert export.status == ExportStatus.CANCELLED
    with translation.override("en"):
        assert export.error_text == "Cancelled by engineer1."
    assert services.run_shard_group(export.pk, 1).shards_done == 2  # nothing written after the cancel
    with pytest.raises(ExportConflict):
        services.cancel_export(export)
    assert not Path(export.folder, "SHA256SUMS").exists()
    export = run_all(services.resume_export(export, enqueue=False))
    assert export.status == ExportStatus.DONE
    with pytest.raises(ExportConflict) as refused:
        services.resume_export(export)
    assert refused.value.code == "not_resumable"


@pytest.mark.django_db
def test_a_stalled_export_can_be_resumed_and_a_live_one_cannot(tmp_path, settings):
    snapshot = make_snapshot(3, 1)
    export = services.start_export(snapshot, "", None, None, enqueue=False)
    with pytest.raises(ExportConflict):
        services.resume_export(export)
    settings.EXPORT = {**settings.EXPORT, "STALE_SECONDS": 0}
    assert services.is_stalled(export)
    assert services.resume_export(export, enqueue=False).status == ExportStatus.QUEUED


@pytest.mark.django_db
def test_a_shard_gone_before_the_finish_fails_the_export_instead_of_marking_it_done(tmp_path):
    snapshot = make_snapshot(6, 2)
    export = services.start_export(snapshot, "", SMALL, None, enqueue=False)
    for group in sorted(set(export.shards.values_list("group", flat=True))):
        services.run_shard_group(export.pk, group, enqueue_finalize=False)
    shard = export.shards.first()
    Path(export.folder, shard.path).write_bytes(b"half")  # truncated under its final name
    export = services.finalize_export(export.pk)
    assert export.status == ExportStatus.FAILED and export.error_code == "file_missing"
    assert not Path(export.folder, "SHA256SUMS").exists()
    assert ExportShard.objects.get(pk=shard.pk).status == ShardStatus.PENDING
    export = run_all(services.resume_export(export, enqueue=False))
    assert export.status == ExportStatus.DONE
    check_sums(export.folder)


# ---------------------------------------------------------------- the command


@pytest.mark.django_db
def test_the_command_exports_with_a_progress_bar_by_id_or_label(tmp_path):
    snapshot = make_snapshot(6, 2)
    out, err = io.StringIO(), io.StringIO()
    call_command("export_snapshot", "food v1", "--to", str(tmp_path / "cli"), "--max-samples", "3",
                 "--image", "resized", "--shortest-side", "64", stdout=out, stderr=err)
    export = Export.objects.get()
    assert export.status == ExportStatus.DONE
    assert export.options["image_mode"] == "resized"
    assert f"Export {export.pk} done" in out.getvalue()
    assert f"{export.shards_total}/{export.shards_total}" in err.getvalue() and "shard" in err.getvalue()
    check_sums(tmp_path / "cli" / "food" / "v1")
    with pytest.raises(CommandError, match="There is no snapshot"):
        call_command("export_snapshot", "nope v3", "--to", str(tmp_path), stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="other options"):
        call_command("export_snapshot", str(snapshot.pk), "--to", str(tmp_path / "cli"), stdout=io.StringIO(),
                     stderr=io.StringIO())


# ---------------------------------------------------------------- API


@pytest.mark.django_db
def test_the_api_starts_lists_follows_cancels_and_resumes_an_export(api, tmp_path, django_capture_on_commit_callbacks):
    snapshot = make_snapshot(6, 2)
    url = f"/api/snapshots/{snapshot.pk}/exports/"
    with django_capture_on_commit_callbacks(execute=False):
        response = api("engineer").post(url, {"destination": "mine", "options": {"max_samples": 3}}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["options"]["max_samples"] == 3 and body["files"] == []
    export_id = body["id"]
    assert [e["id"] for e in api("planner").get(url).json()["results"]] == [export_id]

    cancelled = api("planner").post(f"/api/exports/{export_id}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api("planner").post(f"/api/exports/{export_id}/cancel/", HTTP_ACCEPT_LANGUAGE="en")
    assert again.status_code == 409 and again.json()["code"] == "not_cancellable"
    with django_capture_on_commit_callbacks(execute=True):
        resumed = api("engineer").post(f"/api/exports/{export_id}/resume/")
    assert resumed.status_code == 200
    detail = api("engineer").get(f"/api/exports/{export_id}/").json()
    assert detail["status"] == "done" and detail["percent"] == 100 and detail["sums_sha256"]
    files = {f["path"]: f for f in detail["files"]}
    assert {"SHA256SUMS", "manifest.parquet", "dataset_card.md"} <= set(files)
    link = files["SHA256SUMS"]["url"]
    assert link.startswith(f"http://testserver/api/exports/{export_id}/files/")
    got = api("planner").get(link)
    assert got.status_code == 200
    assert b"".join(got.streaming_content) == Path(detail["folder"], "SHA256SUMS").read_bytes()

    bad = api("engineer").post(url, {"destination": "/etc", "options": {}}, format="json", HTTP_ACCEPT_LANGUAGE="en")
    assert bad.status_code == 400 and bad.json()["code"] == "outside_root"
    assert api("labeler").get(f"/api/exports/{export_id}/").status_code == 403


@pytest.mark.django_db
def test_the_file_view_serves_only_listed_files_of_a_done_export_to_exporters(client, users, tmp_path):
    snapshot = make_snapshot(3, 1)
    export = run_all(services.start_export(snapshot, "", None, None, enqueue=False))
    Path(export.folder).parent.joinpath("secret.txt").write_text("no")
    client.force_login(users["engineer"])
    ok = client.get(reverse("export-file", args=[export.pk, "dataset_card.md"]))
    assert ok.status_code == 200 and "attachment" in ok["Content-Disposition"]
    for path in ("../secret.txt", "nope.txt", "train/../../secret.txt"):
        assert client.get(reverse("export-file", args=[export.pk, path])).status_code == 404
    client.force_login(users["labeler"])
    assert client.get(reverse("export-file", args=[export.pk, "dataset_card.md"])).status_code == 403


# ---------------------------------------------------------------- pages


@pytest.mark.django_db
def test_the_export_section_renders_for_a_snapshot_with_its_exports_files_and_problems(rf, users, tmp_path):
    from django.template.loader import render_to_string

    snapshot = make_snapshot(4, 1, missing=1)
    done = run_all(services.start_export(snapshot, "", None, None, enqueue=False))
    running = services.start_export(snapshot, "again", None, users["planner"], enqueue=False)
    request = rf.get("/somewhere/")
    request.user = users["planner"]
    with translation.override("en"):
        html = render_to_string("datasets/_snapshot_exports.html", {"snapshot": snapshot}, request=request)
    assert f'id="export-{done.pk}"' in html and f'id="export-{running.pk}"' in html
    assert reverse("export-file", args=[done.pk, "SHA256SUMS"]) in html
    assert "1 problem reported" in html and "Cancel export" in html
    assert reverse("snapshot-exports", args=[snapshot.pk]) in html and 'name="destination"' in html
    assert 'value="/somewhere/"' in html  # the POSTs come back here
    assert "js/exports.js" in html


@pytest.mark.django_db
def test_the_page_posts_start_cancel_and_resume_and_come_back_to_next(client, users, tmp_path,
                                                                      django_capture_on_commit_callbacks):
    snapshot = make_snapshot(4, 1)
    client.force_login(users["engineer"])
    form = {"destination": "page", "max_samples": 2, "max_mib": 16, "image_mode": "stored", "shortest_side": 512,
            "jpeg_quality": 90, "next": "/datasets/exports/"}
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("snapshot-exports", args=[snapshot.pk]), form)
    assert response.status_code == 302 and response["Location"] == "/datasets/exports/"
    export = Export.objects.get()
    assert export.options["max_bytes"] == 16 * 1024 * 1024
    response = client.post(reverse("export-cancel", args=[export.pk]), {"next": "https://evil.example/"})
    assert response["Location"] == reverse("export-detail", args=[export.pk])  # not an outside URL
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("export-resume", args=[export.pk]))
    export.refresh_from_db()
    assert export.status == ExportStatus.DONE
    page = client.get(reverse("export-detail", args=[export.pk]), HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and b"SHA256SUMS" in page.content
    progress = client.get(reverse("export-progress", args=[export.pk])).json()
    assert progress["finished"] and progress["percent"] == 100
    bad = client.post(reverse("snapshot-exports", args=[snapshot.pk]), {**form, "destination": "/etc"},
                      HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert b"outside it" in bad.content
    client.force_login(users["labeler"])
    assert client.post(reverse("snapshot-exports", args=[snapshot.pk]), form).status_code == 403
    assert default_storage  # media untouched by exports


@pytest.mark.django_db
def test_an_unexpected_error_in_a_task_fails_the_export_with_its_name(tmp_path, monkeypatch):
    from datasets import tasks

    snapshot = make_snapshot(3, 1)
    export = services.start_export(snapshot, "", None, None, enqueue=False)
    monkeypatch.setattr(services, "_write_one", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        tasks.export_group_task.delay(export.pk, 0)
    export.refresh_from_db()
    assert export.status == ExportStatus.FAILED and export.error_code == "worker_failed"
    with translation.override("en"):
        assert "ZeroDivisionError" in export.error_text and "Resume it" in export.error_text
    assert services.can_resume(export)
