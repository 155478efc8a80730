"""Importing comments made elsewhere into a project: a Label Studio JSON export, a COCO-captions
JSON, or a CSV / JSON Lines file of image + comment(s). docs: README "Importing existing comments".

How an import goes:

1. `start_comment_import` reads the whole file at once and checks every record against the
   project (comment types, text hard limits, the project's text rules as warnings). A file that
   cannot be read at all (not UTF-8, not JSON, not the format's shape, no records) is a
   ValidationError and nothing is written. The photos of the records that pass become a JSON Lines
   manifest, imported by the catalogue's normal ingest (datasets.services.create_import: readers,
   licences, dedup by hash, quotas, its own per-photo report); the records wait in the
   CommentImport's `plan`.
2. `run_comment_import` (the Celery task, or the management command) runs that photo import, then
   stores each comment set on its photo (the photo the import stored, or the stored photo it
   duplicates) as an Assignment with no labeler, attributed to the ExternalSource, status
   submitted, with its Comments; and one report line (CommentImportRow) per record.

What is decided here:

- A set is stored whole or not at all: a record with an unknown comment type, an empty text, a
  text past MAX_TEXT_LENGTH or characters that cannot be stored is refused whole, and its photo is
  not imported for it. A record whose photo is refused gets no comments (the line says the
  photo's reason).
- The project's text rules (lengths per comment type, jamo, links, ...) are not enforced on text
  our labelers did not type: a text that breaks them is stored and its line lists the rules as
  warnings. Texts are stored NFC-normalised, as labelers' are.
- Re-importing a file adds nothing: a set is unique per (project, photo, external source, set id),
  photos are deduplicated by hash; such lines say "already imported".
- Imported sets count as complete comment sets for snapshots (snapshot_candidates counts submitted
  sets) whatever comment types they have, and are frozen with the labeler pseudonym
  `ext:<source slug>`. They take no labeler's slot: the photo joins the project's queue (if not
  there yet) and labelers still give it `overlap` sets.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from datasets import readers
from datasets import services as datasets_services
from datasets.models import ImportItem, ImportStatus, Licence, Outcome
from datasets.refusals import render as render_datasets_reason

from . import text as text_rules
from .models import (
    Assignment,
    AssignmentStatus,
    Comment,
    CommentImport,
    CommentImportOutcome,
    CommentImportRow,
    CommentImportStatus,
    CommentType,
    ExternalSource,
    Project,
    ProjectImage,
    RuleCode,
)

FORMATS = ("labelstudio", "coco", "csv", "jsonl")
# A hard limit on one imported text (the project's per-type max_length is a rule: a warning).
MAX_TEXT_LENGTH = 5000
# The most records one file may hold (a COCO captions file of 600,000 captions is two imports).
MAX_RECORDS = 300_000
MAX_FILE_BYTES = 200 * 1024 * 1024

# Report-line reasons: code -> message (params by name). Photo refusals nest the catalogue's own
# reason (datasets.refusals) as {"code", "params"}.
REASONS = {
    "bad_record": _("Not a readable record: %(detail)s"),
    "no_image": _("No image: the record names neither a path nor a URL."),
    "no_comments": _("No comment text in this record."),
    "unknown_comment_type": _("The project has no comment type “%(type)s”."),
    "duplicate_comment_type": _("Two texts of comment type “%(type)s” in one set; give each set its own set_id."),
    "empty_text": _("Empty text for comment type “%(type)s”."),
    "text_too_long": _("Text of comment type “%(type)s” is %(n)s characters; the limit is %(limit)s."),
    "bad_characters": _("Text of comment type “%(type)s” holds characters that cannot be stored (NUL or a lone "
                        "surrogate)."),
    "unknown_image_id": _("The caption's image_id %(id)s is not in the file's images."),
    "photo_refused": _("The photo was not imported: %(reason)s"),
    "photo_not_imported": _("The photo was not imported (the photo import stopped: %(error)s)."),
    "already_imported": _("Already imported: this set from this source is on this photo already."),
}


def reason_text(code: str, params: dict | None = None) -> str:
    """A report line's reason in the active language."""
    if not code or code not in REASONS:
        return ""
    shown = {}
    for key, value in (params or {}).items():
        if isinstance(value, dict) and "code" in value:
            value = render_datasets_reason(value["code"], value.get("params") or {}, fallback=value.get("text", ""))
        shown[key] = value
    try:
        return str(REASONS[code]) % shown
    except (KeyError, TypeError, ValueError):
        return str(REASONS[code])


