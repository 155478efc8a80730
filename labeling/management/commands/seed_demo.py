"""Demo data for the embedded platform: a user per role, a demo source and generated photos, and
a demo project over them (a labeling command: labeling builds on datasets, not the reverse).

Safe to run again: users and the source are created once, and photos are imported only while
the demo source has fewer than asked for (re-imported ones are duplicates and stored once).
The demo passwords are fixed and printed, so the command refuses to run in production mode.
"""
from __future__ import annotations

import io
import math
import random

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from accounts import services as account_services
from accounts.models import Role, User
from datasets import services
from datasets.models import Image as ImageRow
from datasets.models import Licence, Source, SourceKind, Subcategory

DEMO_SOURCE = "Demo photos (generated)"
DEMO_LICENCE = "cc0-1.0"
DEMO_USERS = [  # (username, password, role)
    ("labeler", "labeler-demo-pass", Role.LABELER),
    ("planner", "planner-demo-pass", Role.PLANNER),
    ("engineer", "engineer-demo-pass", Role.ENGINEER),
    ("admin", "admin-demo-pass", Role.ADMIN),
]
DEMO_PROJECT = "데모 프로젝트 (Demo project)"
# A second labeler who has already written a few comment sets, so the planner's dashboard shows
# overlap filling in and the labeler finds photos that are already started.
DEMO_HELPER = ("labeler2", "labeler2-demo-pass")
# A third labeler who completed six of those photos (two sets each: the project's overlap), so a
# snapshot of the demo project with its default settings has photos to freeze and export.
DEMO_HELPER3 = ("labeler3", "labeler3-demo-pass")
DEMO_REACTIONS3 = ["와 좋다", "예쁘네요", "멋있어요!", "마음에 들어요", "느낌 있다", "보기 좋아요"]
DEMO_GUIDELINE = """# 사진 코멘트 가이드라인

친구가 보낸 사진에 답하듯이, 자연스러운 한국어로 써 주세요.

- **짧은 반응**: 사진을 처음 봤을 때의 느낌을 한두 마디로 (3자 이상).
- **구체적인 코멘트**: 사진에 실제로 보이는 것을 짚어서 (10자 이상).
- 사진에 없는 것을 지어내지 마세요.
- 개인정보(전화번호, 주소, 이메일)와 링크는 쓰지 않습니다.

아래 예시를 꼭 확인해 주세요. 좋은 예시와 나쁜 예시가 함께 있습니다.

---

*English:* answer as you would answer a friend who sent the photo. A short reaction (3+
characters) and a specific comment about what is really in the photo (10+ characters).
"""
# Issue 12's demo ("Done means"): one of labeler2's sets carries an insulting comment, which the
# inline lexicon at submit (curation.services.flag_lexicon_inline) turns into an open toxicity
# flag: the planner's review queue shows its card with the matched word. (A phone number is not
# seeded: the submit refuses it, with the Korean message "코멘트에는 전화번호를 쓸 수 없어요.".)
DEMO_INSULT = {"reaction": "음 이게 뭐지", "specific": "이 사진 찍은 놈 진짜 병신 같네"}
DEMO_REACTIONS = ["와 멋지다!", "분위기 좋네요", "오 신기해요", "너무 좋다", "색감 예뻐요", "완전 내 취향", "여기 가보고 싶다", "정말 잘 찍었네요"]
DEMO_EXAMPLES = [  # (category slug, note, [(type, text, verdict, why)])
    ("food", "음식 사진: 보이는 음식과 그 느낌을 짚어요.", [
        ("reaction", "와 맛있겠다!", "good", "자연스러운 첫 반응"),
        ("specific", "접시에 담긴 음식 색감이 먹음직스럽네요, 어디서 드신 거예요?", "good", "사진 속 내용을 짚고 대화를 이어 감"),
        ("reaction", "ㅋㅋㅋㅋ", "bad", "자모만으로는 반응이 되지 않아요"),
        ("specific", "맛있는 음식이네요.", "bad", "너무 일반적이라 어떤 사진에도 맞는 말"),
    ]),
    ("animals", "동물 사진: 동물의 모습이나 행동을 구체적으로.", [
        ("reaction", "너무 귀여워요", "good", "짧고 자연스러움"),
        ("specific", "풀밭에 서 있는 모습이 늠름하네요, 산책 나온 건가요?", "good", "보이는 장면에 근거"),
        ("specific", "강아지가 공을 물고 뛰어오네요", "bad", "사진에 없는 공을 지어냄"),
    ]),
]


