"""Mutated images: whatever the bytes, `imaging.process` returns a Processed or raises ImageRefused.

A plain mutation loop with a fixed seed (so a failure reproduces), bounded to a few seconds. Each
crash it finds belongs in the regression list of tests/test_imaging.py, generated in
tests/corpus.py.
"""
from __future__ import annotations

import random
import traceback

import pytest

from datasets import imaging
from tests import corpus
from tests.conftest import make_photo

ROUNDS = 400  # per seed file: 4,400 files, about 10 s here


def seeds() -> dict[str, bytes]:
    return {
        "jpeg": make_photo(160, 120, seed=41),
        "png": make_photo(160, 120, seed=42, fmt="PNG"),
        "gif": make_photo(160, 120, seed=43, fmt="GIF"),
        "tiff": make_photo(160, 120, seed=44, fmt="TIFF"),
        "webp": make_photo(160, 120, seed=45, fmt="WEBP"),
        "bmp": make_photo(120, 90, seed=46, fmt="BMP"),
        "jpeg-exif": corpus.exif_rotated_with_gps(),
        "animated-gif": corpus.animated_gif(),
        "mpo": corpus.mpo(),
        "heic": corpus.phone_photo("HEIF"),
        "avif": corpus.phone_photo("AVIF"),
    }


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> tuple[str, bytes]:
    b = bytearray(data)
    kind = rng.choice(["flip", "flip-header", "append", "replace-tail", "truncate", "duplicate", "splice"])
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == "flip-header":  # where the sizes, counts and offsets are
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(min(len(b), 300))] = rng.randrange(256)
    elif kind == "append":
        b += rng.randbytes(rng.randint(1, 64))
    elif kind == "replace-tail":  # garbage instead of the trailer (GIF ";", JPEG EOI, PNG IEND)
        b = b[: len(b) - rng.randint(1, 16)] + rng.randbytes(rng.randint(1, 64))
    elif kind == "truncate":
        b = b[: rng.randrange(1, len(b))]
    elif kind == "duplicate":
        start = rng.randrange(len(b))
        chunk = b[start : start + rng.randint(1, 256)]
        at = rng.randrange(len(b))
        b[at:at] = chunk
    else:  # splice: the head of this file, the tail of another
        other = rng.choice(others)
        b = b[: rng.randrange(len(b))] + other[rng.randrange(len(other)) :]
    return kind, bytes(b)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on the damage it tolerates
def test_mutated_images_are_processed_or_refused_never_crash():
    rng = random.Random(1234)
    files = seeds()
    others = list(files.values())
    crashes, outcomes = [], {"processed": 0, "refused": 0}
    for name, data in files.items():
        for round_ in range(ROUNDS):
            kind, mutated = mutate(rng, data, others)
            try:
                processed = imaging.process(mutated)
                assert 1 <= min(processed.width, processed.height) <= max(processed.width, processed.height) <= 1280
                outcomes["processed"] += 1
            except imaging.ImageRefused as exc:
                assert str(exc), "a refusal without a reason"
                outcomes["refused"] += 1
            except Exception as exc:  # noqa: BLE001 - what this test is looking for
                where = traceback.extract_tb(exc.__traceback__)[-1]
                crashes.append(f"{name} round {round_} ({kind}): {type(exc).__name__} at "
                               f"{where.filename.rsplit('/', 1)[-1]}:{where.lineno}: {exc}")
    assert not crashes, f"{len(crashes)} crashes, e.g.:\n" + "\n".join(crashes[:10])
    # Not a loop of refusals only: some damage is tolerated, and what comes out is checked above.
    assert outcomes["processed"] > 0 and outcomes["refused"] > 0, outcomes