def warnings_text(codes) -> str:
    """The rule codes a line lists as warnings, as the planners' dashboard names them."""
    labels = dict(RuleCode.choices)
    return ", ".join(str(labels.get(code, code)) for code in codes or [])


class _Refused(Exception):
    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code, self.params = code, params


def _file_error(message) -> ValidationError:
    return ValidationError({"file": [message]})


# ---------------------------------------------------------------- reading the formats


@dataclass
class _Record:
    """One comment set as read from the file, before it is checked."""

    name: str
    image: dict | None  # a manifest row: {"path": ...} or {"url": ...} plus licence, author, ...
    external_id: str
    comments: list[tuple[str, object]] = field(default_factory=list)  # (comment type slug, text)
    error: tuple[str, dict] | None = None


# What a record may say about its photo, under the manifest import's column names (the first of
# each is what the manifest is written with).
META_KEYS = {key: readers.COLUMN_ALIASES[key] for key in
             ("licence", "author", "original_url", "title", "category", "subcategory")}


def _meta(row: dict) -> dict:
    meta = {}
    for key, aliases in META_KEYS.items():
        for alias in aliases:
            value = row.get(alias)
            if isinstance(value, (str, int)) and str(value).strip():
                meta[key] = str(value).strip()
                break
    return meta


def _image_ref(value: str, *, url_prefix: str = "") -> dict | None:
    """A path or URL as the manifest import reads it."""
    value = (value or "").strip() if isinstance(value, str) else ""
    if not value:
        return None
    if re.match(r"(?i)^https?://", value):
        return {"url": value}
    if url_prefix:
        return {"url": url_prefix.rstrip("/") + "/" + value.lstrip("/")}
    return {"path": value}


def _label_studio_path(value: str) -> str:
    """Label Studio's own paths: `/data/local-files/?d=<path>` is that path; an uploaded file
    (`/data/upload/<project>/<name>`) is its file name, looked for in the images folder."""
    if not isinstance(value, str) or re.match(r"(?i)^https?://", value):
        return value
    parsed = urlparse(value)
    if parsed.path.rstrip("/").endswith("/data/local-files") and "d" in parse_qs(parsed.query):
        return parse_qs(parsed.query)["d"][0]
    if value.startswith("/data/"):
        return parsed.path.rsplit("/", 1)[-1]
    return value


