"""The training-run pages in Chromium: an engineer reaches them from the menu and from a
snapshot's page, sorts by a metric with a click, filters by kind, opens a run and removes one."""
from __future__ import annotations

import pytest

from datasets.models import Export, Snapshot, TrainingRun
from datasets.runs.services import register_run
from tests.runfolders import GENERATIVE_METRICS, write_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


@pytest.fixture
def runs(tmp_path):
    made = {}
    for version in (1, 2):
        snap = Snapshot.objects.create(name="food", version=version, min_sets=1)
        Export.objects.create(snapshot=snap, destination="/x", folder=f"/x/food/v{version}", status="done",
                              sums_sha256=f"{version}" * 64)
        made[f"v{version}"] = snap
    for run_id, options in [
        ("retrieval-20261129-101500-aaaaaa", {"snapshot": ("food", 1), "checksum": "1" * 64, "metrics": {
            "image_to_text_R@1": 0.21, "image_to_text_R@5": 0.50, "image_to_text_R@10": 0.62,
            "text_to_image_R@1": 0.19, "text_to_image_R@5": 0.47, "text_to_image_R@10": 0.60}}),
        ("retrieval-20261129-111500-bbbbbb", {"snapshot": ("food", 2), "checksum": "2" * 64, "metrics": {
            "image_to_text_R@1": 0.24, "image_to_text_R@5": 0.53, "image_to_text_R@10": 0.64,
            "text_to_image_R@1": 0.22, "text_to_image_R@5": 0.45, "text_to_image_R@10": 0.61}}),
        ("retrieval-20261129-121500-cccccc", {"snapshot": ("drinks", 3), "status": "running", "evaluated": False}),
        ("generative-20261129-101500-dddddd", {"kind": "generative", "snapshot": ("food", 1), "checksum": "1" * 64}),
        ("generative-20261129-111500-eeeeee", {"kind": "generative", "snapshot": ("food", 2), "checksum": "2" * 64,
                                               "metrics": {**GENERATIVE_METRICS, "BLEU-4": 3.4, "CIDEr": 12.1,
                                                           "PPL": 26.5}}),
    ]:
        made[run_id] = register_run(str(write_run(tmp_path, run_id, **options)), trusted=True)[0]
    return made


def column(page, kind: str, index: int) -> list[str]:
    return page.locator(f'table[data-kind="{kind}"] tbody tr').evaluate_all(
        f"rows => rows.map(r => r.cells[{index}].innerText.trim())")


def test_an_engineer_compares_runs_sorts_filters_and_opens_one(new_page, users, login, shot, runs):
    page = new_page(viewport=(1280, 900), locale="en-US")
    login(page, "engineer1")
    page.goto("/")
    page.click("#main-nav >> text=Runs")
    assert page.locator("h1").inner_text() == "Training runs"
    ret = page.locator('table[data-kind="retrieval"]')
    assert column(page, "retrieval", 0)[:3] == ["drinks v3 unknown snapshot", "food v2", "food v1"]
    best = ret.locator("td.best")
    assert best.count() == 6 - 1 + 1  # v2 best in five columns, v1 in T→I R@5
    shot(page, "runs-list")

    page.click('table[data-kind="retrieval"] th[data-column="i2t_r1"] a')
    assert column(page, "retrieval", 1)[0].startswith("retrieval-20261129-111500-bbbbbb")
    assert page.locator('th[data-column="i2t_r1"]').get_attribute("aria-sort") == "descending"
    page.click('table[data-kind="retrieval"] th[data-column="i2t_r1"] a')
    assert column(page, "retrieval", 1)[0].startswith("retrieval-20261129-101500-aaaaaa")
    assert column(page, "retrieval", 1)[-1].startswith("retrieval-20261129-121500-cccccc")  # no value: last

    page.select_option("#f-kind", "generative")
    page.click("#run-filters button[type=submit]")
    page.wait_for_load_state()
    assert page.locator('table[data-kind="retrieval"]').count() == 0
    gen = page.locator('table[data-kind="generative"]')
    assert gen.locator('td.best[data-column="ppl"]').inner_text().startswith("26.500")
    assert "kiwi" in gen.inner_text()
    shot(page, "runs-generative")

    page.click("text=generative-20261129-111500-eeeeee")
    page.wait_for_load_state()
    assert "food v2" in page.locator(".page-head").inner_text()
    assert page.locator(".epoch-table tbody tr").count() == 2
    assert "checkpoints/last.pt" in page.locator("#run-files").inner_text()
    assert "kiwi" in page.locator("#signature").inner_text()
    shot(page, "run-detail")


def test_the_snapshot_page_links_its_runs_and_an_engineer_removes_one(new_page, users, login, shot, runs):
    page = new_page(locale="en-US")
    login(page, "engineer1")
    page.goto(f"/snapshots/{runs['v2'].pk}/")
    section = page.locator("#snapshot-runs")
    assert "retrieval-20261129-111500-bbbbbb" in section.inner_text()
    section.scroll_into_view_if_needed()
    shot(page, "snapshot-runs")
    page.click("#compare-runs")
    page.wait_for_load_state()
    assert column(page, "retrieval", 1) == ["retrieval-20261129-111500-bbbbbb"]

    page.goto(f"/datasets/runs/{runs['retrieval-20261129-121500-cccccc'].pk}/")
    assert "There is no snapshot drinks v3 here" in page.locator("#snapshot-problem").inner_text()
    shot(page, "run-detail-unknown-snapshot")
    page.once("dialog", lambda d: d.accept())
    page.click("#remove-run")
    page.wait_for_load_state()
    assert "its folder was left as it is" in page.locator(".messages").inner_text()
    assert not TrainingRun.objects.filter(run_id="retrieval-20261129-121500-cccccc").exists()
