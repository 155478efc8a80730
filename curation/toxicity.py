"""Toxicity and social bias in Korean comments (issue 12, item 3): a profanity lexicon (korcen)
and a classifier trained on the team's own labeled data, as a curation step.

Two parts, used together:
- The lexicon: korcen 1.0.3 (maintained Korean profanity regexes, offline), every level that
  `korcen.check` runs (general, minor, sexual, belittle, race, parent, special, politics). High
  precision, low recall (ml-facts: ~0.93-0.96 / ~0.24-0.31 on public hate-speech sets): a first
  pass, cheap enough to run inline. `lexicon_hits(text)` gives the level and matched text of each.
- The classifier (`ToxicityClassifier`): character n-grams (scikit-learn TfidfVectorizer,
  char_wb 1-4, sublinear tf) and a logistic regression per head: toxicity (hate / offensive /
  none) and, where the data has a bias column, social bias (gender / other / none). Char n-grams
  suit Korean: they need no morpheme analyser and survive loose spacing and 초성 spellings.
  On BEEP! (dev set, trained on its train set; bench/flags_toxicity.py) it reaches F1 0.85 for
  toxic against none where the lexicon alone reaches far less.

The training data is configuration: `manage.py train_toxicity FILE` reads a TSV or CSV
(`read_table`), adds the planners' decisions on earlier flags (keep = none, reject = the flag's
label; curation.services.toxicity_decision_rows) and trains a new version
(curation.services.train_toxicity_model), stored on the media storage with a
curation.models.ToxicityModel row that says which version is current. Every flag records that
version (detector_version "tox-v3+korcen-1.0.3"; "korcen-1.0.3" where no model is trained, and
then the evidence says "lexicon only").

The step at the end (curation.steps.Step) reads the database inside its methods; the rest needs
no database (bench/flags_toxicity.py sets Django up for the imports only).
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from django.utils.translation import gettext_lazy as _

from .steps import Step
from .steps import _flag_counts as flag_counts

log = logging.getLogger(__name__)

DETECTOR = "toxicity"
LABELS = ("hate", "offensive", "none")
TOXIC = frozenset({"hate", "offensive"})
BIAS_LABELS = ("gender", "other", "none")
# Spellings other data sets use (BEEP! writes "others").
ALIASES = {"others": "other", "clean": "none", "no": "none", "": None}
# The share of labeled rows held out to measure a new version (stratified by label).
HOLDOUT = 0.15
# Fewer rows than this (per head): no held-out part (all rows train; the metrics say so).
MIN_HOLDOUT_ROWS = 40
# The features and the model of each head: see the module docstring and bench/flags_toxicity.py.
NGRAMS = (1, 4)
C = 4.0
FORMAT = 1  # of the stored file: bump when ToxicityClassifier changes shape


class TrainingDataError(ValueError):
    """A training file (or its rows) that cannot train a model: the message says what and where."""


# ---------------------------------------------------------------- the lexicon

KORCEN_LEVELS = ("general", "minor", "sexual", "belittle", "race", "parent", "special", "politics")


_KORCEN = None


def _korcen():
    global _KORCEN
    if _KORCEN is None:
        import colorama
        import korcen.korcen as k

        # On import korcen wraps sys.stdout (colorama.init(autoreset=True)) and reads custom word
        # lists from ./custom_profanity_*.txt of whatever folder the process started in: undo the
        # first, ignore the second (the platform's lexicon must not depend on the working folder).
        colorama.deinit()
        k.CUSTOM_INCLUDE_REGEXES = []
        k.CUSTOM_EXCLUDE_REGEXES = []
        _KORCEN = k
    return _KORCEN


try:
    KORCEN_VERSION = metadata.version("korcen")
except metadata.PackageNotFoundError:  # pragma: no cover - a requirement
    KORCEN_VERSION = "missing"
LEXICON_VERSION = f"korcen-{KORCEN_VERSION}"


def lexicon_hits(text: str) -> list[dict]:
    """korcen's matches in `text`: [{"level": "general", "match": "시발"}, ...] (empty: none)."""
    k = _korcen()
    hits = []
    for level in KORCEN_LEVELS:
        found = k.check_and_report_profanity_pattern(text, level=level)
        if found:
            hits.append({"level": level, "match": str(found)[:50]})
    return hits


