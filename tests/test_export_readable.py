"""An exported snapshot is readable as it is (issue 10, item 6): a frozen snapshot with real JPEG
files is exported to a folder (datasets.export.source.export_to_directory) and read back with the
consumers' own libraries: webdataset 0.2.86 the way open_clip's loader reads it, Hugging Face
`datasets`, pandas/pyarrow, tarfile for clip_benchmark's layout, mlcroissant, and the Label
Studio and COCO files as plain JSON. The readers of the shards run in a fresh Python process
(`python -I`: no code of ours on its path)."""
from __future__ import annotations

import hashlib
import json
import subprocess
import tarfile

import pandas as pd
import pytest
from django.core.files.storage import default_storage

from datasets.export.layout import CLIP_BENCHMARK, ExportOptions
from datasets.export.source import ExportConflict, export_to_directory, snapshot_rows
from datasets.models import Licence, Snapshot, SnapshotComment
from tests.conftest import fresh_python
from tests.factories import EXPORT_CONTROL_TEXT as CONTROL
from tests.factories import EXPORT_LONG_TEXT as LONG

# mlcroissant's own dependencies warn about their dependencies.
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning:rdflib.*"),
              pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")]

OPTIONS = ExportOptions(max_samples=6)


@pytest.fixture
def exported(frozen_snapshot, tmp_path):
    snapshot = frozen_snapshot
    out = tmp_path / "food" / "v1"
    result = export_to_directory(snapshot, out, OPTIONS)
    return snapshot, out, result


def test_a_fresh_process_reads_the_train_shards_with_webdataset_as_open_clip_does(exported, tmp_path):
    snapshot, out, result = exported
    sizes = json.loads((out / "train" / "sizes.json").read_text())
    assert len(sizes) >= 2 and all(name.startswith("shard-") for name in sizes)
    read = fresh_python("""
        import json, os, sys
        import braceexpand, webdataset as wds
        # No code of ours: neither the working folder nor the repository is on the path.
        assert not any(p in ("", ".") or os.path.isfile(os.path.join(p, "manage.py")) for p in sys.path), sys.path
        sizes = json.load(open("train/sizes.json"))
        url = "train/shard-{000000..%06d}.tar" % (len(sizes) - 1)
        shards = list(braceexpand.braceexpand(url))
        # open_clip's get_dataset_size: sizes.json beside the shards, keyed by basename.
        total = sum(int(sizes[os.path.basename(s)]) for s in shards)
        pairs = list(wds.WebDataset(url, shardshuffle=False).decode("pilrgb").to_tuple("jpg;png;jpeg;webp", "txt"))
        # open_clip's own pipeline (src/open_clip_train/data.py, without the tokenizer).
        pipeline = wds.DataPipeline(
            wds.SimpleShardList(url), wds.split_by_worker, wds.tarfile_to_samples(),
            wds.decode("pilrgb"), wds.rename(image="jpg;png;jpeg;webp", text="txt"), wds.to_tuple("image", "text"))
        piped = list(pipeline)
        print(json.dumps({"total": total, "pairs": len(pairs), "piped": len(piped), "wds": wds.__version__,
                          "modes": sorted({img.mode for img, _ in pairs}), "texts": [t for _, t in pairs]}))
    """, out, tmp_path)
    train = SnapshotComment.objects.filter(snapshot=snapshot, split="train")
    assert read["wds"] == "0.2.86"
    assert read["total"] == read["pairs"] == read["piped"] == train.count()
    assert read["modes"] == ["RGB"]
    expected = [t.replace("\x07", "").replace("\x1b", "") for t in train.values_list("text", flat=True)]
    assert sorted(read["texts"]) == sorted(expected)


