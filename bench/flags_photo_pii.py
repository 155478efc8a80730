"""Faces and licence plates in photos (curation.photo_pii): detector throughput against a plain
decode, and precision / recall on generated photos with known answers.

    .venv/bin/python bench/flags_photo_pii.py [--photos 60] [--repeat 2] [--threads 1]

The set (curation.synthetic, each photo stored as a JPEG of quality 90 as the catalogue holds
it, 640x480): --photos photos each of
- face: one drawn frontal face, 12-40 % of the photo high, on a generated photo;
- ru: one drawn Russian-style plate (520x112 mm, "A123BC 77"), 15-45 % of the photo wide;
- ko: one drawn Korean-style plate (520x110 mm, "12가 3456" / "123가 4567", a Hangul font when
  one is installed);
- none: a generated photo (gradients, shapes, lines, grain) with neither.

(a) Photos per second on the same stored photos in the same run, OpenCV on --threads threads:
    baseline = what the step does before any cascade (decode the stored JPEG at reduced scale,
    grey levels, at most PHOTO_PII_SIDE on the long side, equalised); then faces only, plates
    only, and both (what the step runs on a photo outside the people categories).
(b) Per kind, photo-level precision and recall (a photo counts as found when the detector
    returns a box of that kind; the flag is per photo), and box-level: the share of the found
    true boxes that overlap the drawn one by IoU >= 0.3. Korean plates are positives of
    LICENCE_PLATE as Russian ones are; their recall is given apart.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup():
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ.setdefault("PLATFORM_VAR_DIR", tempfile.mkdtemp(prefix="bench-photo-pii-"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def generate(n: int) -> list[tuple[str, bytes, list]]:
    from curation import synthetic as S

    rows = []
    for i in range(n):
        seed = 5000 + i
        img, boxes = S.face_photo(seed)
        rows.append(("face", S.jpeg(img, 90), boxes))
        for style in ("ru", "ko"):
            img, boxes = S.plate_photo(seed, style=style)
            rows.append((style, S.jpeg(img, 90), boxes))
        rows.append(("none", S.jpeg(S.photo(seed, 640, 480), 90), []))
    return rows


def decode(data: bytes, side: int):
    from PIL import Image

    from curation import photo_pii

    img = Image.open(io.BytesIO(data))
    img.draft("RGB", (side, side))
    img.load()
    return photo_pii.grey(img, side)


def rate(fn, rows, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for row in rows:
            fn(row)
        best = min(best, time.perf_counter() - start)
    return len(rows) / best


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=60, help="photos of each kind")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="OpenCV threads (0: OpenCV's default)")
    args = ap.parse_args()
    setup()
    import cv2

    from curation import photo_pii, synthetic

    if args.threads:
        cv2.setNumThreads(args.threads)
    opts = photo_pii.options()
    side = opts["PHOTO_PII_SIDE"]
    hangul = next((p for p in synthetic.HANGUL_FONTS if Path(p).exists()), None)
    rows = generate(args.photos)
    print(f"{photo_pii.detector_name()}, {len(rows)} photos (640x480 JPEG q90), PHOTO_PII_SIDE {side}, "
          f"OpenCV threads {cv2.getNumThreads()}; Korean plates drawn with {hangul or 'no Hangul font (boxes)'}")
    for name in (photo_pii.FRONTAL, photo_pii.PROFILE, photo_pii.PLATE):
        photo_pii.cascade(name)
    base = rate(lambda r: decode(r[1], side), rows, args.repeat)
    faces = rate(lambda r: photo_pii.detect_faces(decode(r[1], side), opts), rows, args.repeat)
    plates = rate(lambda r: photo_pii.detect_plates(decode(r[1], side), opts), rows, args.repeat)
    both = rate(lambda r: (lambda g: (photo_pii.detect_faces(g, opts), photo_pii.detect_plates(g, opts)))(
        decode(r[1], side)), rows, args.repeat)
    print("(a) photos per second (best of --repeat):")
    print(f"    decode + grey (baseline)  {base:8.1f}   1.00x")
    for label, value in (("+ faces (3 cascades)", faces), ("+ plates (1 cascade)", plates), ("+ faces and plates", both)):
        print(f"    {label:25s} {value:8.1f}   {base / value:5.1f}x slower")

    found = []
    for kind, data, boxes in rows:
        gray = decode(data, side)
        found.append((kind, boxes, photo_pii.detect_faces(gray, opts), photo_pii.detect_plates(gray, opts)))
    print("(b) photo-level precision / recall (box IoU >= 0.3 among the true positives):")
    print("    kind            TP   FP   FN  precision  recall  boxes placed")
    # (label, positive kinds, negative kinds, which boxes)
    for label, positive, negative, pick in (
        ("face", {"face"}, {"ru", "ko", "none"}, lambda f: f[2]),
        ("licence plate", {"ru", "ko"}, {"face", "none"}, lambda f: f[3]),
        ("  Russian-style", {"ru"}, {"face", "none"}, lambda f: f[3]),
        ("  Korean-style", {"ko"}, {"face", "none"}, lambda f: f[3]),
    ):
        scope = [f for f in found if f[0] in positive | negative]
        tp = sum(1 for f in scope if f[0] in positive and pick(f))
        fn = sum(1 for f in scope if f[0] in positive and not pick(f))
        fp = sum(1 for f in scope if f[0] not in positive and pick(f))
        placed = sum(1 for f in scope if f[0] in positive and pick(f)
                     and any(iou(f[1][0], (b.x, b.y, b.w, b.h)) >= 0.3 for b in pick(f)))
        precision = tp / (tp + fp) if tp + fp else float("nan")
        recall = tp / (tp + fn) if tp + fn else float("nan")
        print(f"    {label:15s} {tp:4d} {fp:4d} {fn:4d}  {precision:9.3f}  {recall:6.3f}  {placed}/{tp}")


if __name__ == "__main__":
    main()