def _load_json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _file_error(_("The file is not valid JSON (line %(line)d: %(detail)s).")
                          % {"line": exc.lineno, "detail": exc.msg}) from None
    except RecursionError:
        raise _file_error(_("The file's JSON is nested too deeply.")) from None


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _key(value):
    """An id as a dict key: JSON ids are numbers or strings; anything else matches nothing."""
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def read_label_studio(text: str, type_map: dict[str, str], url_prefix: str = "") -> list[_Record]:
    """A Label Studio JSON export: a list of tasks, `data.image` the photo, each annotation's
    `textarea` results a comment set (`from_name` -> comment type through `type_map`, else the
    same slug; several texts of one textarea are joined by a newline). Cancelled annotations are
    skipped. The set id is `ls:<task id>:<annotation id>`."""
    tasks = _load_json(text)
    if not isinstance(tasks, list):
        raise _file_error(_("A Label Studio export is a JSON list of tasks."))
    records = []
    for n, task in enumerate(tasks, 1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            records.append(_Record(f"task #{n}", None, "", error=("bad_record", {"detail": "a task with a data object"})))
            continue
        data = task["data"]
        task_id = task.get("id", n)
        image = _image_ref(_label_studio_path(data.get("image", "")), url_prefix=url_prefix)
        if image is not None:
            image.update(_meta(data))
        annotations = [a for a in _list(task.get("annotations")) if isinstance(a, dict) and not a.get("was_cancelled")]
        if not annotations:
            records.append(_Record(f"task {task_id}", image, "", error=("no_comments", {})))
            continue
        for a_n, annotation in enumerate(annotations, 1):
            a_id = annotation.get("id", a_n)
            record = _Record(f"task {task_id}, annotation {a_id}", image, f"ls:{task_id}:{a_id}")
            for result in _list(annotation.get("result")):
                if not isinstance(result, dict) or result.get("type") != "textarea":
                    continue
                name = str(result.get("from_name", ""))
                texts = (result.get("value") or {}).get("text") if isinstance(result.get("value"), dict) else None
                if isinstance(texts, str):
                    texts = [texts]
                if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                    record.error = ("bad_record", {"detail": f"{name}: value.text is not a list of texts"})
                    break
                record.comments.append((type_map.get(name, name), "\n".join(texts)))
            records.append(record)
    return records


def read_coco(text: str, comment_type: str, url_prefix: str = "") -> list[_Record]:
    """A COCO-captions JSON: `images` [{id, file_name, coco_url|flickr_url|url, license}],
    `annotations` [{id, image_id, caption}], optional `licenses` [{id, name, url}]. Each caption
    is one comment set of `comment_type` (set id `coco:<annotation id>`). A photo is its URL when
    the image has one, else `url_prefix` + file_name, else file_name in the images folder."""
    doc = _load_json(text)
    if not (isinstance(doc, dict) and isinstance(doc.get("images"), list) and isinstance(doc.get("annotations"), list)):
        raise _file_error(_("A COCO captions file is a JSON object with lists “images” and “annotations”."))
    licences = {}
    for lic in _list(doc.get("licenses")):
        if isinstance(lic, dict) and _key(lic.get("id")) is not None:
            licences[lic["id"]] = str(lic.get("url") or lic.get("name") or "")
    images = {}
    for img in doc["images"]:
        if not isinstance(img, dict) or _key(img.get("id")) is None:
            continue
        url = next((img[k] for k in ("coco_url", "flickr_url", "url") if isinstance(img.get(k), str) and img[k]), "")
        ref = _image_ref(url) if url else _image_ref(img.get("file_name", ""), url_prefix=url_prefix)
        if ref is not None:
            ref.update(_meta(img))
            if _key(img.get("license")) in licences and licences[img["license"]]:
                ref["licence"] = licences[img["license"]]
            if "external_id" not in ref:
                ref["external_id"] = str(img["id"])
        images[img["id"]] = (str(img.get("file_name") or url or img["id"]), ref)
    records = []
    for n, ann in enumerate(doc["annotations"], 1):
        if not isinstance(ann, dict):
            records.append(_Record(f"annotation #{n}", None, "", error=("bad_record", {"detail": "not an object"})))
            continue
        a_id = ann.get("id", n)
        if _key(ann.get("image_id")) not in images:
            records.append(_Record(f"annotation {a_id}", None, "",
                                   error=("unknown_image_id", {"id": str(ann.get("image_id"))})))
            continue
        shown, ref = images[ann["image_id"]]
        records.append(_Record(f"annotation {a_id}: {shown}", ref, f"coco:{a_id}", [(comment_type, ann.get("caption"))]))
    return records


TEXT_PREFIX = "text:"


def read_rows(text: str, fmt: str) -> list[_Record]:
    """CSV or JSON Lines, read by the manifest import's own reader (datasets.readers): a photo
    column as a manifest has it (`path`/`file`/`filename` or `url`/`image_url`/...), its licence,
    author, title, category, subcategory and original_url columns as a manifest has them, then
    either `comment_type` + `text` (one row per comment) or a `text:<comment type>` column per
    type (one row per set), and an optional `set_id`. Rows of the same photo and set_id are one
    set."""
    try:
        rows = list(readers.parse_manifest(text, fmt))
    except readers.ReaderError as exc:
        raise _file_error(exc.reason.text()) from None
    records: list[_Record] = []
    sets: dict[tuple, _Record] = {}
    for number, row, error in rows:
        if error is not None:
            records.append(_Record(f"row {number}", None, "", error=("bad_record", {"detail": error.as_dict()})))
            continue
        path = next((str(row[k]) for k in readers.COLUMN_ALIASES["path"] if row.get(k)), "")
        url = next((str(row[k]) for k in readers.COLUMN_ALIASES["url"] if row.get(k)), "")
        image = _image_ref(path) if path else _image_ref(url)
        comments = []
        if row.get("comment_type") not in (None, "") or row.get("text") not in (None, ""):
            comments.append((str(row.get("comment_type") or ""), row.get("text")))
        comments += [(k[len(TEXT_PREFIX):], v) for k, v in row.items()
                     if isinstance(k, str) and k.startswith(TEXT_PREFIX) and v not in (None, "")]
        shown = f"row {number}: {path or url}" if (path or url) else f"row {number}"
        if image is None:
            records.append(_Record(shown, None, "", error=("no_image", {})))
            continue
        image.update(_meta(row))
        set_id = str(row.get("set_id") or "").strip()
        key = (json.dumps(image, sort_keys=True), set_id)
        if key in sets:
            record = sets[key]
            record.name = f"{record.name}, {number}" if record.name.count(",") < 10 else record.name
            record.comments += comments
            continue
        record = _Record(shown, image, set_id, comments)
        sets[key] = record
        records.append(record)
    return records


# ---------------------------------------------------------------- checking the records


def _check(record: _Record, types: dict[str, CommentType], project: Project) -> tuple[list, list]:
    """([(slug, normalised text, length)], warning codes) of a record that may be stored; raises
    _Refused otherwise (the set is refused whole)."""
    if record.error:
        raise _Refused(record.error[0], **record.error[1])
    if record.image is None:
        raise _Refused("no_image")
    comments = [(slug, value) for slug, value in record.comments if slug or value not in (None, "")]
    if not comments:
        raise _Refused("no_comments")
    seen, out, warnings = set(), [], []
    for slug, value in comments:
        if slug not in types:
            raise _Refused("unknown_comment_type", type=readers.display_name(slug or "—"))
        if slug in seen:
            raise _Refused("duplicate_comment_type", type=slug)
        seen.add(slug)
        value = value if isinstance(value, str) else ("" if value is None else str(value))
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Refused("bad_characters", type=slug) from None
        if "\0" in value:
            raise _Refused("bad_characters", type=slug)
        clean = text_rules.normalise(value)
        if not clean:
            raise _Refused("empty_text", type=slug)
        if len(clean) > MAX_TEXT_LENGTH:
            raise _Refused("text_too_long", type=slug, n=len(clean), limit=MAX_TEXT_LENGTH)
        # No own-repeat or copied-example check: the source's repeats are its business.
        result = text_rules.check(clean, project.rules_for(types[slug]))
        warnings += [v.code for v in result.violations if v.code not in warnings]
        out.append((slug, clean, result.length))
    return out, warnings


def _shown(value):
    """A value as stored in a report line (text columns and JSON): NUL, lone surrogates, control
    and bidi characters made visible (datasets.readers.display_name); nested values likewise."""
    if isinstance(value, str):
        return readers.display_name(value)
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shown(v) for v in value]
    return value


