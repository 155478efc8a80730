"""The export pages in Chromium: a snapshot's export section with the start form, an export's
own page whose bar moves while the shards are written and which shows its files once done, and
the Resume and Cancel buttons."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from datasets.export import services
from datasets.models import Export, ExportStatus
from tests.exporting import make_snapshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture(autouse=True)
def _export_root(settings, tmp_path):
    settings.EXPORT = {**settings.EXPORT, "ROOT": str(tmp_path / "exports"), "SHARDS_PER_TASK": 1}
    services._rows_cache.clear()


def test_an_engineer_starts_an_export_watches_it_finish_and_downloads_its_files(new_page, users, login, shot,
                                                                               monkeypatch):
    from datasets import tasks

    snapshot = make_snapshot(6, 2, missing=1)
    page = new_page(locale="en-US")
    login(page, "engineer1")
    page.goto(f"/datasets/snapshots/{snapshot.pk}/exports/")
    assert page.get_by_text("Not exported yet.").is_visible()
    page.fill("input[name=destination]", "browser")
    page.fill("input[name=max_samples]", "2")
    queued = []
    monkeypatch.setattr(tasks.export_group_task, "delay", lambda *a: queued.append(a))  # nothing runs yet
    page.click("text=Start export")
    page.wait_for_load_state()
    monkeypatch.undo()
    export = Export.objects.get()
    assert queued and page.url.endswith(f"/datasets/snapshots/{snapshot.pk}/exports/")
    row = page.locator(f"#export-{export.pk}")
    assert row.locator("[data-export-status]").inner_text() == "Queued"

    # The first groups are written: the bar moves without a reload.
    for export_id, group in queued[:2]:
        services.run_shard_group(export_id, group, enqueue_finalize=False)
    expect(row.locator("[data-export-text]")).to_have_text(re.compile(r"^2 / "), timeout=10_000)
    assert row.locator("[data-export-status]").inner_text() == "Running"
    width = row.locator("[data-export-bar]").evaluate("e => e.style.width")
    assert width != "0%"
    shot(page, "export-running")

    # The rest, and the finish: the page reloads itself and lists the files.
    for export_id, group in queued[2:]:
        services.run_shard_group(export_id, group, enqueue_finalize=False)
    services.run_export(Export.objects.get(pk=export.pk))
    page.wait_for_selector(f"#export-{export.pk} .export-files", timeout=20_000)
    assert row.locator("[data-export-status]").inner_text() == "Done"
    assert "1 problem reported" in row.inner_text()
    page.click("summary:has-text('train/')")
    shot(page, "export-done")
    link = row.locator("a", has_text="SHA256SUMS").get_attribute("href")
    response = page.request.get(link)
    assert response.status == 200 and re.match(rb"[0-9a-f]{64}  ", response.body())

    page.goto(f"/datasets/exports/{export.pk}/")
    assert page.locator("h1").inner_text() == f"Export {export.pk} of food v1"
    assert page.locator("form.export-form").count() == 0  # its own page: that export only
    shot(page, "export-detail")


def test_cancel_and_resume_buttons(new_page, users, login, shot, django_capture_on_commit_callbacks):
    snapshot = make_snapshot(3, 1)
    export = services.start_export(snapshot, "", None, users["planner"], enqueue=False)
    page = new_page(locale="en-US")
    login(page, "planner1")
    page.goto(f"/datasets/exports/{export.pk}/")
    page.click("text=Cancel export")
    page.wait_for_load_state()
    assert page.locator(f"#export-{export.pk} [data-export-status]").inner_text() == "Cancelled"
    assert "Cancelled by planner1." in page.locator(f"#export-{export.pk} [data-export-error]").inner_text()
    shot(page, "export-cancelled")
    page.click("text=Resume export")  # eager Celery: the groups and the finish run in the request
    page.wait_for_load_state()
    assert Export.objects.get(pk=export.pk).status == ExportStatus.DONE
    page.wait_for_selector(f"#export-{export.pk} .export-files")
