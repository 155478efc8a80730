"""The export's layout (datasets.export.layout): shard plans, tar bytes, images, texts and the
metadata files, from plain rows. No database: these run in a fraction of a second each.
tests/test_export_readable.py exports a frozen snapshot and reads it with the consumers' own
libraries."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import uuid

import pyarrow.parquet as pq
import pytest
from PIL import Image as PILImage

from datasets.export.layout import (
    CLIP_BENCHMARK,
    CommentRow,
    ExportOptions,
    ImageRow,
    ShardResult,
    ShardSpec,
    clean_text,
    coco_image_ids,
    export_size,
    metadata_files,
    plan,
    resized_size,
    sha256sums,
    text_length,
    write_shard,
)
from tests.conftest import make_photo

SNAPSHOT = {"name": "food", "version": 3, "created_at": "2026-11-29T06:00:00+00:00", "seed": 7,
            "ratios": {"train": 0.8, "val": 0.1, "test": 0.1}, "counts": None,
            "projects": [{"id": 1, "name": "맛집 사진"}], "categories": [], "comment_types": [], "min_sets": 2,
            "kept_from": "food v2", "licences": {"cc-by-4.0": {"name": "CC BY 4.0",
                                                              "url": "https://creativecommons.org/licenses/by/4.0/"}}}


def image_row(i: int, split: str = "train", category: str = "food", *, width=96, height=64, licence="cc-by-4.0",
              attribution_required=True) -> ImageRow:
    image_id = str(uuid.UUID(bytes=hashlib.sha256(f"image {i}".encode()).digest()[:16]))
    return ImageRow(image_id=image_id, split=split, sha256=hashlib.sha256(image_id.encode()).hexdigest(),
                    pixel_sha256=hashlib.sha256(b"p" + image_id.encode()).hexdigest(), width=width, height=height,
                    category=category, category_name=category.title(), subcategory="", subcategory_name="",
                    licence=licence, attribution_required=attribution_required,
                    attribution=f"Photo {i}, by Kim, CC BY 4.0", source="uploads", file=f"images/{i}.jpg")


class Data:
    """Rows, comments and JPEG bytes of a small export (10 images, 3 comments each)."""

    def __init__(self, n=10, per_image=3, splits=("train", "train", "train", "val", "test")):
        self.images, self.comments, self.bytes = [], {}, {}
        cid = 100
        for i in range(n):
            row = image_row(i, splits[i % len(splits)], "food" if i % 2 else "people",
                            attribution_required=i % 3 != 0)
            self.images.append(row)
            self.bytes[row.file] = make_photo(96, 64, seed=i, quality=90)
            self.comments[row.image_id] = [
                CommentRow(cid + k, row.image_id, row.split, f"사진 {i}의 코멘트 {k}", ("reaction", "specific")[k % 2],
                           row.category, 1, f"labeler{k}") for k in range(per_image)]
            cid += 10
        self.by_id = {r.image_id: r for r in self.images}

    def counts(self):
        return {k: len(v) for k, v in self.comments.items()}

    def read(self, row):
        if row.file not in self.bytes:
            raise FileNotFoundError(row.file)
        return self.bytes[row.file]

    def export(self, options=None):
        """{path: bytes} of every shard, and the results (4 samples a shard unless told)."""
        options = options or ExportOptions(max_samples=4)
        shards, results = {}, []
        for spec in plan(self.images, self.counts(), options):
            out = io.BytesIO()
            results.append(write_shard(spec, self.by_id, self.comments, self.read, out, options))
            shards[spec.path] = out.getvalue()
        return shards, results


def members(data: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getmembers()


def read_members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


# ---------------------------------------------------------------- options


def test_options_validate_with_clear_messages_and_round_trip():
    ExportOptions().validate()
    with pytest.raises(ValueError, match="max_samples must be a whole number from 1"):
        ExportOptions(max_samples=0).validate()
    with pytest.raises(ValueError, match="image_mode must be one of stored, resized"):
        ExportOptions(image_mode="original").validate()
    with pytest.raises(ValueError, match="jpeg_quality"):
        ExportOptions(jpeg_quality=101).validate()
    with pytest.raises(ValueError, match="Unknown export options: colour"):
        ExportOptions.from_dict({"colour": 1})
    options = ExportOptions(max_samples=7, image_mode="resized", shortest_side=224, jpeg_quality=80)
    assert ExportOptions.from_dict(options.as_dict()) == options
    assert json.loads(json.dumps(options.as_dict())) == options.as_dict()


# ---------------------------------------------------------------- the plan


def test_plan_keeps_each_image_in_one_shard_within_the_limits_in_a_fixed_order():
    data = Data(n=20, per_image=3)
    specs = plan(data.images, data.counts(), ExportOptions(max_samples=7))
    split_specs = [s for s in specs if s.kind == "split"]
    seen = [i for s in split_specs for i in s.image_ids]
    assert sorted(seen) == sorted(r.image_id for r in data.images)  # every image once
    assert len(seen) == len(set(seen))
    for s in split_specs:
        assert sum(data.counts()[i] for i in s.image_ids) <= 7
        assert {data.by_id[i].split for i in s.image_ids} == {s.split}
        assert s.path.startswith(f"{s.split}/shard-") and s.path.endswith(".tar")
    # Split, then category, then image id; shard numbers count from 0 in each split.
    order = [(("train", "val", "test").index(data.by_id[i].split), data.by_id[i].category, i) for i in seen]
    assert order == sorted(order)
    assert [s.path for s in split_specs if s.split == "val"] == ["val/shard-000000.tar", "val/shard-000001.tar"]
    # The input's order does not matter.
    assert plan(list(reversed(data.images)), data.counts(), ExportOptions(max_samples=7)) == specs
    # clip_benchmark: the test images, after the split shards, numbered 0, 1, ...
    clip = [s for s in specs if s.kind == "clip_benchmark"]
    assert specs[-len(clip):] == clip
    assert [s.path for s in clip] == [f"{CLIP_BENCHMARK}/test/0.tar"]
    assert list(clip[0].image_ids) == [i for s in split_specs if s.split == "test" for i in s.image_ids]
    assert ShardSpec.from_dict(json.loads(json.dumps(specs[0].as_dict()))) == specs[0]


def test_an_image_with_more_comments_than_a_shard_holds_is_a_shard_of_its_own_and_bytes_limit_shards():
    data = Data(n=3, per_image=5, splits=("train",))
    specs = plan(data.images, data.counts(), ExportOptions(max_samples=2))
    assert [len(s.image_ids) for s in specs] == [1, 1, 1]
    # By bytes: 1 MiB holds a few 2000x1500 photos' samples, never an image split.
    big = [image_row(i, width=2000, height=1500) for i in range(6)]
    counts = {r.image_id: 3 for r in big}
    specs = plan(big, counts, ExportOptions(max_bytes=1024 * 1024))
    assert len(specs) == 6  # each image alone: 3 x ~0.9 MB estimated
    specs = plan(big, counts, ExportOptions(max_bytes=8 * 1024 * 1024))
    assert 1 < len(specs) < 6
    # Images without comments are in no shard.
    assert plan(big, {}, ExportOptions()) == []


# ---------------------------------------------------------------- shard bytes


def test_a_shard_is_byte_identical_and_carries_no_time_or_owner():
    data = Data()
    first, results = data.export()
    second, _ = data.export()
    assert first == second
    for path, blob in first.items():
        result = next(r for r in results if r.path == path)
        assert result.size == len(blob) and result.sha256 == hashlib.sha256(blob).hexdigest()
        assert len(blob) % tarfile.RECORDSIZE == 0
        for m in members(blob):
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode, m.type) == (0, 0, 0, "", "", 0o644, tarfile.REGTYPE)


def test_samples_are_jpg_json_txt_with_dotless_keys_contiguous_per_sample_and_per_image():
    data = Data()
    shards, results = data.export()
    path = "train/shard-000000.tar"
    names = [m.name for m in members(shards[path])]
    keys = [n.split(".", 1)[0] for n in names]
    assert all("." not in k for k in keys)
    assert [n.rsplit(".", 1)[1] for n in names] == ["jpg", "json", "txt"] * (len(names) // 3)
    # Each key's members are contiguous, and each image's samples too.
    runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    assert len(runs) == len(set(runs))
    image_runs = [k.rsplit("_", 1)[0] for k in runs]
    image_runs = [k for i, k in enumerate(image_runs) if i == 0 or image_runs[i - 1] != k]
    assert len(image_runs) == len(set(image_runs))
    content = read_members(shards[path])
    first_key = keys[0]
    image_id, comment_id = first_key.rsplit("_", 1)
    comment = next(c for c in data.comments[image_id] if c.comment_id == int(comment_id))
    assert content[f"{first_key}.txt"].decode("utf-8") == comment.text
    assert content[f"{first_key}.jpg"] == data.bytes[data.by_id[image_id].file]  # stored copy as it is
    meta = json.loads(content[f"{first_key}.json"])
    assert (meta["key"], meta["shard"], meta["image_id"], meta["comment_id"], meta["licence"]) == (
        first_key, path, image_id, comment.comment_id, "cc-by-4.0")
    assert [c["comment_id"] for c in meta["comments"]] == [c.comment_id for c in data.comments[image_id]]
    assert [c["text"] for c in meta["comments"]] == [c.text for c in data.comments[image_id]]
    assert sum(r.samples for r in results if r.path.startswith("train/")) == sum(
        len(v) for k, v in data.comments.items() if data.by_id[k].split == "train")


def test_clip_benchmark_shard_has_one_sample_per_image_with_all_its_comments_a_line_each():
    data = Data()
    image = next(r for r in data.images if r.split == "test")
    c = data.comments[image.image_id][0]
    data.comments[image.image_id][0] = CommentRow(c.comment_id, c.image_id, c.split, "첫 줄\n둘째 줄", c.comment_type,
                                                  c.category, c.guideline_version, c.labeler)
    shards, results = data.export()
    content = read_members(shards[f"{CLIP_BENCHMARK}/test/0.tar"])
    assert content[f"{image.image_id}.txt"].decode().splitlines() == [
        "첫 줄 둘째 줄", *[c.text for c in data.comments[image.image_id][1:]]]
    tests = [r.image_id for r in data.images if r.split == "test"]
    assert sorted(content) == sorted([f"{i}.jpg" for i in tests] + [f"{i}.txt" for i in tests])


def test_missing_and_unreadable_images_are_reported_and_skipped_not_raised():
    data = Data()
    gone, broken = data.images[0], data.images[1]
    del data.bytes[gone.file]
    data.bytes[broken.file] = b"not an image at all"

    plain = data.read

    def read(row):
        if row.file == data.images[2].file:
            raise PermissionError("denied")
        return plain(row)

    data.read = read
    shards, results = data.export()
    problems = {(p["image_id"], p["code"]) for r in results for p in r.problems}
    assert (gone.image_id, "missing_file") in problems
    assert (broken.image_id, "unreadable_image") in problems
    assert (data.images[2].image_id, "unreadable_image") in problems
    written = {m.name.rsplit("_", 1)[0] for blob in shards.values() for m in members(blob)}
    assert gone.image_id not in written and broken.image_id not in written
    assert data.images[3].image_id in written


def test_a_png_stored_copy_becomes_a_jpeg_and_resized_mode_fits_the_shortest_side_deterministically():
    data = Data(n=5, splits=("train",))
    png = data.images[0]
    data.bytes[png.file] = make_photo(96, 64, seed=1, fmt="PNG")
    shards, _ = data.export()
    content = {k: v for blob in shards.values() for k, v in read_members(blob).items()}
    jpg = next(v for k, v in content.items() if k.startswith(png.image_id) and k.endswith(".jpg"))
    assert PILImage.open(io.BytesIO(jpg)).format == "JPEG"

    big = Data(n=2, splits=("train",))
    big.images = [image_row(i, width=800, height=600) for i in range(2)]
    big.by_id = {r.image_id: r for r in big.images}
    big.comments = {r.image_id: [CommentRow(i, r.image_id, "train", "좋아요", "reaction", "food", 1, "l")]
                    for i, r in enumerate(big.images)}
    big.bytes = {r.file: make_photo(800, 600, seed=i) for i, r in enumerate(big.images)}
    options = ExportOptions(image_mode="resized", shortest_side=224, jpeg_quality=75)
    first, _ = big.export(options)
    assert big.export(options)[0] == first
    for name, blob in read_members(first["train/shard-000000.tar"]).items():
        if name.endswith(".jpg"):
            img = PILImage.open(io.BytesIO(blob))
            assert img.format == "JPEG" and min(img.size) == 224
            assert img.size == export_size(big.images[0], options) == resized_size(800, 600, 224) == (298, 224)
    assert resized_size(100, 80, 224) == (100, 80)  # never enlarged
    assert max(resized_size(601, 1000, 512)) <= 1000 * 512 // 601 and min(resized_size(601, 1000, 512)) <= 512


# ---------------------------------------------------------------- text


@pytest.mark.parametrize("raw, clean", [
    ("좋아요\x07\x1b[31m 정말", "좋아요[31m 정말"),  # controls dropped
    ("줄\r\n바꿈\r끝\t탭", "줄\n바꿈\n끝\t탭"),  # line ends as \n, tab kept
    ("깨진 \ud800 글자", "깨진 \ufffd 글자"),  # a lone surrogate
    ("\ud83d\ude00 웃음", "\U0001f600 웃음"),  # a surrogate pair is its character
    ("\u1100\u1161\u11a8", "\uac01"),  # NFD jamo become the syllable (NFC)
    (b"bytes \xff\xfe ok", "bytes \ufffd\ufffd ok"),  # not UTF-8
])
def test_clean_text(raw, clean):
    assert clean_text(raw) == clean
    clean_text(raw).encode("utf-8")


def test_control_characters_and_long_comments_are_written_cleaned_and_whole_and_reported():
    data = Data(n=2, splits=("train",))
    image = data.images[0]
    long_text = "아주 긴 코멘트 " * 5000
    c0, c1 = data.comments[image.image_id][:2]
    data.comments[image.image_id][0] = CommentRow(c0.comment_id, c0.image_id, "train", "벨\x07소리\ud800", "reaction",
                                                  "people", 1, "l")
    data.comments[image.image_id][1] = CommentRow(c1.comment_id, c1.image_id, "train", long_text, "specific",
                                                  "people", 1, "l")
    shards, results = data.export(ExportOptions())
    content = read_members(shards["train/shard-000000.tar"])
    assert content[f"{image.image_id}_{c0.comment_id}.txt"].decode("utf-8") == "벨소리\ufffd"
    assert content[f"{image.image_id}_{c1.comment_id}.txt"].decode("utf-8") == long_text
    assert [(p["comment_id"], p["code"]) for r in results for p in r.problems] == [(c0.comment_id, "text_cleaned")]
    files = metadata_files(SNAPSHOT, data.images, data.comments, results, ExportOptions())
    texts = {r["comment_id"]: r["text"] for r in pq.read_table(io.BytesIO(files["manifest.parquet"])).to_pylist()}
    assert texts[c0.comment_id] == "벨소리\ufffd" and texts[c1.comment_id] == long_text
    assert json.loads(files["stats.json"])["problems"]["text_cleaned"][0]["comment_id"] == c0.comment_id


@pytest.mark.parametrize("text", ["와 진짜 맛있겠다", "  공백  ", "👨‍👩‍👧 가족", "e\u0301", "\u1100\u1161", "a\u200bb",
                                  "줄\n바꿈", "", "ㅋㅋㅋ!!"])
def test_text_length_counts_as_the_labeling_rules_do(text):
    from labeling.text import count_length

    assert text_length(text) == count_length(text)


# ---------------------------------------------------------------- metadata files


def test_metadata_files_are_deterministic_and_agree_with_the_shards():
    data = Data(n=12)
    options = ExportOptions(max_samples=4)
    shards, results = data.export(options)
    files = metadata_files(SNAPSHOT, data.images, data.comments, results, options)
    # The same snapshot read back from PostgreSQL: jsonb hands `ratios` back with its keys sorted.
    from_jsonb = {**SNAPSHOT, "ratios": dict(sorted(SNAPSHOT["ratios"].items()))}
    again = metadata_files(from_jsonb, list(reversed(data.images)), data.comments,
                           [ShardResult.from_dict(r.as_dict()) for r in results], options)
    assert files == again  # Parquet included: same bytes
    assert set(files) == {
        "manifest.parquet", "images.parquet", "train/sizes.json", "val/sizes.json", "test/sizes.json", "stats.json",
        "dataset_card.md", "croissant.json", f"{CLIP_BENCHMARK}/dataset_type.txt", f"{CLIP_BENCHMARK}/test/nshards.txt",
        "labelstudio.json", "coco_captions.json"}
    # sizes.json: keyed by basename, the samples each shard holds.
    for split in ("train", "val", "test"):
        sizes = json.loads(files[f"{split}/sizes.json"])
        for name, n in sizes.items():
            assert len(members(shards[f"{split}/{name}"])) == 3 * n
    assert files[f"{CLIP_BENCHMARK}/dataset_type.txt"] == b"retrieval\n"
    assert int(files[f"{CLIP_BENCHMARK}/test/nshards.txt"]) == 1
    # manifest: a row per comment in shard order; shard and key name a member of that shard.
    manifest = pq.read_table(io.BytesIO(files["manifest.parquet"])).to_pylist()
    assert len(manifest) == sum(len(v) for v in data.comments.values())
    for row in manifest:
        assert f"{row['key']}.txt" in {m.name for m in members(shards[row["shard"]])}
    assert [r["shard"] for r in manifest] == sorted((r["shard"] for r in manifest),
                                                    key=lambda p: (("train", "val", "test").index(p.split("/")[0]), p))
    images = pq.read_table(io.BytesIO(files["images.parquet"])).to_pylist()
    assert {r["image_id"] for r in images} == set(data.by_id)
    assert pq.read_table(io.BytesIO(files["images.parquet"])).schema.field("attribution_required").type == "bool"
    stats = json.loads(files["stats.json"])
    assert stats["comments"] == len(manifest) and stats["samples"] == len(manifest) and stats["labelers"] == 3
    assert stats["comment_types"]["reaction"]["length"]["max"] >= stats["comment_types"]["reaction"]["length"]["min"]


def test_the_card_lists_counts_parameters_and_every_attribution_the_licence_requires():
    data = Data(n=6)
    _, results = data.export()
    card = metadata_files(SNAPSHOT, data.images, data.comments, results, ExportOptions(max_samples=4))[
        "dataset_card.md"].decode("utf-8")
    assert card.startswith("---\npretty_name: \"food v3\"")
    assert "| train |" in card and "- Seed: 7" in card and "food v2" in card and "맛집 사진" in card
    assert "[CC BY 4.0](https://creativecommons.org/licenses/by/4.0/)" in card
    for row in data.images:
        assert (f"`{row.image_id}`: {row.attribution}" in card) == row.attribution_required


def test_coco_and_label_studio_files_hold_every_comment_with_stable_integer_ids():
    data = Data(n=6)
    _, results = data.export()
    files = metadata_files(SNAPSHOT, data.images, data.comments, results, ExportOptions(max_samples=4))
    coco = json.loads(files["coco_captions.json"])
    ids = {i["image_uuid"]: i["id"] for i in coco["images"]}
    assert ids == coco_image_ids(list(data.by_id)) and len(set(ids.values())) == len(ids)
    assert all(0 < n < 2**53 for n in ids.values())
    assert ids[data.images[0].image_id] == int(data.images[0].image_id.replace("-", "")[:13], 16)
    assert sorted(a["id"] for a in coco["annotations"]) == sorted(c.comment_id for v in data.comments.values() for c in v)
    assert {a["image_id"] for a in coco["annotations"]} <= set(ids.values())
    tasks = json.loads(files["labelstudio.json"])
    assert len(tasks) == len(data.images)
    task = next(t for t in tasks if t["data"]["image_id"] == data.images[0].image_id)
    assert task["data"]["image"] == data.images[0].file and task["id"] == ids[data.images[0].image_id]
    texts = sorted(r["value"]["text"][0] for a in task["annotations"] for r in a["result"])
    assert texts == sorted(c.text for c in data.comments[data.images[0].image_id])
    assert {r["type"] for a in task["annotations"] for r in a["result"]} == {"textarea"}
    # Colliding prefixes get distinct ids, the same whatever the input order.
    a, b = "0123456789abc000", "0123456789abc111"
    assert coco_image_ids([b, a]) == coco_image_ids([a, b]) and len(set(coco_image_ids([a, b]).values())) == 2


def test_sha256sums_is_sorted_and_in_sha256sum_format():
    assert sha256sums({"b/x.tar": "2" * 64, "a.json": "1" * 64}) == (
        f"{'1' * 64}  a.json\n{'2' * 64}  b/x.tar\n".encode())


@pytest.mark.parametrize("name, size", [("a.jpg", 0), ("x" * 95 + ".txt", 511), ("k_1.json", 512),
                                        ("0f8fad5b-d9cb-469f-a165-70867728950e_123456789.jpg", 7_654_321),
                                        ("z" * 100, 1), ("한글.txt", 3)])
def test_the_fast_tar_header_is_what_tarfile_writes(name, size):
    from datasets.export.layout import _header, _tarfile_header

    assert _header(name, size) == _tarfile_header(name, size)
    for name, size in (("y" * 120 + ".jpg", 5), ("big.jpg", 8**11 + 1)):  # what ustar cannot hold: refused
        with pytest.raises(ValueError):
            _header(name, size)


CHECKSUMS = """
import hashlib, sys
from datasets.export.layout import ExportOptions, metadata_files, sha256sums
from tests.test_export_layout import SNAPSHOT, Data
data = Data(n=12)
shards, results = data.export()
files = metadata_files(SNAPSHOT, data.images, data.comments, results, ExportOptions(max_samples=4))
sums = {p: hashlib.sha256(b).hexdigest() for p, b in {**shards, **files}.items()}
sys.stdout.write(sha256sums(sums).decode())
"""


def test_another_process_with_another_hash_seed_writes_the_same_bytes():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    runs = [subprocess.run([sys.executable, "-c", CHECKSUMS], cwd=root, capture_output=True, text=True, timeout=120,
                           env={**os.environ, "PYTHONHASHSEED": seed}) for seed in ("1", "2")]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.count("\n") > 10