def _plan(records: list[_Record], project: Project) -> dict:
    types = {ct.slug: ct for ct in project.comment_types.all()}
    images: list[dict] = []
    index: dict[str, int] = {}
    sets, refused = [], []
    for position, record in enumerate(records):
        try:
            comments, warnings = _check(record, types, project)
        except _Refused as exc:
            refused.append({"position": position, "name": _shown(record.name)[:1000], "code": exc.code,
                            "params": _shown(exc.params)})
            continue
        key = json.dumps(record.image, sort_keys=True)
        if key not in index:
            index[key] = len(images)
            images.append(record.image)
        sets.append({"position": position, "name": _shown(record.name)[:1000], "image": index[key],
                     "external_id": _shown(record.external_id)[:200], "comments": comments, "warnings": warnings})
    return {"images": images, "sets": sets, "refused": refused}


# ---------------------------------------------------------------- starting and running an import


def external_source_for(name: str) -> ExternalSource:
    """The external source of this name, made on first use (its slug from the name, made unique)."""
    name = (name or "").strip()
    if not name:
        raise ValidationError({"source_name": [_("Name the source the comments come from.")]})
    if len(name) > 200:
        raise ValidationError({"source_name": [_("A source name has at most 200 characters.")]})
    found = ExternalSource.objects.filter(name=name).first()
    if found is not None:
        return found
    base = (slugify(name) or "source")[:24].strip("-") or "source"
    slug, n = base, 1
    while ExternalSource.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    try:
        with transaction.atomic():
            return ExternalSource.objects.create(name=name, slug=slug)
    except IntegrityError:  # made meanwhile by another import
        return ExternalSource.objects.get(name=name)