def lexicon_summary(hits: list[dict]) -> str:
    """lexicon_hits' matches as one line: "병신 (general), 꺼져 (belittle)"."""
    return ", ".join(f"{h['match']} ({h['level']})" for h in hits)


# ---------------------------------------------------------------- training data


@dataclass(frozen=True)
class Row:
    """One labeled text. `label` (toxicity) or `bias` may be None: that head does not learn from it."""

    text: str
    label: str | None
    bias: str | None = None
    source: str = "file"  # or "decision"


def _label(value: str | None, allowed: Sequence[str], column: str, line: int) -> str | None:
    word = (value or "").strip().lower()
    word = ALIASES.get(word, word)
    if word is None or word not in allowed:
        raise TrainingDataError(
            _("Line %(line)d: %(value)r is not a label of column %(column)s (one of: %(allowed)s).")
            % {"line": line, "value": value or "", "column": column, "allowed": ", ".join(allowed)})
    return word


def read_table(source, *, text_col: str = "text", label_col: str = "label", bias_col: str | None = "bias",
               bias_required: bool = False, name: str = "") -> list[Row]:
    """The labeled rows of a TSV or CSV file (a path, or bytes with `name` giving the extension).

    A .tsv/.tab file is tab-separated, a .csv comma-separated; anything else is sniffed from the
    first line. UTF-8 (a byte-order mark is fine), a header row naming the columns. Labels: hate /
    offensive / none; bias: gender / other / none (others = other). The bias column is optional
    unless `bias_required` (then the model has no bias head). Every problem is a TrainingDataError
    naming the line: nothing is trained from a file with one bad row."""
    if isinstance(source, (bytes, bytearray)):
        data, name = bytes(source), name or "upload"
    else:
        path = Path(source)
        name = name or path.name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise TrainingDataError(_("Cannot read %(name)s: %(why)s") % {"name": str(source), "why": exc.strerror or exc}) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(_("%(name)s is not UTF-8 text (byte %(at)d).") % {"name": name, "at": exc.start}) from None
    if not text.strip():
        raise TrainingDataError(_("%(name)s is empty.") % {"name": name})
    suffix = Path(name).suffix.lower()
    first = text.split("\n", 1)[0]
    delimiter = "\t" if suffix in (".tsv", ".tab") or (suffix != ".csv" and "\t" in first) else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    wanted = [text_col, label_col] + ([bias_col] if bias_col and bias_required else [])
    missing = [c for c in wanted if c not in columns]
    if missing:
        raise TrainingDataError(_("%(name)s has no column %(missing)s (its columns: %(columns)s).") % {
            "name": name, "missing": ", ".join(missing), "columns": ", ".join(columns) or "-"})
    use_bias = bool(bias_col) and bias_col in columns
    rows = []
    try:
        for record in reader:
            line = reader.line_num
            if None in record:  # more fields than the header
                raise TrainingDataError(_("Line %(line)d has more fields than the header.") % {"line": line})
            body = (record.get(text_col) or "").strip()
            if not body:
                raise TrainingDataError(_("Line %(line)d has no text.") % {"line": line})
            rows.append(Row(
                text=body,
                label=_label(record.get(label_col), LABELS, label_col, line),
                bias=_label(record.get(bias_col), BIAS_LABELS, bias_col, line) if use_bias else None,
            ))
    except csv.Error as exc:
        raise TrainingDataError(_("Line %(line)d: %(why)s") % {"line": reader.line_num, "why": exc}) from None
    if not rows:
        raise TrainingDataError(_("%(name)s has a header but no rows.") % {"name": name})
    return rows


def data_checksum(rows: Iterable[Row]) -> str:
    """SHA-256 of the rows as trained (text, label, bias, source), in order."""
    h = hashlib.sha256()
    for r in rows:
        h.update("\x1f".join((r.text, r.label or "", r.bias or "", r.source)).encode())
        h.update(b"\x1e")
    return h.hexdigest()


