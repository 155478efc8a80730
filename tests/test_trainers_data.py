"""The trainers' shard reader (trainers/data.py) on a generated snapshot written by the export's
own layout functions (tests/trainset.py): its identity, splits, every comment of a photo, and
batches that are the same whatever the number of processes and workers, and after a resume.
No database."""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("webdataset")

from tests.trainset import write_learnable_snapshot  # noqa: E402
from trainers import data  # noqa: E402

pytestmark = pytest.mark.once


@pytest.fixture(scope="module")
def snapshot_dir(tmp_path_factory):
    return write_learnable_snapshot(tmp_path_factory.mktemp("snap"), photos=100, comments_per_photo=2,
                                    max_samples=24)


def to_tensor(image):
    import torchvision.transforms.functional as TF

    return TF.to_tensor(image)


def ids(batches):
    return [b["comment_id"] for b in batches]


def test_a_snapshot_says_what_it_is_and_holds(snapshot_dir):
    snap = data.open_snapshot(snapshot_dir)
    assert (snap.name, snap.version) == ("shapes", 1)
    assert snap.checksum == hashlib.sha256((snapshot_dir / "SHA256SUMS").read_bytes()).hexdigest()
    assert snap.splits == ["train", "val", "test"]
    assert (snap.size("train"), snap.size("val"), snap.size("test")) == (120, 40, 40)
    assert len(snap.shards("train")) == 5 and all(u.endswith(".tar") for u in snap.shards("train"))
    assert len(snap.manifest) == 200
    by_image = snap.comments_by_image("test")
    assert len(by_image) == 20 and all(len(texts) == 2 for texts in by_image.values())
    with pytest.raises(data.SnapshotError, match="has no 'dev' split"):
        snap.size("dev")


def test_samples_carry_every_comment_of_their_photo(snapshot_dir):
    snap = data.open_snapshot(snapshot_dir)
    every = list(data.samples(snap, "test"))
    assert len(every) == 40
    first = every[0]
    assert first["image"].mode == "RGB" and first["image"].size == (64, 64)
    assert first["key"] == f"{first['image_id']}_{first['comment_id']}"
    photos = list(data.samples(snap, "test", per_image=True))
    assert len(photos) == 20
    by_image = snap.comments_by_image("test")
    assert all(p["texts"] == by_image[p["image_id"]] for p in photos)
    assert "동그라미" in " ".join(t for p in photos for t in p["texts"])


def test_shuffling_is_seeded_and_keeps_every_sample_once(snapshot_dir):
    snap = data.open_snapshot(snapshot_dir)
    plain = [s["comment_id"] for s in data.samples(snap, "train")]
    a = [s["comment_id"] for s in data.samples(snap, "train", shuffle_buffer=30, seed=1)]
    b = [s["comment_id"] for s in data.samples(snap, "train", shuffle_buffer=30, seed=1)]
    c = [s["comment_id"] for s in data.samples(snap, "train", shuffle_buffer=30, seed=1, epoch=1)]
    assert a == b and a != plain and c != a
    assert sorted(a) == sorted(plain) == sorted(c)


def test_batches_split_over_processes_and_resume_at_the_same_place(snapshot_dir):
    snap = data.open_snapshot(snapshot_dir)
    kw = {"shuffle_buffer": 30, "seed": 3}
    whole = list(data.loader(snap, "train", to_tensor, None, 8, **kw))
    assert len(whole) == 15 and whole[0]["image"].shape == (8, 3, 64, 64) and isinstance(whole[0]["text"][0], str)
    # Two processes of batch 4 take, step by step, the same 8 samples between them.
    ranks = [list(data.loader(snap, "train", to_tensor, None, 4, rank=r, world_size=2, **kw)) for r in (0, 1)]
    assert [sorted(a + b) for a, b in zip(ids(ranks[0]), ids(ranks[1]), strict=True)] == [sorted(x) for x in ids(whole)]
    assert not set(sum(ids(ranks[0]), [])) & set(sum(ids(ranks[1]), []))
    # Resuming at step 6 (with two worker processes) gives the rest, bit for bit.
    resumed = list(data.loader(snap, "train", to_tensor, None, 8, start_step=6, num_workers=2, **kw))
    assert ids(resumed) == ids(whole)[6:]
    assert all(r["image"].equal(w["image"]) for r, w in zip(resumed, whole[6:], strict=True))
    # Random augmentations are drawn per sample, so they too are the same after a resume.
    import torchvision.transforms as T

    crop = T.Compose([T.RandomResizedCrop(32, scale=(0.5, 1.0)), T.ToTensor()])
    a = list(data.loader(snap, "train", crop, None, 8, **kw))[6]
    b = next(iter(data.loader(snap, "train", crop, None, 8, start_step=6, **kw)))
    assert a["image"].equal(b["image"])


def test_a_folder_that_is_not_a_finished_snapshot_is_refused(tmp_path, snapshot_dir):
    with pytest.raises(data.SnapshotError, match="No snapshot folder at"):
        data.open_snapshot(tmp_path / "nowhere")
    half = tmp_path / "half"
    shutil.copytree(snapshot_dir, half)
    (half / "SHA256SUMS").unlink()
    with pytest.raises(data.SnapshotError, match="holds no SHA256SUMS: it is not a finished snapshot export"):
        data.open_snapshot(half)


@pytest.mark.s3
def test_a_snapshot_on_s3_reads_the_same(snapshot_dir, monkeypatch):
    """Through moto's S3 server, as AWS_* variables point the platform at it."""
    import socket
    import uuid

    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_S3_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1")
        bucket = f"shards-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        for path in snapshot_dir.rglob("*"):
            if path.is_file():
                client.put_object(Bucket=bucket, Key=f"exports/shapes/v1/{path.relative_to(snapshot_dir)}",
                                  Body=path.read_bytes())
        remote = data.open_snapshot(f"s3://{bucket}/exports/shapes/v1/")
        local = data.open_snapshot(snapshot_dir)
        assert (remote.name, remote.version, remote.checksum) == (local.name, local.version, local.checksum)
        assert remote.shards("val")[0] == f"s3://{bucket}/exports/shapes/v1/val/shard-000000.tar"
        assert [s["key"] for s in data.samples(remote, "val")] == [s["key"] for s in data.samples(local, "val")]
        assert remote.comments_by_image("val") == local.comments_by_image("val")
        assert json.loads(data.read_bytes(remote.url("stats.json")))["snapshot"]["name"] == "shapes"
    finally:
        server.stop()