def parse_type_map(value: str) -> dict[str, str]:
    """`from_name=slug` pairs, one a line or comma-separated (Label Studio's mapping)."""
    out = {}
    for part in re.split(r"[,\n]", value or ""):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValidationError({"type_map": [_("Write each mapping as from_name=comment_type.")]})
        left, right = (s.strip() for s in part.split("=", 1))
        out[left] = right
    return out


def read_records(data: bytes | str, fmt: str, project: Project, *, type_map: dict | None = None,
                 comment_type: str = "", url_prefix: str = "") -> list[_Record]:
    """The file's records; a file that cannot be read at all raises ValidationError."""
    if fmt not in FORMATS:
        raise ValidationError({"format": [_("Choose one of: %(formats)s.") % {"formats": ", ".join(FORMATS)}]})
    if url_prefix and not re.match(r"(?i)^https?://", url_prefix):
        raise ValidationError({"url_prefix": [_("The URL prefix must start with http:// or https://.")]})
    if isinstance(data, bytes):
        if len(data) > MAX_FILE_BYTES:
            raise _file_error(_("The file is larger than %(limit)d MiB.") % {"limit": MAX_FILE_BYTES // 2**20})
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _file_error(_("The file is not UTF-8 text.")) from None
    if fmt == "labelstudio":
        records = read_label_studio(data, type_map or {}, url_prefix)
    elif fmt == "coco":
        if not comment_type:
            first = project.comment_types.order_by("position", "id").first()
            comment_type = first.slug if first else ""
        records = read_coco(data, comment_type, url_prefix)
    else:
        records = read_rows(data, fmt)
    if not records:
        raise _file_error(_("The file holds no records."))
    if len(records) > MAX_RECORDS:
        raise _file_error(_("The file holds %(n)d records; the limit is %(limit)d per import: split it.")
                          % {"n": len(records), "limit": MAX_RECORDS})
    return records


def start_comment_import(project: Project, *, data: bytes | str, fmt: str, source_name: str, photo_source,
                         file_name: str = "", images_dir: str | None = None, url_prefix: str = "",
                         type_map: dict | None = None, comment_type: str = "", licence: Licence | None = None,
                         category=None, user=None, trusted: bool = False, enqueue: bool = True) -> CommentImport:
    """Read and check the file, record the import and its photo import, and queue it (see the
    module docstring). `photo_source` is the catalogue Source the photos are filed under (its
    default licence applies unless a record names one); `images_dir` is the server folder that
    relative photo paths are in (under INGEST_ALLOWED_ROOTS unless `trusted`, as for manifests)."""
    if photo_source is None:
        raise ValidationError({"photo_source": [_("Choose the source the photos are filed under.")]})
    for name, value in (("source_name", source_name), ("images_dir", images_dir), ("url_prefix", url_prefix),
                        ("comment_type", comment_type), ("type_map", json.dumps(type_map or {}))):
        if value and ("\x00" in value or "\\u0000" in value):
            raise ValidationError({name: [_("This field holds a NUL character.")]})
    file_name = _shown(file_name or "")
    if comment_type and not project.comment_types.filter(slug=comment_type).exists():
        raise ValidationError({"comment_type": [_("The project has no comment type “%(type)s”.") % {"type": comment_type}]})
    records = read_records(data, fmt, project, type_map=type_map, comment_type=comment_type, url_prefix=url_prefix)
    plan = _plan(records, project)
    source = external_source_for(source_name)
    with transaction.atomic():
        job = None
        if plan["images"]:
            manifest = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in plan["images"])
            try:
                job = datasets_services.create_import(
                    source=photo_source, user=user, manifest=ContentFile(manifest.encode(), name="photos.jsonl"),
                    manifest_base=images_dir or None, licence=licence, category=category, trusted=trusted,
                    enqueue=False,
                )
            except datasets_services.IngestError as exc:
                raise ValidationError(str(exc)) from None
        comment_import = CommentImport.objects.create(
            project=project, external_source=source, import_job=job, format=fmt, file_name=(file_name or "")[:300],
            plan=plan, total=len(records), created_by=user,
        )
        if enqueue:
            from .tasks import run_comment_import_task

            transaction.on_commit(lambda: run_comment_import_task.delay(comment_import.pk))
    return comment_import


def run_comment_import(comment_import_id: int, deadline: float | None = None) -> CommentImport:
    """Run (or run again) an import: its photo import first, then a report line and, where the
    photo is there, a stored set for every record not yet reported. Running it again after a crash
    stores nothing twice. datasets.services.ImportStopped (the deadline) propagates: the task
    queues a new run."""
    ci = CommentImport.objects.select_related("project", "external_source", "import_job").get(pk=comment_import_id)
    if ci.finished:
        return ci
    CommentImport.objects.filter(pk=ci.pk).update(status=CommentImportStatus.RUNNING)
    job = ci.import_job
    if job is not None:
        job = datasets_services.run_import(job.pk, deadline=deadline)
    photos = {}
    if job is not None:
        for position, image_id, duplicate_of_id, outcome, code, params, reason in ImportItem.objects.filter(
                job=job).values_list("position", "image_id", "duplicate_of_id", "outcome", "reason_code",
                                     "reason_params", "reason"):
            photos[position] = (image_id or duplicate_of_id, outcome, {"code": code, "params": params, "text": reason})
    done = set(ci.rows.values_list("position", flat=True))
    lines = [CommentImportRow(comment_import=ci, position=r["position"], name=r["name"], outcome=CommentImportOutcome.REFUSED,
                              reason_code=r["code"], reason_params=r["params"])
             for r in ci.plan.get("refused", []) if r["position"] not in done]
    CommentImportRow.objects.bulk_create(lines, ignore_conflicts=True)
    sets = [s for s in ci.plan.get("sets", []) if s["position"] not in done]
    _join_queue(ci.project, {photos[s["image"]][0] for s in sets if s["image"] in photos and photos[s["image"]][0]})
    types = {ct.slug: ct for ct in ci.project.comment_types.all()}
    job_error = job.error_text if job is not None and job.status != ImportStatus.DONE else ""
    refused, ready = [], []
    for s in sets:
        image_id, outcome, reason = photos.get(s["image"], (None, None, None))
        if image_id is not None:
            ready.append((s, image_id))
            continue
        if outcome == Outcome.REFUSED or (outcome == Outcome.DUPLICATE and reason):
            line = dict(reason_code="photo_refused", reason_params={"reason": reason})
        else:
            line = dict(reason_code="photo_not_imported", reason_params={"error": job_error or "—"})
        refused.append(CommentImportRow(comment_import=ci, position=s["position"], name=s["name"],
                                        outcome=CommentImportOutcome.REFUSED, **line))
    CommentImportRow.objects.bulk_create(refused, ignore_conflicts=True, batch_size=STORE_BATCH)
    for start in range(0, len(ready), STORE_BATCH):
        _store_batch(ci, ready[start:start + STORE_BATCH], types)
    return _finish(ci)


def _join_queue(project: Project, image_ids: set) -> None:
    """The imported sets' photos are in the project's queue (snapshots take photos of the queue),
    whatever the project's filters say: the planner brought them into this project."""
    if not image_ids:
        return
    from datasets.models import Image

    from .services import _QueuePriority

    priority = _QueuePriority(project)
    rows = [ProjectImage(project=project, image_id=pk, category_id=category_id, priority=priority(category_id))
            for pk, category_id in Image.objects.filter(pk__in=image_ids).values_list("pk", "category_id")]
    ProjectImage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=2000)