def test_hugging_face_datasets_loads_the_shards_and_the_parquet_files(exported, tmp_path):
    pytest.importorskip("datasets")
    snapshot, out, _ = exported
    read = fresh_python("""
        import json
        from datasets import load_dataset
        shards = load_dataset("webdataset", data_files={"train": "train/*.tar", "test": "test/*.tar"})
        manifest = load_dataset("parquet", data_files={"train": "manifest.parquet"}, split="train")
        images = load_dataset("parquet", data_files={"train": "images.parquet"}, split="train")
        row = shards["train"][0]
        print(json.dumps({"train": shards["train"].num_rows, "test": shards["test"].num_rows,
                          "columns": sorted(shards["train"].column_names), "image": type(row["jpg"]).__name__,
                          "size": list(row["jpg"].size), "json_key": row["json"]["key"], "key": row["__key__"],
                          "comments": len(row["json"]["comments"]), "manifest": manifest.num_rows,
                          "images": images.num_rows, "manifest_columns": manifest.column_names}))
    """, out, tmp_path)
    assert read["train"] == SnapshotComment.objects.filter(snapshot=snapshot, split="train").count()
    assert read["test"] == SnapshotComment.objects.filter(snapshot=snapshot, split="test").count()
    assert {"jpg", "json", "txt", "__key__"} <= set(read["columns"])
    assert read["image"].endswith("ImageFile") or read["image"] == "Image"
    assert read["json_key"] == read["key"]
    assert read["comments"] == 4  # two sets of two comment types
    assert (read["manifest"], read["images"]) == (48, 12)
    assert read["manifest_columns"][:3] == ["comment_id", "image_id", "split"]


def test_pandas_reads_the_tables_and_they_agree_with_the_shards(exported):
    snapshot, out, result = exported
    manifest = pd.read_parquet(out / "manifest.parquet")
    images = pd.read_parquet(out / "images.parquet")
    assert len(manifest) == 48 and len(images) == 12
    assert set(manifest.columns) >= {"comment_id", "image_id", "split", "shard", "key", "text", "comment_type",
                                     "category", "subcategory", "image_sha256", "licence", "source",
                                     "guideline_version", "labeler"}
    assert manifest.groupby("image_id")["split"].nunique().max() == 1  # no photo in two splits
    assert set(manifest.merge(images, on="image_id")["split_x"] == manifest.merge(images, on="image_id")["split_y"]) == {True}
    for shard, rows in manifest.groupby("shard"):
        with tarfile.open(out / shard) as tar:
            names = [m.name for m in tar.getmembers()]
        assert names == [f"{k}.{ext}" for k in rows["key"] for ext in ("jpg", "json", "txt")]
    long_row = manifest[manifest["text"].str.len() > 10_000]
    assert list(long_row["text"]) == [LONG]
    assert manifest["guideline_version"].isna().sum() == 1
    stats = json.loads((out / "stats.json").read_text())
    assert stats["images"] == 12 and stats["comments"] == 48 and stats["labelers"] == 2
    assert {s: v["images"] for s, v in stats["splits"].items()} == {"train": 6, "val": 3, "test": 3}
    assert set(stats["categories"]) == {"food", "people"}


def test_clip_benchmark_layout_has_every_caption_of_an_image_together(exported):
    snapshot, out, _ = exported
    root = out / CLIP_BENCHMARK
    assert (root / "dataset_type.txt").read_text().strip() == "retrieval"
    n = int((root / "test" / "nshards.txt").read_text())
    captions = {}
    for i in range(n):
        with tarfile.open(root / "test" / f"{i}.tar") as tar:
            for m in tar.getmembers():
                key, ext = m.name.split(".", 1)
                if ext == "txt":
                    captions[key] = tar.extractfile(m).read().decode("utf-8").splitlines()
    expected = {}
    for image_id, text in (SnapshotComment.objects.filter(snapshot=snapshot, split="test")
                           .order_by("comment_id").values_list("image_id", "text")):
        expected.setdefault(str(image_id), []).append(" ".join(text.replace("\x07", "").replace("\x1b", "").split("\n")))
    assert captions == expected and len(captions) == 3