# ---------------------------------------------------------------- the classifier


def _pipeline(seed: int):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=NGRAMS, sublinear_tf=True, min_df=2),
        LogisticRegression(C=C, max_iter=2000, class_weight="balanced", random_state=seed),
    )


def scores(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Precision, recall, F1 and support per label, and for "toxic" (any label but none) against none."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=list(labels), zero_division=0)
    out = {lab: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4), "f1": round(float(f[i]), 4),
                 "support": int(s[i])} for i, lab in enumerate(labels)}
    bt = [y != "none" for y in y_true]
    bp = [y != "none" for y in y_pred]
    p, r, f, s = precision_recall_fscore_support(bt, bp, labels=[True], zero_division=0)
    out["any"] = {"precision": round(float(p[0]), 4), "recall": round(float(r[0]), 4), "f1": round(float(f[0]), 4),
                  "support": int(s[0])}
    return out


def _split(items: list, labels: list[str], seed: int):
    """A stratified held-out part (HOLDOUT), or none where there are too few rows of a label."""
    from sklearn.model_selection import train_test_split

    counts = {lab: labels.count(lab) for lab in set(labels)}
    if len(items) < MIN_HOLDOUT_ROWS or min(counts.values()) < 2:
        return items, []
    train, test = train_test_split(items, test_size=HOLDOUT, random_state=seed, stratify=labels)
    return train, test


@dataclass
class Prediction:
    label: str                 # argmax of the toxicity head
    toxic: float               # probability of hate or offensive
    probabilities: dict        # per toxicity label
    bias: str | None = None    # argmax of the bias head (None: no bias head)
    bias_score: float = 0.0    # probability of a bias label other than none
    bias_probabilities: dict = field(default_factory=dict)


@dataclass
class ToxicityClassifier:
    """The trained heads and what they were trained on. Stored with joblib (a pickle: load only
    files this platform wrote to its own storage)."""

    version: int
    toxicity: object                       # sklearn Pipeline over LABELS
    bias: object | None                    # sklearn Pipeline over BIAS_LABELS, or None
    data_sha256: str
    rows: dict                             # {"file": n, "decision": n, "toxicity": n, "bias": n}
    metrics: dict                          # held-out scores per head
    labels: tuple = LABELS
    bias_labels: tuple = BIAS_LABELS
    format: int = FORMAT

    @property
    def detector_version(self) -> str:
        return f"tox-v{self.version}+{LEXICON_VERSION}"

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        texts = list(texts)
        if not texts:
            return []
        tp = self.toxicity.predict_proba(texts)
        tcls = [str(c) for c in self.toxicity.classes_]
        bp = self.bias.predict_proba(texts) if self.bias is not None else None
        bcls = [str(c) for c in self.bias.classes_] if self.bias is not None else []
        out = []
        for i in range(len(texts)):
            probs = {c: float(tp[i][j]) for j, c in enumerate(tcls)}
            pred = Prediction(label=max(probs, key=probs.get), toxic=1.0 - probs.get("none", 0.0), probabilities=probs)
            if bp is not None:
                bprobs = {c: float(bp[i][j]) for j, c in enumerate(bcls)}
                pred.bias, pred.bias_score, pred.bias_probabilities = (
                    max(bprobs, key=bprobs.get), 1.0 - bprobs.get("none", 0.0), bprobs)
            out.append(pred)
        return out

    def dumps(self) -> bytes:
        import joblib

        buf = io.BytesIO()
        joblib.dump(self, buf, compress=3)
        return buf.getvalue()

    @staticmethod
    def loads(data: bytes) -> ToxicityClassifier:
        import joblib

        model = joblib.load(io.BytesIO(data))
        if not isinstance(model, ToxicityClassifier) or getattr(model, "format", None) != FORMAT:
            raise TrainingDataError(_("The stored toxicity model is of another format: train it again."))
        return model


