"""Faces and licence plates in photos: OpenCV's bundled Haar cascades, and the curation step.

What runs (detect): the photo in grey levels, at most CURATION["PHOTO_PII_SIDE"] pixels on its
longest side, histogram-equalised, through
- faces: haarcascade_frontalface_alt2 and haarcascade_profileface (run on the photo and on its
  mirror image, as the cascade knows faces turned one way only); overlapping boxes of the three
  are merged (the box with the most hits wins);
- plates: haarcascade_russian_plate_number.
Every model ships inside the opencv-python-headless wheel (cv2.data.haarcascades): nothing is
downloaded. OpenCV 5 wheels ship no cascades any more, hence the 4.x pin in requirements.txt.

Each box is normalised to 0..1 of the photo ([x, y, w, h, hits]); `hits` is the number of
overlapping raw detections OpenCV grouped into it (detectMultiScale2's numDetections): the
cascades' own confidence proxy, at least the configured minimum. A flag's score is
min(1, hits / (4 * min_hits)) of its best box.

Limits (docs/curation.md): Haar cascades find frontal and clearly profiled faces of at least
FACE_MIN_SIZE of the photo, not faces turned away, tilted more than ~20 degrees, small in a
crowd or half covered; the plate cascade was trained on Russian plates (a long white plate,
dark characters) and fires on other plates of that shape, Korean ones included, as on other
long light rectangles with dark text (signs, labels).

The step (PhotoPiiStep, "photo_pii"): photos of the run in chunks; FACE flags where the photo's
category is not one of CURATION["PEOPLE_CATEGORIES"], LICENCE_PLATE flags on any photo; evidence
{"boxes", "detector", "source_size"}. Photos are immutable, so a new-only run plans the photos
that arrived since the previous run's step, and running it again changes nothing.
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils.translation import gettext_lazy as _
from PIL import Image as PILImage
from PIL import ImageOps

from .steps import Step, _flag_counts

log = logging.getLogger(__name__)

DETECTOR = "photo_pii"
VERSION = "1"
FRONTAL = "haarcascade_frontalface_alt2.xml"
PROFILE = "haarcascade_profileface.xml"
PLATE = "haarcascade_russian_plate_number.xml"
# Boxes of different cascades overlapping this much (intersection over the smaller box) are one.
MERGE_OVERLAP = 0.5


@dataclass(frozen=True)
class Box:
    """A detection in 0..1 of the photo (x, y: top left) and its grouped raw hits."""

    x: float
    y: float
    w: float
    h: float
    hits: int

    def as_list(self) -> list:
        return [round(self.x, 4), round(self.y, 4), round(self.w, 4), round(self.h, 4), int(self.hits)]


@dataclass
class Detection:
    faces: list[Box] = field(default_factory=list)
    plates: list[Box] = field(default_factory=list)
    size: tuple[int, int] = (0, 0)  # the photo's (width, height) as decoded


def available() -> bool:
    return importlib.util.find_spec("cv2") is not None


def detector_name() -> str:
    import cv2

    return f"opencv-haar {cv2.__version__}"


_cascades: dict = {}


def cascade(name: str):
    """One CascadeClassifier per file and process (loading one takes ~50 ms)."""
    import cv2

    if name not in _cascades:
        classifier = cv2.CascadeClassifier(cv2.data.haarcascades + name)
        if classifier.empty():
            raise RuntimeError(f"OpenCV has no cascade {name} in {cv2.data.haarcascades}")
        _cascades[name] = classifier
    return _cascades[name]


def options() -> dict:
    cfg = settings.CURATION
    return {key: cfg.get(key, default) for key, default in (
        ("PHOTO_PII_SIDE", 512), ("FACE_SCALE_FACTOR", 1.1), ("FACE_MIN_NEIGHBOURS", 5), ("FACE_MIN_SIZE", 0.05),
        ("FACE_PROFILES", False), ("PLATE_SCALE_FACTOR", 1.1), ("PLATE_MIN_NEIGHBOURS", 5), ("PLATE_MIN_SIZE", 0.06))}


def grey(img: PILImage.Image, side: int) -> np.ndarray:
    """The photo in grey levels, at most `side` pixels on its longest side, equalised."""
    import cv2

    img = ImageOps.exif_transpose(img) if img.getexif() else img
    img = img.convert("L")
    if max(img.size) > side:
        img = img.copy()
        img.thumbnail((side, side), PILImage.Resampling.BILINEAR)
    return cv2.equalizeHist(np.asarray(img, dtype=np.uint8))


def _run(classifier, gray: np.ndarray, scale: float, neighbours: int, min_size: tuple[int, int],
         mirrored: bool = False) -> list[Box]:
    h, w = gray.shape
    image = gray[:, ::-1].copy() if mirrored else gray
    rects, hits = classifier.detectMultiScale2(image, scaleFactor=scale, minNeighbors=neighbours, minSize=min_size)
    boxes = []
    for (x, y, bw, bh), n in zip(np.asarray(rects).reshape(-1, 4).tolist(), np.asarray(hits).ravel().tolist()):
        if mirrored:
            x = w - x - bw
        boxes.append(Box(x / w, y / h, bw / w, bh / h, int(n)))
    return boxes


def _overlap(a: Box, b: Box) -> float:
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    smaller = min(a.w * a.h, b.w * b.h)
    return ix * iy / smaller if smaller > 0 else 0.0


def merge(boxes: list[Box], overlap: float = MERGE_OVERLAP) -> list[Box]:
    """Boxes that overlap by `overlap` of the smaller one are one: the one with the most hits
    (the larger on a tie) stays. In reading order."""
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: (-b.hits, -b.w * b.h, b.y, b.x)):
        if all(_overlap(box, k) < overlap for k in kept):
            kept.append(box)
    return sorted(kept, key=lambda b: (round(b.y, 2), b.x))


def detect_faces(gray: np.ndarray, opts: dict | None = None) -> list[Box]:
    opts = opts or options()
    h, w = gray.shape
    size = max(20, int(round(opts["FACE_MIN_SIZE"] * min(w, h))))
    scale, neighbours = opts["FACE_SCALE_FACTOR"], opts["FACE_MIN_NEIGHBOURS"]
    boxes = _run(cascade(FRONTAL), gray, scale, neighbours, (size, size))
    if opts.get("FACE_PROFILES"):
        # Faces turned sideways (both ways: the cascade knows one): about three times the time.
        profile = cascade(PROFILE)
        boxes += _run(profile, gray, scale, neighbours, (size, size))
        boxes += _run(profile, gray, scale, neighbours, (size, size), mirrored=True)
    return merge(boxes)


def detect_plates(gray: np.ndarray, opts: dict | None = None) -> list[Box]:
    opts = opts or options()
    h, w = gray.shape
    # The cascade's window is 60x20 pixels: a plate about three times as wide as high.
    width = max(60, int(round(opts["PLATE_MIN_SIZE"] * max(w, h))))
    return merge(_run(cascade(PLATE), gray, opts["PLATE_SCALE_FACTOR"], opts["PLATE_MIN_NEIGHBOURS"],
                      (width, max(20, width // 3))))


def detect(img: PILImage.Image, *, faces: bool = True, plates: bool = True, opts: dict | None = None) -> Detection:
    """Faces and plates in one photo (a PIL image in any mode)."""
    opts = opts or options()
    gray = grey(img, opts["PHOTO_PII_SIDE"])
    return Detection(detect_faces(gray, opts) if faces else [], detect_plates(gray, opts) if plates else [],
                     (img.width, img.height))


def open_photo(image, side: int) -> PILImage.Image:
    """The stored photo (Image.file, not the 320-pixel thumbnail: a face a tenth of the photo
    wide would be 32 pixels there, near the cascades' 20-pixel window), decoded at a reduced
    scale where the format allows it (JPEG: draft)."""
    with default_storage.open(image.file.name, "rb") as fh:
        img = PILImage.open(fh)
        img.draft("RGB", (side, side))
        img.load()
    return img


def score(boxes: list[Box], min_hits: int) -> float:
    return min(1.0, max(b.hits for b in boxes) / (4.0 * min_hits))


class PhotoPiiStep(Step):
    name = "photo_pii"
    label = _("Faces and licence plates in photos")
    queue = "curation"
    subject = "photos"
    chunk_size = 100

    def unavailable(self, run) -> str | None:
        if not available():
            return str(_("OpenCV is not installed (pip install -r requirements.txt): faces and licence plates "
                         "are not looked for."))
        return None

    def plan(self, run) -> list:
        return [str(pk) for pk in run.new_images(self.name).order_by("pk").values_list("pk", flat=True)]

    def process(self, run, ids: list) -> dict[str, int]:
        from datasets.models import Image

        from .models import FlagKind
        from .services import FlagData, record_flags

        opts = options()
        people = set(settings.CURATION["PEOPLE_CATEGORIES"])
        name = detector_name()
        flags, checked, unreadable, faces, plates = [], [], 0, 0, 0
        for image in Image.objects.filter(pk__in=ids).select_related("category").only(
                "pk", "file", "width", "height", "category__slug").order_by("pk"):
            look_for_faces = image.category is None or image.category.slug not in people
            try:
                found = detect(open_photo(image, opts["PHOTO_PII_SIDE"]), faces=look_for_faces, opts=opts)
            except (OSError, ValueError):
                log.warning("photo_pii: photo %s: unreadable", image.pk, exc_info=True)
                unreadable += 1
                continue
            checked.append(image.pk)
            for kind, boxes, min_hits in ((FlagKind.FACE, found.faces, opts["FACE_MIN_NEIGHBOURS"]),
                                          (FlagKind.LICENCE_PLATE, found.plates, opts["PLATE_MIN_NEIGHBOURS"])):
                if boxes:
                    flags.append(FlagData(kind=kind, image=image.pk, score=score(boxes, min_hits), evidence={
                        "boxes": [b.as_list() for b in boxes], "detector": name,
                        "source_size": [image.width, image.height]}))
            faces += len(found.faces)
            plates += len(found.plates)
        # Photos looked at again: a face or plate no longer found (or a face in a photo moved into a
        # people category) withdraws its open flag.
        recorded = record_flags(DETECTOR, VERSION, flags, checked_images=checked,
                                kinds=[FlagKind.FACE, FlagKind.LICENCE_PLATE])
        counts = {"photos": len(ids) - unreadable, "faces": faces, "plates": plates, **_flag_counts(recorded)}
        if unreadable:
            counts["unreadable"] = unreadable
        return counts


STEPS = [PhotoPiiStep()]