# Sets stored per transaction: their existing copies found in one query, the new sets, their
# comments and their report lines inserted in one statement each.
STORE_BATCH = 500


def _store_batch(ci: CommentImport, batch: list[tuple[dict, object]], types: dict[str, CommentType]) -> None:
    """A batch of sets whose photos are there, in one transaction; sets already stored from this
    source (an earlier import of the same file) get their "already imported" line. If another run
    stores one of them meanwhile (a unique constraint), the batch goes one set at a time."""
    existing = dict(
        ((image_id, external_id), pk) for pk, image_id, external_id in Assignment.objects.filter(
            project=ci.project, external_source=ci.external_source,
            external_id__in={s["external_id"] for s, _ in batch},
        ).values_list("pk", "image_id", "external_id")
    )
    now = timezone.now()
    lines, new = [], []
    for s, image_id in batch:
        pk = existing.get((image_id, s["external_id"]))
        if pk is not None:
            lines.append(CommentImportRow(comment_import=ci, position=s["position"], name=s["name"], image_id=image_id,
                                          outcome=CommentImportOutcome.ALREADY, reason_code="already_imported",
                                          assignment_id=pk))
        else:
            existing[(image_id, s["external_id"])] = -1  # a set twice in one file: the first one counts
            new.append((s, image_id, Assignment(
                project=ci.project, image_id=image_id, labeler=None, external_source=ci.external_source,
                external_id=s["external_id"], status=AssignmentStatus.SUBMITTED, leased_at=now, expires_at=now,
                submitted_at=now)))
    try:
        with transaction.atomic():
            Assignment.objects.bulk_create([a for _, _, a in new])
            if any(a.pk is None for _, _, a in new):  # a database that returns no ids from a bulk insert
                raise IntegrityError("no ids returned")
            Comment.objects.bulk_create([
                Comment(assignment=a, comment_type=types[slug], text=text, length=length,
                        key=text_rules.comparable(text), guideline_version=None)
                for s, _, a in new for slug, text, length in s["comments"]
            ])
            lines += [CommentImportRow(comment_import=ci, position=s["position"], name=s["name"], image_id=image_id,
                                       outcome=CommentImportOutcome.IMPORTED, assignment=a, warnings=s["warnings"])
                      for s, image_id, a in new]
            CommentImportRow.objects.bulk_create(lines)
    except IntegrityError:
        for s, image_id in batch:
            _store_set(ci, s, image_id, types)