def _fit_head(rows: list[Row], attr: str, labels: Sequence[str], seed: int):
    items = [r for r in rows if getattr(r, attr) is not None]
    ys = [getattr(r, attr) for r in items]
    if len(set(ys)) < 2:
        raise TrainingDataError(
            _("The %(head)s labels need at least two different values (found: %(found)s).")
            % {"head": attr, "found": ", ".join(sorted(set(ys))) or "-"})
    train, test = _split(items, ys, seed)
    metrics = {"held_out": len(test), "trained_on": len(items)}
    if test:
        pipe = _pipeline(seed).fit([r.text for r in train], [getattr(r, attr) for r in train])
        pred = [str(y) for y in pipe.predict([r.text for r in test])]
        metrics["scores"] = scores([getattr(r, attr) for r in test], pred, labels)
    # The stored model learns from every row (the held-out part measured a model trained without it).
    pipe = _pipeline(seed).fit([r.text for r in items], ys)
    return pipe, metrics


def train(rows: Sequence[Row], *, version: int, seed: int = 0) -> ToxicityClassifier:
    """Train both heads (bias only where rows carry bias labels). Deterministic for the same rows
    and seed. Metrics: scores on a stratified held-out HOLDOUT of each head's rows."""
    rows = list(rows)
    if not rows:
        raise TrainingDataError(_("There are no rows to train on."))
    tox, tox_metrics = _fit_head(rows, "label", LABELS, seed)
    bias, bias_metrics = None, None
    if any(r.bias is not None for r in rows):
        bias, bias_metrics = _fit_head(rows, "bias", BIAS_LABELS, seed)
    return ToxicityClassifier(
        version=version, toxicity=tox, bias=bias, data_sha256=data_checksum(rows),
        rows={"file": sum(r.source == "file" for r in rows), "decision": sum(r.source == "decision" for r in rows),
              "toxicity": sum(r.label is not None for r in rows), "bias": sum(r.bias is not None for r in rows)},
        metrics={"toxicity": tox_metrics, "bias": bias_metrics,
                 # a stored model loads with the scikit-learn it was trained with
                 "libraries": {"scikit-learn": metadata.version("scikit-learn"), "korcen": KORCEN_VERSION}},
    )


# ---------------------------------------------------------------- the detector


@dataclass
class Finding:
    kind: str           # curation.models.FlagKind value: "toxicity" or "bias"
    label: str
    score: float
    evidence: dict


@dataclass
class Detector:
    """The lexicon and (where one is trained) the classifier, with the thresholds from settings.

    Toxicity: flagged when the classifier's probability of hate or offensive reaches `threshold`,
    or the lexicon matches; the score is that probability, at least `lexicon_score` on a lexicon
    match (korcen's measured precision), so one threshold sorts both. Bias: flagged when the bias
    head's probability of gender or other reaches `bias_threshold` (no bias flags without a model)."""

    classifier: ToxicityClassifier | None = None
    threshold: float = 0.5
    bias_threshold: float = 0.5
    lexicon_score: float = 0.95

    @property
    def version(self) -> str:
        return self.classifier.detector_version if self.classifier else LEXICON_VERSION

    @property
    def mode(self) -> str:
        return "model+lexicon" if self.classifier else "lexicon only"

    def check(self, texts: Sequence[str]) -> list[list[Finding]]:
        texts = list(texts)
        preds = self.classifier.predict(texts) if self.classifier else [None] * len(texts)
        model = self.classifier.version if self.classifier else None
        out = []
        for text, pred in zip(texts, preds):
            hits = lexicon_hits(text)
            found = []
            toxic = pred.toxic if pred else 0.0
            if toxic >= self.threshold or hits:
                label = pred.label if pred and pred.label in TOXIC else (
                    max(("hate", "offensive"), key=lambda x: pred.probabilities.get(x, 0.0)) if pred else "offensive")
                score = max(toxic, self.lexicon_score if hits else 0.0)
                evidence = {
                    "label": label, "probability": round(toxic, 4) if pred else None,
                    "probabilities": {k: round(v, 4) for k, v in pred.probabilities.items()} if pred else {},
                    "threshold": self.threshold, "lexicon": hits, "lexicon_version": LEXICON_VERSION,
                    "model_version": model, "mode": self.mode,
                }
                if hits:  # the matched words as one line (the review card shows text evidence)
                    evidence["matched"] = lexicon_summary(hits)
                found.append(Finding("toxicity", label, round(score, 4), evidence))
            if pred and pred.bias is not None and pred.bias_score >= self.bias_threshold:
                label = pred.bias if pred.bias != "none" else max(
                    ("gender", "other"), key=lambda x: pred.bias_probabilities.get(x, 0.0))
                found.append(Finding("bias", label, round(pred.bias_score, 4), {
                    "label": label, "probability": round(pred.bias_score, 4),
                    "probabilities": {k: round(v, 4) for k, v in pred.bias_probabilities.items()},
                    "threshold": self.bias_threshold, "lexicon": hits, "model_version": model, "mode": self.mode,
                }))
            out.append(found)
        return out