class Command(BaseCommand):
    help = "Create demo users (one per role), a demo source and generated demo photos. Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("--images", type=int, default=44, help="Demo photos to have in total (default 44).")
        parser.add_argument(
            "--force", action="store_true",
            help="Run even with PLATFORM_ENV=production (creates accounts with the published demo passwords).",
        )

    def handle(self, *args, images: int, force: bool, **options):
        if settings.PRODUCTION and not force:
            raise CommandError(
                "seed_demo creates accounts with published passwords; it refuses to run with "
                "PLATFORM_ENV=production. Use --force only on a throwaway installation."
            )
        if images < 0:
            raise CommandError("--images must be 0 or more.")
        created = self.seed_users()
        source = self.seed_source()
        report = self.seed_images(source, images)
        project_report = self.seed_project()
        self.print_logins(created)
        self.stdout.write(report)
        self.stdout.write(project_report)

    def seed_users(self) -> set[str]:
        created = set()
        for username, password, role in DEMO_USERS:
            if not User.objects.filter(username=username).exists():
                account_services.create_user(username, password, role)
                created.add(username)
        return created

    def seed_source(self) -> Source:
        licence = Licence.objects.get(code=DEMO_LICENCE)
        source, _ = Source.objects.get_or_create(
            name=DEMO_SOURCE,
            defaults={
                "kind": SourceKind.UPLOAD,
                "default_licence": licence,
                "description": "Scenes drawn by `manage.py seed_demo` so the pages have something to show.",
            },
        )
        return source

    def seed_images(self, source: Source, wanted: int) -> str:
        have = source.images.count()
        if have >= wanted:
            return f"Demo photos: {have} already in '{source.name}'; nothing to import."
        subs = list(Subcategory.objects.filter(is_active=True, category__is_active=True).select_related("category"))
        if not subs:
            return "Demo photos: no active subcategories to put them in; skipped."
        planned: dict[int, list[ContentFile]] = {}
        for n in range(wanted):
            sub = subs[n % len(subs)]
            label = f"{english(sub.category.name)} - {english(sub.name)}"
            data = demo_photo(sub.category.slug, sub.slug, label=label, seed=n)
            planned.setdefault(sub.pk, []).append(ContentFile(data, name=f"demo-{sub.category.slug}-{sub.slug}-{n:03d}.jpg"))
        accepted = 0
        by_pk = {s.pk: s for s in subs}
        for pk, files in planned.items():
            sub = by_pk[pk]
            with transaction.atomic():
                job = services.create_import(
                    source=source, files=files, category=sub.category, subcategory=sub, enqueue=False,
                )
            job = services.run_import(job.pk)
            accepted += job.accepted
        return f"Demo photos: {accepted} imported into '{source.name}' ({source.images.count()} in all)."

    def seed_project(self) -> str:
        """A labeling project over every demo photo with the demo labeler as a member, a
        published guideline with examples, and a few sets written by a second labeler."""
        from labeling import services as labeling
        from labeling.models import Project

        if Project.objects.filter(name=DEMO_PROJECT).exists():
            return f"Demo project: '{DEMO_PROJECT}' already exists; left as it is."
        if not ImageRow.objects.exists():
            return "Demo project: no photos; skipped."
        planner = User.objects.filter(username="planner").first()
        project = labeling.create_project(DEMO_PROJECT, created_by=planner, cap_per_labeler=30,
                                          description="Generated by seed_demo: click through the labeler and planner pages.")
        added, _ = labeling.sync_project_images(project)
        for slug, note, comments in DEMO_EXAMPLES:
            image = ImageRow.objects.filter(category__slug=slug).order_by("created_at", "pk").first()
            if image is not None:
                labeling.save_example(project, image, note=note, comments=[
                    {"comment_type": t, "text": text, "verdict": v, "why": why} for t, text, v, why in comments
                ])
        labeling.save_guideline_draft(project, DEMO_GUIDELINE)
        labeling.publish_guideline(project, published_by=planner)
        labeler = User.objects.get(username="labeler")
        labeling.add_member(project, labeler)
        # labeler2 starts eight photos; labeler3 then gets started photos first (the engine's
        # order) and completes six of them.
        written = self.write_sets(project, DEMO_HELPER, "데모 라벨러 2", min(8, added), lambda n: {
            "reaction": DEMO_REACTIONS[n], "specific": f"사진 속 색감이 정말 따뜻하고 편안해 보여요 ({n + 1}번째 사진)"})
        completed = self.write_sets(project, DEMO_HELPER3, "데모 라벨러 3", min(6, written), lambda n: {
            "reaction": DEMO_REACTIONS3[n], "specific": f"빛이 부드럽게 들어와서 장면이 또렷하게 보여요 ({n + 1}번째)"})
        review = self.seed_review_queue(project)
        return (f"Demo project: '{DEMO_PROJECT}' with {added} photos, a published guideline with examples, "
                f"{written} comment sets by '{DEMO_HELPER[0]}' and {completed} by '{DEMO_HELPER3[0]}'.\n{review}")

    def seed_review_queue(self, project) -> str:
        """Cards for the planner's review queue (curation): labeler2's set with an insulting
        comment, on a photo nobody has started (flagged at submit when CURATION["INLINE_LEXICON"]
        is on, as by default; otherwise the project's next text run flags it), then the other
        detectors' examples (seed_detector_examples)."""
        from curation.models import Flag, FlagKind

        if not self.write_sets(project, DEMO_HELPER, "데모 라벨러 2", 1, lambda n: DEMO_INSULT):
            return "Review queue: no photo left for the insulting comment; skipped."
        flagged = Flag.objects.filter(project=project, kind=FlagKind.TOXICITY, comment__text=DEMO_INSULT["specific"])
        lines = [f"Review queue: an insulting comment by '{DEMO_HELPER[0]}' "
                 + ("flagged for toxicity at submit." if flagged.exists()
                    else "(the inline lexicon is off: a text run of the project flags it).")]
        return "\n".join(lines + seed_detector_examples(project))

    def write_sets(self, project, account, first_name: str, count: int, texts) -> int:
        """A demo labeler (made if missing) joins the project and submits up to `count` comment
        sets, `texts(n)` for the n-th; returns how many."""
        from labeling import services as labeling

        username, password = account
        user = User.objects.filter(username=username).first() or account_services.create_user(
            username, password, Role.LABELER, first_name=first_name)
        labeling.add_member(project, user)
        for n in range(count):
            try:
                assignment = labeling.next_assignment(project, user)
            except labeling.LabelingError:
                return n
            labeling.submit(assignment, user, texts(n))
        return count

    def print_logins(self, created: set[str]) -> None:
        self.stdout.write(self.style.SUCCESS("Demo logins (embedded mode only):"))
        for username, password, role in DEMO_USERS:
            note = "" if username in created else "  (existing account, left as it was)"
            self.stdout.write(f"  {role:<9} username: {username:<9} password: {password}{note}")