def _store_set(ci: CommentImport, s: dict, image_id, types: dict[str, CommentType]) -> None:
    """One set, its comments and its report line, in one transaction; a set already stored from
    this source on this photo (an earlier import of the same file) is reported as such."""
    now = timezone.now()
    line = CommentImportRow(comment_import=ci, position=s["position"], name=s["name"], image_id=image_id,
                            warnings=s["warnings"])
    if CommentImportRow.objects.filter(comment_import=ci, position=s["position"]).exists():
        return  # reported by another run
    try:
        with transaction.atomic():
            assignment = Assignment.objects.create(
                project=ci.project, image_id=image_id, labeler=None, external_source=ci.external_source,
                external_id=s["external_id"], status=AssignmentStatus.SUBMITTED, leased_at=now, expires_at=now,
                submitted_at=now,
            )
            Comment.objects.bulk_create([
                Comment(assignment=assignment, comment_type=types[slug], text=text, length=length,
                        key=text_rules.comparable(text), guideline_version=None)
                for slug, text, length in s["comments"]
            ])
            line.outcome, line.assignment = CommentImportOutcome.IMPORTED, assignment
            line.save(force_insert=True)
            return
    except IntegrityError:
        pass
    existing = Assignment.objects.filter(project=ci.project, image_id=image_id, external_source=ci.external_source,
                                         external_id=s["external_id"]).first()
    line.outcome, line.assignment = CommentImportOutcome.ALREADY, existing
    line.reason_code, line.warnings = "already_imported", []
    CommentImportRow.objects.bulk_create([line], ignore_conflicts=True)  # reported by another run: kept


def _finish(ci: CommentImport) -> CommentImport:
    counts = dict(ci.rows.order_by().values_list("outcome").annotate(n=Count("pk")))
    warned = ci.rows.filter(outcome=CommentImportOutcome.IMPORTED).exclude(warnings=[]).count()
    stored = Comment.objects.filter(assignment__in=ci.rows.filter(outcome=CommentImportOutcome.IMPORTED)
                                    .values("assignment_id")).count()
    CommentImport.objects.filter(pk=ci.pk).update(
        status=CommentImportStatus.DONE, finished_at=timezone.now(), imported=counts.get(CommentImportOutcome.IMPORTED, 0),
        already=counts.get(CommentImportOutcome.ALREADY, 0), refused=counts.get(CommentImportOutcome.REFUSED, 0),
        warnings=warned, comments=stored,
    )
    ci.refresh_from_db()
    if ci.imported:  # curation counts the imported sets towards its next text run (labeling.signals)
        from .services import _send_sets_submitted

        project_id = ci.project_id
        transaction.on_commit(lambda: _send_sets_submitted(project_id))
    return ci


def fail_comment_import(comment_import_id: int, error: str) -> None:
    """The run cannot go on (the task gave up): the import says why; running it again goes on."""
    CommentImport.objects.filter(pk=comment_import_id).exclude(status=CommentImportStatus.DONE).update(
        status=CommentImportStatus.FAILED, error=error[:5000], finished_at=timezone.now(),
    )