_CACHE: dict[tuple, ToxicityClassifier] = {}


def current_detector() -> Detector:
    """The detector with the current model (curation.models.ToxicityModel) and the settings'
    thresholds; the lexicon alone where no model is trained (or its file cannot be read: logged)."""
    from django.conf import settings
    from django.core.files.storage import default_storage

    from .models import ToxicityModel

    conf = settings.CURATION
    detector = Detector(threshold=conf["TOXICITY_THRESHOLD"], bias_threshold=conf["BIAS_THRESHOLD"],
                        lexicon_score=conf["TOXICITY_LEXICON_SCORE"])
    row = ToxicityModel.objects.filter(current=True).first()
    if row is None:
        log.info("toxicity: no model trained (manage.py train_toxicity): the lexicon runs alone")
        return detector
    key = (row.version, row.file)
    if key not in _CACHE:
        try:
            with default_storage.open(row.file, "rb") as fh:
                _CACHE.clear()
                _CACHE[key] = ToxicityClassifier.loads(fh.read())
        except (OSError, TrainingDataError) as exc:
            log.error("toxicity: model v%s (%s) cannot be read (%s): the lexicon runs alone", row.version, row.file, exc)
            return detector
    detector.classifier = _CACHE[key]
    return detector


# ---------------------------------------------------------------- the curation step


class ToxicityStep(Step):
    """The curation step (curation.steps): the run's comments (new ones only in a new-only run),
    in chunks of 500; flags of kind TOXICITY and BIAS through curation.services.record_flags. A
    comment whose flag a planner has decided is not flagged again by a later model (the decision
    stands, and it is training data for the next version). Never unavailable: without a trained
    model the lexicon runs alone, and each flag's evidence says so."""

    name = DETECTOR
    label = _("Toxicity and bias")
    subject = "comments"
    chunk_size = 500  # short texts: ~0.3 s of lexicon and classifier per chunk

    def plan(self, run) -> list:
        return list(run.new_comments(self.name).order_by("pk").values_list("pk", flat=True))

    def process(self, run, ids: list) -> dict[str, int]:
        from labeling.models import Comment

        from .models import Flag, FlagKind, FlagStatus
        from .services import FlagData, record_flags

        detector = current_detector()
        comments = list(Comment.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "text"))
        decided = set(Flag.objects.filter(detector=DETECTOR, comment_id__in=ids).exclude(
            status=FlagStatus.OPEN).values_list("comment_id", "kind"))
        flags, counts = [], {"comments": len(comments), "toxic": 0, "bias": 0}
        for (pk, _text), found in zip(comments, detector.check([t for _pk, t in comments])):
            for f in found:
                kind = FlagKind.TOXICITY if f.kind == "toxicity" else FlagKind.BIAS
                if (pk, kind) in decided:
                    continue
                counts["toxic" if f.kind == "toxicity" else "bias"] += 1
                flags.append(FlagData(kind=kind, comment=pk, score=f.score, evidence=f.evidence))
        # Open flags of comments checked now and no longer found (a new model): withdrawn.
        recorded = record_flags(DETECTOR, detector.version, flags, checked_comments=[pk for pk, _t in comments],
                                kinds=[FlagKind.TOXICITY, FlagKind.BIAS])
        counts.update(flag_counts(recorded))
        if not detector.classifier:
            counts["lexicon_only"] = len(comments)
        return counts


STEPS = [ToxicityStep()]
