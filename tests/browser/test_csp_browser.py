"""Issue 9: every page works under the Content-Security-Policy, and stored data runs no script.

Each page is loaded in Chromium as every role that may see it, with a `securitypolicyviolation`
listener installed before any of the page's own scripts and the console watched for CSP errors;
a single report fails the test (a page that needs an inline script or style, an eval, or an
outside origin). `test_every_page_is_listed` keeps the list honest as pages are added.
"""
from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import PASSWORD, make_photo

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

ANON, LABELER, PLANNER, ENGINEER, ADMIN = "anonymous", "labeler", "planner", "engineer", "admin"
READERS = (PLANNER, ENGINEER, ADMIN)
PLANNERS = (PLANNER, ADMIN)
SIGNED_IN = (LABELER, PLANNER, ENGINEER, ADMIN)

# (url name, how to fill its arguments, roles that see the page). Arguments come from `world`.
PAGES = [
    ("login", None, (ANON,)),
    ("admin:login", None, (ANON,)),
    ("home", None, SIGNED_IN),
    ("api-docs", None, SIGNED_IN),
    ("api-redoc", None, SIGNED_IN),
    ("quota-dashboard", None, READERS),
    ("categories", None, PLANNERS),
    ("category-edit", "category", PLANNERS),
    ("sources", None, READERS),
    ("imports", None, READERS),
    ("import-new", None, PLANNERS),
    ("import-detail", "job", READERS),
    ("images", None, READERS),
    ("image-detail", "image", READERS),
    ("tokens", None, (ENGINEER, ADMIN)),
    ("labeler-home", None, (LABELER, ADMIN)),
    ("label", "project", (LABELER, ADMIN)),
    ("label-history", "project", (LABELER, ADMIN)),
    ("label-guide", "project", (LABELER, ADMIN)),
    ("projects", None, READERS),
    ("project-new", None, PLANNERS),
    ("project-detail", "project", READERS),
    ("project-edit", "project", PLANNERS),
    ("project-guideline", "project", PLANNERS),
    ("project-guideline-version", "version", PLANNERS),
    ("project-example-pick", "project", PLANNERS),
    ("project-example-new", "new_example", PLANNERS),
    ("project-example-edit", "example", PLANNERS),
    ("project-labelers", "project", PLANNERS),
    ("project-labeler-quality", "project", READERS),
    ("project-reports", "project", PLANNERS),
    ("project-report-exclude", "report", PLANNERS),
    ("project-comments", "project", READERS),
    ("project-comment-imports", "project", READERS),
    ("project-comment-import", "comment_import", READERS),
    ("snapshots", None, READERS),
    ("snapshot-new", None, READERS),
    ("snapshot-page", "snapshot", READERS),
    ("snapshot-page-diff", "snapshot", READERS),
    ("export-list", None, READERS),
    ("export-detail", "export", READERS),
    ("snapshot-exports", "snapshot", READERS),
    ("runs", None, READERS),
    ("run-detail", "run", READERS),
    ("curation-review", None, READERS),
    ("curation-decisions", None, READERS),
    ("curation-runs", None, READERS),
    ("curation-run", "curation_run", READERS),
    ("curation-specificity", "project", READERS),
    ("admin:index", None, (ADMIN,)),
    ("admin:accounts_user_changelist", None, (ADMIN,)),
    ("admin:accounts_user_change", "admin_user", (ADMIN,)),
]

# What shows that a page's scripts ran (the docs pages are drawn by their bundles).
DRAWN = {"api-docs": ".swagger-ui .opblock", "api-redoc": ".api-content h1"}

# Routes that are not pages: form targets (POST only), JSON, redirects, files.
NOT_PAGES = {
    "logout", "token-revoke", "category-active", "subcategory-active", "import-progress", "import-resume", "images-bulk",
    "project-guideline-preview", "project-example-delete", "project-example-move", "project-member-cap",
    "project-member-active", "project-report-resolve", "project-report-undo", "set_language", "schema",
    "favicon", "project-comments-export", "snapshot-page-archive",
    "export-progress", "export-resume", "export-cancel", "export-file", "run-remove",
    "project-labeler-message", "labeler-message-read",
    "curation-review-decide", "curation-review-decide-matching", "curation-review-undo-batch", "curation-undo", "curation-keep-instead", "curation-run-cancel", "curation-run-resume",
}