def test_a_second_export_is_byte_identical_and_a_finished_one_is_never_overwritten(exported, tmp_path):
    snapshot, out, first = exported
    # Next month: the licences renamed in the catalogue, the snapshot read back from the database.
    # The card and the Croissant file name the licences as frozen: the same bytes.
    assert Licence.objects.filter(code__in=snapshot.licences).exists()
    Licence.objects.update(name="Renamed later", url="https://example.org/renamed")
    snapshot = Snapshot.objects.get(pk=snapshot.pk)
    again = export_to_directory(snapshot, tmp_path / "again", OPTIONS)
    assert (tmp_path / "again" / "SHA256SUMS").read_bytes() == (out / "SHA256SUMS").read_bytes()
    assert again["files"] == first["files"]
    # `sha256sum -c` agrees with every file.
    check = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    listed = {line.split("  ", 1)[1] for line in (out / "SHA256SUMS").read_text().splitlines()}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert listed == on_disk
    # Exporting over the same finished export: a check, nothing rewritten.
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert export_to_directory(snapshot, out, OPTIONS)["unchanged"] is True
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    # Other options over it: refused, nothing changed.
    with pytest.raises(ExportConflict, match="finished export with other checksums"):
        export_to_directory(snapshot, out, ExportOptions(max_samples=5))
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_a_missing_image_file_and_control_characters_are_reported_not_crashed_on(frozen_snapshot, tmp_path):
    snapshot = frozen_snapshot
    images, comments = snapshot_rows(snapshot)
    gone = images[0]
    default_storage.delete(gone.file)
    result = export_to_directory(snapshot, tmp_path / "out", OPTIONS)
    codes = {(p["code"], p["image_id"]) for p in result["problems"]}
    assert ("missing_file", gone.image_id) in codes
    assert any(code == "text_cleaned" for code, _ in codes)
    out = tmp_path / "out"
    stats = json.loads((out / "stats.json").read_text())
    assert [p["image_id"] for p in stats["problems"]["missing_file"]] == [gone.image_id]
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert manifest[manifest["image_id"] == gone.image_id]["shard"].isna().all()
    assert manifest[manifest["image_id"] != gone.image_id]["shard"].notna().all()
    assert CONTROL.replace("\x07", "").replace("\x1b", "") in set(manifest["text"])
    sizes = json.loads((out / f"{gone.split}/sizes.json").read_text())
    assert sum(sizes.values()) == len(manifest[(manifest["split"] == gone.split) & manifest["shard"].notna()])
    assert "missing_file" in (out / "dataset_card.md").read_text()


def test_croissant_validates_with_mlcroissant_and_names_every_file_with_its_sha256(exported):
    snapshot, out, result = exported
    doc = json.loads((out / "croissant.json").read_text())
    objects = {d["contentUrl"]: d["sha256"] for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    for path, digest in objects.items():
        assert hashlib.sha256((out / path).read_bytes()).hexdigest() == digest
    assert {"manifest.parquet", "images.parquet", "train/shard-000000.tar"} <= set(objects)
    mlc = pytest.importorskip("mlcroissant", reason="mlcroissant is not installed: the Croissant file is not validated")
    dataset = mlc.Dataset(jsonld=str(out / "croissant.json"))
    assert not dataset.metadata.ctx.issues.errors, dataset.metadata.ctx.issues.report()
    records = list(dataset.records(record_set="comments"))
    assert len(records) == 48
    assert len(list(dataset.records(record_set="images"))) == 12


def test_label_studio_and_coco_files_hold_the_whole_snapshot(exported):
    snapshot, out, _ = exported
    tasks = json.loads((out / "labelstudio.json").read_text())
    coco = json.loads((out / "coco_captions.json").read_text())
    comments = dict(SnapshotComment.objects.filter(snapshot=snapshot).values_list("comment_id", "text"))
    assert len(tasks) == len(coco["images"]) == 12
    results = [r for t in tasks for a in t["annotations"] for r in a["result"]]
    assert len(results) == len(comments) and {r["type"] for r in results} == {"textarea"}
    assert {r["from_name"] for r in results} == {"reaction", "specific"}
    assert all(t["data"]["image"].startswith("images/") for t in tasks)
    assert sorted(a["id"] for a in coco["annotations"]) == sorted(comments)
    image_ids = {i["id"] for i in coco["images"]}
    assert len(image_ids) == 12 and {a["image_id"] for a in coco["annotations"]} <= image_ids
    assert {(i["width"], i["height"]) for i in coco["images"]} == {(160, 120), (120, 160)}
    assert {t["id"] for t in tasks} == image_ids
