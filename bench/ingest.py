"""Images per second through the whole ingest path, against a plain Pillow decode of the same files.

    .venv/bin/python bench/ingest.py [--n 40] [--size 4000x3000] [--rounds 3]

Generates N camera-sized, photo-like JPEGs in memory (smooth gradients and shapes with sensor
grain, quality 90, a distinct seed each), then, in one process and interleaved file by file:
  decode   Image.open(BytesIO(b)).load()           the baseline: every pixel decoded
  process  datasets.imaging.process(b)             validate, orient, hash, resize, encode, phash
  ingest   datasets.services.ingest_one(b, ...)    the above plus duplicate checks, storage, row
The ingest step writes into a throwaway SQLite database and media folder (a temp dir), emptied
between rounds so every round stores every file. Prints images/s (median of the rounds) and the
ratios against decode. The issue's aim: ingest / decode >= 0.6.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parent.parent


def camera_jpeg(width: int, height: int, seed: int, quality: int = 90) -> bytes:
    """A photo-like JPEG: a scene drawn at 1/4 size, upscaled (soft, like optics), plus grain."""
    rng = np.random.default_rng(seed)
    w, h = max(16, width // 4), max(16, height // 4)
    top, bottom = rng.integers(60, 230, 3), rng.integers(20, 200, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    sky = np.repeat(top * (1 - t) + bottom * t, w, axis=1)
    small = Image.fromarray(sky.astype("uint8"))
    draw = ImageDraw.Draw(small)
    horizon = int(h * rng.uniform(0.4, 0.75))
    draw.rectangle([0, horizon, w, h], fill=tuple(int(v) for v in rng.integers(30, 160, 3)))
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = int(rng.integers(-w // 8, w)), int(rng.integers(0, h))
        rw, rh = int(rng.integers(w // 20, w // 3)), int(rng.integers(h // 20, h // 3))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x0 + rw, y0 + rh], fill=colour)
    small = small.filter(ImageFilter.GaussianBlur(1.5))
    big = np.asarray(small.resize((width, height), Image.BICUBIC), dtype=np.int16)
    big += rng.integers(-5, 6, (height, width, 1), dtype=np.int16)  # luminance grain
    buf = io.BytesIO()
    Image.fromarray(big.clip(0, 255).astype("uint8")).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def setup_django(tmp: Path) -> None:
    """Django on a throwaway SQLite database and media folder in `tmp`, migrated."""
    for name in ("DATABASE_URL", "S3_BUCKET", "PLATFORM_ENV", "CELERY_BROKER_URL", "MEDIA_ROOT"):
        os.environ.pop(name, None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["PLATFORM_VAR_DIR"] = str(tmp / "var")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=40, help="number of JPEGs (default 40)")
    parser.add_argument("--size", default="4000x3000", help="WIDTHxHEIGHT (default 4000x3000, 12 MP)")
    parser.add_argument("--rounds", type=int, default=3, help="repeats of the whole set (default 3)")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        setup_django(tmp)
        from django.conf import settings

        from datasets import imaging, services
        from datasets.models import Image as ImageRow
        from datasets.models import Licence, Source, Subcategory

        t0 = time.perf_counter()
        files = [camera_jpeg(width, height, seed=1000 + i) for i in range(args.n)]
        mb = sum(map(len, files)) / args.n / 1e6
        print(f"{args.n} JPEGs of {width}x{height} (quality 90, {mb:.1f} MB each on average), "
              f"generated in {time.perf_counter() - t0:.1f} s")

        source = Source.objects.create(kind="upload", name="bench", default_licence=Licence.objects.get(code="cc-by-4.0"))
        sub = Subcategory.objects.select_related("category").get(category__slug="food", slug="korean")
        limits = imaging.Limits.from_settings()

        def decode(b: bytes) -> None:
            with Image.open(io.BytesIO(b)) as im:
                im.load()

        def process(b: bytes) -> None:
            imaging.process(b, limits)

        def ingest(b: bytes) -> None:
            result = services.ingest_one(b, source=source, category=sub.category, subcategory=sub, limits=limits)
            assert result.outcome == "accepted", result.reason

        steps = {"decode": decode, "process": process, "ingest": ingest}
        totals: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):
            spent = dict.fromkeys(steps, 0.0)
            for i, b in enumerate(files):
                # Rotate the order per file so no step always runs on a cold or warm cache.
                names = list(steps)[i % 3:] + list(steps)[: i % 3]
                for name in names:
                    start = time.perf_counter()
                    steps[name](b)
                    spent[name] += time.perf_counter() - start
            for name in steps:
                totals[name].append(spent[name])
            ImageRow.objects.all().delete()  # next round stores every file again
            shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)

        rate = {name: args.n / statistics.median(t) for name, t in totals.items()}
        print(f"\nimages/s (median of {args.rounds} rounds; longest side stored {limits.longest_side}px):")
        for name, label in (("decode", "plain Pillow decode"), ("process", "imaging.process"),
                            ("ingest", "whole ingest_one path")):
            spread = ", ".join(f"{args.n / t:.2f}" for t in totals[name])
            print(f"  {label:<24} {rate[name]:7.2f}   (rounds: {spread})")
        print(f"\nratio process / decode: {rate['process'] / rate['decode']:.2f}")
        print(f"ratio ingest  / decode: {rate['ingest'] / rate['decode']:.2f}   (aim: >= 0.6)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