VIOLATION_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspReport([e.violatedDirective, e.blockedURI, e.sourceFile + ":" + e.lineNumber, e.sample].join(" | "));
});
"""


def _named_routes(resolver=None, prefix="", namespace=""):
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
            yield from _named_routes(p, prefix + str(p.pattern), ns)
        elif isinstance(p, URLPattern) and p.name:
            yield prefix + str(p.pattern), namespace + p.name


def test_every_page_is_listed():
    """Each named HTML route is either loaded below or named as not a page (the API under /api/
    and the admin's own many routes are left out; the admin is sampled in PAGES)."""
    listed = {name for name, _, _ in PAGES} | NOT_PAGES
    missing = sorted(name for route, name in _named_routes()
                     if not route.startswith(("api/", "admin/", "media/")) and name not in listed)
    assert missing == []


@pytest.fixture
def world(users, source, tmp_path):
    from datasets import services as datasets
    from datasets.models import Category, ImportItem, ImportJob
    from labeling import services
    from labeling.snapshots import freeze_snapshot
    from tests.factories import texts

    images = [datasets.ingest_one(make_photo(480, 360, seed=1300 + i), source=source, category="food",
                                  original_url=f"https://example.com/photo/{i}").image for i in range(3)]
    job = ImportJob.objects.create(source=source, kind="upload", status="done", total=1, processed=1, accepted=1)
    ImportItem.objects.create(job=job, position=0, name="a.jpg", outcome="accepted", image=images[0])
    project = services.create_project("CSP", created_by=users["planner"])
    services.sync_project_images(project)
    services.add_member(project, users["labeler"], cap_override=10)
    example = services.save_example(project, images[0], note="짧게", comments=[
        {"comment_type": "reaction", "text": "와 맛있겠다", "verdict": "good", "why": "자연스러워요"},
    ])
    version = services.publish_guideline(project, "# 가이드\n\n- **친구에게 말하듯**\n", published_by=users["planner"])
    reported = services.report(services.next_assignment(project, users["labeler"]), users["labeler"], "broken")
    from labeling import external

    comment_import = external.start_comment_import(
        project, data='path,comment_type,text\nnowhere.jpg,reaction,와 맛있겠다\n', fmt="csv", source_name="Vendor",
        photo_source=source, file_name="c.csv", trusted=True, enqueue=False)
    external.run_comment_import(comment_import.pk)
    services.submit(services.next_assignment(project, users["labeler"]), users["labeler"], texts(1))
    # A planner's message: the labeler's pages show it with its dismiss script.
    services.send_labeler_message(project, users["labeler"], "사진에 보이는 것을 써 주세요", sent_by=users["planner"])
    snapshot = freeze_snapshot("CSP", projects=[project], min_sets=1)
    from datasets.models import Export

    export = Export.objects.create(snapshot=snapshot, destination="/nowhere", folder="/nowhere/csp/v1",
                                   status="failed", error="Writing failed.")
    from datasets.runs.services import register_run
    from tests.runfolders import write_run

    training_run, _ = register_run(str(write_run(tmp_path, snapshot=("CSP", 1))), trusted=True)
    from curation import services as curation

    curation.record_flags("phash", "1", [{"kind": "near_duplicate_photo", "image": images[1], "keeper": images[0],
                                          "score": 4, "group_key": "g", "evidence": {"distance": 4}}])
    from curation.models import Flag

    curation.decide([Flag.objects.get()], "keep", users["planner"])
    curation.record_flags("phash", "1", [{"kind": "near_duplicate_photo", "image": images[2], "keeper": images[0],
                                          "score": 5, "group_key": "g", "evidence": {"distance": 5}}])
    # A face flag: the review page draws its box (an inline SVG over the photo).
    curation.record_flags("photo_pii", "1", [{"kind": "face", "image": images[0], "score": 0.5, "evidence": {
        "boxes": [[0.2, 0.25, 0.3, 0.4, 10]], "detector": "opencv-haar", "source_size": [480, 360]}}])
    from curation import runs

    run = runs.start_run(None, ["quality", "text"], user=users["planner"], enqueue=False)  # queued: its page polls
    return {
        None: [], "category": [Category.objects.get(slug="food").pk], "job": [job.pk], "image": [images[0].pk],
        "project": [project.pk], "version": [project.pk, version.version], "example": [project.pk, example.pk],
        "new_example": [project.pk], "admin_user": [users["admin"].pk], "report": [project.pk, reported.pk],
        "comment_import": [project.pk, comment_import.pk], "snapshot": [snapshot.pk], "export": [export.pk],
        "curation_run": [run.pk], "run": [training_run.pk],
        "_query": {"project-example-new": f"?image={images[1].pk}", "snapshot-new": f"?from={snapshot.pk}"},
    }


def _watch(page, seen: list[str]):
    """Record every CSP violation and CSP console error of `page` (across navigations)."""
    where = {"url": ""}
    page.expose_function("__cspReport", lambda text: seen.append(f"{where['url']}: {text}"))
    page.add_init_script(VIOLATION_LISTENER)
    page.on("console", lambda m: "Content Security Policy" in m.text and seen.append(f"{where['url']}: {m.text}"))
    page.on("framenavigated", lambda f: f == page.main_frame and where.update(url=f.url))


def _load(page, url: str):
    response = page.goto(url, wait_until="networkidle")
    return response


# once: the pages' scripts and the policy are the same on either database (two minutes a run)
@pytest.mark.once
def test_every_page_under_the_policy_reports_no_violation(new_page, world, login):
    from django.urls import reverse

    violations: list[str] = []
    wrong_status: list[str] = []
    visited = 0
    for role in (ANON, LABELER, PLANNER, ENGINEER, ADMIN):
        page = new_page()
        _watch(page, violations)
        if role != ANON:
            login(page, f"{role}1", PASSWORD)
        for name, arg, roles in PAGES:
            if role not in roles:
                continue
            url = reverse(name, args=world[arg]) + world["_query"].get(name, "")
            response = _load(page, url)
            visited += 1
            if name in DRAWN:
                page.wait_for_selector(DRAWN[name])
            header = response.headers.get("content-security-policy", "")
            if response.status != 200 or "script-src 'self'" not in header:
                wrong_status.append(f"{role} {url}: {response.status} {header!r}")
        page.close()
    assert wrong_status == []
    assert not violations, "\n".join(sorted(set(violations)))
    assert visited >= 79


def test_stored_javascript_url_renders_no_link_and_runs_no_script(new_page, users, source, login):
    """A row stored before the scheme check (or by a path that skipped it): an admin who clicks the
    original URL runs nothing (before the fix this opened the alert), and no page links it."""
    from datasets import services
    from datasets.models import Image, Licence

    image = services.ingest_one(make_photo(seed=1400), source=source).image
    Image.objects.filter(pk=image.pk).update(original_url="javascript:alert(document.domain)")
    Licence.objects.filter(pk=image.licence_id).update(url="javascript:alert('licence')")
    page = new_page()
    violations: list[str] = []
    _watch(page, violations)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, "admin1")
    _load(page, f"/datasets/images/{image.pk}/")
    page.get_by_text("javascript:alert(document.domain)", exact=True).click()  # shown, as text
    page.wait_for_timeout(500)
    assert dialogs == []
    assert page.url.endswith(f"/datasets/images/{image.pk}/")
    for url in (f"/datasets/images/{image.pk}/", "/datasets/sources/"):
        _load(page, url)
        assert page.locator("a[href^='javascript:' i], a[href*='alert']").count() == 0