# ------------------------------------------------------------------------- other detectors' cards

def seed_detector_examples(project) -> list[str]:
    """The review cards of issue 12's other detectors:
    - photo_pii: a face in a food photo (a generated photo with a drawn face, imported into the
      food category, then the photo_pii step over that import: a FACE flag with its box);
    - scores: a comment about the wrong photo needs an embedding model that can judge it; the demo
      has no weights, so it says how to get that card instead of faking one.
    Returns the command's report lines."""
    from curation import runs
    from curation.models import Flag, FlagKind, RunStatus
    from curation.synthetic import face_photo

    lines = []
    sub = Subcategory.objects.filter(category__slug="food", is_active=True).select_related("category").first()
    if sub is None:
        lines.append("Review queue: no food category; the face example was skipped.")
    else:
        img = face_photo(0)[0]  # the drawn face the cascades find (tests/test_photo_pii.py)
        out = io.BytesIO()
        img.save(out, "JPEG", quality=90)
        source = Source.objects.get(name=DEMO_SOURCE)
        with transaction.atomic():
            job = services.create_import(source=source, files=[ContentFile(out.getvalue(), name="demo-food-face.jpg")],
                                         category=sub.category, subcategory=sub, enqueue=False)
        job = services.run_import(job.pk)
        run = runs.run_here(runs.start_run(None, ["photo_pii"], options={"import_job": job.pk}, enqueue=False,
                                           trigger="command"))
        found = Flag.objects.filter(kind=FlagKind.FACE, image__import_job=job).exists()
        lines.append("Review queue: a face in a food photo " + (
            "flagged with its box." if found else
            f"not flagged ({'OpenCV missing' if run.status == RunStatus.DONE else run.error or run.status})."))
    lines.append("Review queue: comments about the wrong photo are scored once an embedding model is configured "
                 "(CURATION_EMBED_CHECKPOINT or cached open_clip weights; see the README, 'Hallucination and "
                 "specificity scores').")
    return lines


