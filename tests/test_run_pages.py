"""The engineer's training-run pages: runs by snapshot version with their metrics side by side,
sorted by a click on a column, filtered by snapshot and kind, the best value of each column
marked; a run's own page; the snapshot page's link."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse
from django.utils import translation

from datasets.models import Export, Snapshot, TrainingRun
from datasets.runs import services
from tests.runfolders import GENERATIVE_METRICS, write_run

pytestmark = pytest.mark.django_db



@pytest.fixture(autouse=True)
def english(settings):
    """These tests read the English messages (the Korean catalogue translates them all)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture
def runs(tmp_path):
    """food v1 and v2 (exported), a retrieval run on each and one on an unknown snapshot, and two
    generative runs on v2 (one not evaluated yet)."""
    made = {}
    for version in (1, 2):
        snap = Snapshot.objects.create(name="food", version=version, min_sets=1)
        Export.objects.create(snapshot=snap, destination="/x", folder=f"/x/food/v{version}", status="done",
                              sums_sha256=f"{version}" * 64)
        made[f"v{version}"] = snap

    def register(run_id, **options):
        return services.register_run(str(write_run(tmp_path, run_id, **options)), trusted=True)[0]

    made["r1"] = register("retrieval-v1", snapshot=("food", 1), checksum="1" * 64, metrics={
        "image_to_text_R@1": 0.20, "image_to_text_R@5": 0.60, "text_to_image_R@1": 0.30})
    made["r2"] = register("retrieval-v2", snapshot=("food", 2), checksum="2" * 64, metrics={
        "image_to_text_R@1": 0.40, "image_to_text_R@5": 0.50, "text_to_image_R@1": 0.10})
    made["r3"] = register("retrieval-elsewhere", snapshot=("drinks", 1), metrics={"image_to_text_R@1": 0.10})
    made["g1"] = register("generative-v2", kind="generative", snapshot=("food", 2), checksum="2" * 64)
    made["g2"] = register("generative-v2-b", kind="generative", snapshot=("food", 2), checksum="2" * 64,
                          metrics={**GENERATIVE_METRICS, "BLEU-4": 3.1, "PPL": 25.0}, tokenizer="mecab")
    made["g3"] = register("generative-running", kind="generative", snapshot=("food", 2), checksum="2" * 64,
                          status="running", evaluated=False)
    return made


def rows(html: str, kind: str) -> list[str]:
    table = html.split(f'data-kind="{kind}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-run="([^"]+)"', table)


def cell(html: str, run_id: str, key: str) -> str:
    row = html.split(f'<tr data-run="{run_id}"', 1)[1].split("</tr>", 1)[0]
    return re.search(rf'<td class="num( best)?" data-column="{key}">(.*?)</td>', row, re.S).group(0)


def test_runs_are_listed_by_snapshot_version_with_the_best_value_of_each_column_marked(client, users, runs):
    client.force_login(users["engineer"])
    html = client.get(reverse("runs")).content.decode()
    # By snapshot name, newest version first.
    assert rows(html, "retrieval") == ["retrieval-elsewhere", "retrieval-v2", "retrieval-v1"]
    assert 'class="num best"' in cell(html, "retrieval-v2", "i2t_r1") and "0.400" in cell(html, "retrieval-v2", "i2t_r1")
    assert "best" not in cell(html, "retrieval-v1", "i2t_r1")
    assert 'class="num best"' in cell(html, "retrieval-v1", "i2t_r5")  # each column its own best
    assert 'class="num best"' in cell(html, "retrieval-v1", "t2i_r1")
    assert "—" in cell(html, "retrieval-v1", "t2i_r10")  # not measured
    # Perplexity: lower is better.
    assert 'class="num best"' in cell(html, "generative-v2-b", "ppl")
    assert 'class="num best"' in cell(html, "generative-v2-b", "bleu4")
    assert "best" not in cell(html, "generative-v2", "meteor")  # every run the same: no best
    assert "mecab" in html and "kiwi" in html  # the tokenizer of each run's scores
    assert "not evaluated" in html
    assert "unknown snapshot" in html