# ------------------------------------------------------------------------- scene drawing

SKY = ((110, 160, 220), (235, 225, 205))
PALETTES = {
    "people": ((205, 185, 160), (90, 80, 75)),
    "food": ((230, 215, 190), (120, 70, 40)),
    "places": ((140, 185, 235), (90, 130, 70)),
    "animals": ((160, 200, 235), (95, 150, 65)),
    "other": ((235, 235, 230), (150, 150, 160)),
}


def english(name: str) -> str:
    """'Food / 음식' -> 'Food' (Pillow's built-in font has no Hangul)."""
    return name.split(" / ")[0]


def _gradient(w: int, h: int, top, bottom) -> Image.Image:
    t = np.linspace(0, 1, h)[:, None, None]
    rows = np.array(top, float) * (1 - t) + np.array(bottom, float) * t
    return Image.fromarray(np.repeat(rows, w, axis=1).astype("uint8"))


def _rand_colour(rng, lo=30, hi=230) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def demo_photo(category: str, subcategory: str, *, label: str, seed: int, size=(960, 720)) -> bytes:
    """A plausible-looking scene for a category: gradients, shapes, a little noise and a label."""
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)
    w, h = size
    top, bottom = PALETTES.get(category, SKY)
    img = _gradient(w, h, top, bottom)
    d = ImageDraw.Draw(img)
    if category == "people":
        for _ in range(1 if subcategory == "selfie" else rnd.randint(2, 4)):
            scale = 1.6 if subcategory == "selfie" else rnd.uniform(0.6, 1.0)
            cx, r = rnd.randint(w // 5, 4 * w // 5), int(90 * scale)
            cy = int(h * (0.45 if subcategory == "selfie" else rnd.uniform(0.35, 0.55)))
            d.rounded_rectangle([cx - 2 * r, cy + r, cx + 2 * r, h], radius=r, fill=_rand_colour(rng))
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(rnd.randint(200, 240), rnd.randint(160, 200), 150))
            d.pieslice([cx - r, cy - r - 10, cx + r, cy + r // 2], 180, 360, fill=(40, 30, 25))
            for ex in (-r // 3, r // 3):
                d.ellipse([cx + ex - 8, cy - 5, cx + ex + 8, cy + 11], fill=(30, 30, 30))
            d.arc([cx - r // 2, cy + r // 6, cx + r // 2, cy + r // 2 + 10], 20, 160, fill=(150, 60, 60), width=5)
    elif category == "food":
        d.rectangle([0, int(h * 0.25), w, h], fill=(150, 105, 70))
        if subcategory == "packaged":
            for _ in range(rnd.randint(2, 4)):
                x0, y0 = rnd.randint(0, w - 260), rnd.randint(h // 4, h - 320)
                d.rectangle([x0, y0, x0 + 220, y0 + 300], fill=_rand_colour(rng), outline=(255, 255, 255), width=6)
                d.rectangle([x0 + 20, y0 + 40, x0 + 200, y0 + 110], fill=(250, 250, 245))
        else:
            for _ in range(rnd.randint(1, 3)):
                cx, cy, r = rnd.randint(200, w - 200), rnd.randint(h // 2 - 50, h - 200), rnd.randint(120, 190)
                d.ellipse([cx - r, cy - r * 0.7, cx + r, cy + r * 0.7], fill=(245, 245, 240), outline=(200, 200, 200), width=4)
                inner = (200, 60, 30) if subcategory == "korean" else (220, 170, 60)
                for _ in range(9):
                    a, dist = rnd.uniform(0, 2 * math.pi), rnd.uniform(0, r * 0.5)
                    px, py, pr = cx + dist * math.cos(a), cy + dist * 0.7 * math.sin(a), rnd.randint(18, 40)
                    d.ellipse([px - pr, py - pr * 0.7, px + pr, py + pr * 0.7],
                              fill=tuple(max(0, min(255, c + rnd.randint(-40, 40))) for c in inner))
    elif category == "places":
        horizon = int(h * rnd.uniform(0.55, 0.7))
        if subcategory == "landmark":
            cx = rnd.randint(w // 3, 2 * w // 3)
            d.polygon([(cx - 70, horizon), (cx + 70, horizon), (cx + 15, int(h * 0.12)), (cx - 15, int(h * 0.12))],
                      fill=(120, 110, 105))
            d.rectangle([cx - 110, horizon - 60, cx + 110, horizon], fill=(150, 140, 130))
        else:
            for _ in range(rnd.randint(2, 4)):
                px, ph = rnd.randint(-100, w), rnd.randint(150, 350)
                d.polygon([(px - 300, horizon), (px, horizon - ph), (px + 300, horizon)], fill=(80, 110, 90))
            for _ in range(rnd.randint(3, 7)):
                tx = rnd.randint(0, w)
                d.ellipse([tx - 40, horizon - 120, tx + 40, horizon - 20], fill=(40, 100, 50))
        d.rectangle([0, horizon, w, h], fill=(85, 125, 70))
        d.ellipse([w - 180, 40, w - 100, 120], fill=(255, 245, 200))
    elif category == "animals":
        cx, cy = rnd.randint(w // 3, 2 * w // 3), int(h * 0.62)
        body = _rand_colour(rng, 60, 200)
        d.ellipse([cx - 190, cy - 90, cx + 190, cy + 90], fill=body)
        hx = cx + (180 if rnd.random() < 0.5 else -180)
        d.ellipse([hx - 85, cy - 190, hx + 85, cy - 30], fill=body)
        for ex in (-50, 50):
            d.polygon([(hx + ex - 30, cy - 160), (hx + ex, cy - 240), (hx + ex + 30, cy - 160)], fill=body)
            d.ellipse([hx + ex // 2 - 9, cy - 130, hx + ex // 2 + 9, cy - 112], fill=(20, 20, 20))
        for lx in (-130, -60, 60, 130):
            d.rectangle([cx + lx - 18, cy + 50, cx + lx + 18, cy + 160], fill=body)
        if subcategory == "pet":
            d.rectangle([hx - 70, cy - 50, hx + 70, cy - 35], fill=(200, 30, 40))
    else:
        d.rectangle([0, int(h * 0.6), w, h], fill=(200, 195, 190))
        cx, cy = rnd.randint(w // 3, 2 * w // 3), int(h * 0.5)
        colour = _rand_colour(rng)
        if subcategory == "electronics":
            d.rounded_rectangle([cx - 260, cy - 170, cx + 260, cy + 150], radius=18, fill=(30, 30, 35))
            d.rectangle([cx - 240, cy - 150, cx + 240, cy + 130], fill=colour)
        elif subcategory == "cosmetics":
            for dx in (-150, 0, 150):
                d.rounded_rectangle([cx + dx - 45, cy - 140, cx + dx + 45, cy + 150], radius=20, fill=_rand_colour(rng))
                d.rectangle([cx + dx - 25, cy - 190, cx + dx + 25, cy - 140], fill=(40, 40, 40))
        else:
            d.polygon([(cx - 200, cy - 200), (cx - 80, cy - 230), (cx, cy - 190), (cx + 80, cy - 230),
                       (cx + 200, cy - 200), (cx + 260, cy - 60), (cx + 160, cy - 40), (cx + 150, cy + 200),
                       (cx - 150, cy + 200), (cx - 160, cy - 40), (cx - 260, cy - 60)], fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(1.2))  # soft edges, like a lens
    grain = rng.integers(-6, 7, (h, w, 1), dtype=np.int16)  # sensor grain, one value per pixel
    noisy = np.asarray(img, dtype=np.int16) + grain
    img = Image.fromarray(noisy.clip(0, 255).astype("uint8"))
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=28)
    d.rectangle([16, h - 60, 32 + d.textlength(label, font=font), h - 16], fill=(0, 0, 0))
    d.text((24, h - 56), label, fill=(255, 255, 255), font=font)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88)
    return buf.getvalue()