def test_a_click_on_a_column_sorts_by_it_best_first_and_again_the_other_way(client, users, runs):
    client.force_login(users["planner"])
    html = client.get(reverse("runs") + "?sort_retrieval=i2t_r1").content.decode()
    assert rows(html, "retrieval") == ["retrieval-v2", "retrieval-v1", "retrieval-elsewhere"]
    assert 'href="?sort_retrieval=-i2t_r1#runs-retrieval"' in html  # the same head: the other way
    html = client.get(reverse("runs") + "?sort_retrieval=-i2t_r1").content.decode()
    assert rows(html, "retrieval") == ["retrieval-elsewhere", "retrieval-v1", "retrieval-v2"]
    html = client.get(reverse("runs") + "?sort_generative=ppl").content.decode()
    assert rows(html, "generative") == ["generative-v2-b", "generative-v2", "generative-running"]  # none last
    html = client.get(reverse("runs") + "?sort_retrieval=nonsense").content.decode()
    assert rows(html, "retrieval") == ["retrieval-elsewhere", "retrieval-v2", "retrieval-v1"]


def test_filters_by_snapshot_and_kind(client, users, runs):
    client.force_login(users["engineer"])
    html = client.get(reverse("runs") + f"?snapshot={runs['v2'].pk}&kind=retrieval").content.decode()
    assert rows(html, "retrieval") == ["retrieval-v2"] and 'data-kind="generative"' not in html
    html = client.get(reverse("runs") + "?snapshot=unknown").content.decode()
    assert rows(html, "retrieval") == ["retrieval-elsewhere"] and "No runs of this kind yet." in html
    html = client.get(reverse("runs") + "?snapshot=99999&kind=bogus").content.decode()
    assert len(rows(html, "retrieval")) == 3  # an unknown filter value is no filter


def test_the_run_page_shows_config_epochs_signature_and_files(client, users, runs):
    client.force_login(users["planner"])
    html = client.get(reverse("run-detail", args=[runs["g2"].pk])).content.decode()
    assert "generative-v2-b" in html and "food v2" in html
    assert "train/loss" in html and "val/loss" in html  # the per-epoch table
    assert "mecab" in html and "all comments of the photo" in html  # the signature
    assert "checkpoints/last.pt" in html and "predictions/test.jsonl" in html and runs["g2"].location in html
    assert "batch_size" in html
    assert 'id="remove-run"' not in html  # planners read
    assert 'id="evaluated-on"' not in html
    html = client.get(reverse("run-detail", args=[runs["r3"].pk])).content.decode()
    assert "There is no snapshot drinks v1 here" in html


def test_a_run_evaluated_on_another_snapshot_says_so(client, users, tmp_path):
    folder = write_run(tmp_path, "retrieval-x", evaluated_on=("food", 3, "9" * 64),
                       config={"model_cfg": {"embed_dim": 64, "vision_cfg": {"layers": 2}}})
    run, _ = services.register_run(str(folder), trusted=True)
    client.force_login(users["engineer"])
    html = client.get(reverse("run-detail", args=[run.pk])).content.decode()
    assert "Evaluated on food v3, not on the snapshot the run trained on" in html
    assert "{&quot;embed_dim&quot;: 64, &quot;vision_cfg&quot;: {&quot;layers&quot;: 2}}" in html  # nested: JSON


def test_an_engineer_removes_a_run_and_its_folder_stays(client, users, runs):
    url = reverse("run-remove", args=[runs["r1"].pk])
    client.force_login(users["planner"])
    assert client.post(url).status_code == 403
    client.force_login(users["engineer"])
    assert 'id="remove-run"' in client.get(reverse("run-detail", args=[runs["r1"].pk])).content.decode()
    response = client.post(url, follow=True)
    assert "its folder was left as it is" in response.content.decode()
    assert not TrainingRun.objects.filter(pk=runs["r1"].pk).exists()
    assert (__import__("pathlib").Path(runs["r1"].location) / "run.json").exists()


def test_the_snapshot_page_lists_its_runs_and_links_the_comparison(client, users, runs):
    client.force_login(users["engineer"])
    html = client.get(reverse("snapshot-page", args=[runs["v2"].pk])).content.decode()
    assert f'href="{reverse("runs")}?snapshot={runs["v2"].pk}"' in html
    assert "generative-v2-b" in html and "retrieval-v1" not in html
    html = client.get(reverse("snapshot-page", args=[runs["v1"].pk])).content.decode()
    assert "retrieval-v1" in html
