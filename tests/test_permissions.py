"""The API permission matrix: every route under /api/ x every role x a safe and a write method.

The routes come from the URL resolver, so an endpoint added without a row here fails
`test_every_api_route_has_a_matrix_row`. The expected status of each cell is written out below.
"""
from __future__ import annotations

import hashlib
import uuid

import pytest
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as account_services

ROLES = ("anonymous", "labeler", "planner", "engineer", "admin")



def row(*codes: int) -> dict[str, int]:
    assert len(codes) == len(ROLES)
    return dict(zip(ROLES, codes))


# Catalogue and ingest: planners and engineers read, planners (and admins) write, labelers 403.
READ = row(401, 403, 200, 200, 200)
CREATE_EMPTY = row(401, 403, 400, 403, 400)  # POST {}: past the role check, then a validation error
PATCH_EMPTY = row(401, 403, 200, 403, 200)  # PATCH {}: past the role check, nothing changes
WRITE_NOT_ALLOWED = row(401, 403, 405, 403, 405)  # read-only route: role check first, then 405
PUBLIC_DOCS = row(200, 200, 200, 200, 200)
PUBLIC_DOCS_WRITE = row(405, 405, 405, 405, 405)
ANY_USER = row(401, 200, 200, 200, 200)
ANY_USER_WRITE = row(401, 405, 405, 405, 405)
POST_ONLY_READ = row(401, 403, 405, 405, 405)  # GET on a write-only route: role check first, then 405

SNAPSHOT_READ = row(401, 403, 200, 200, 200)
SNAPSHOT_BAD_INPUT = row(401, 403, 400, 400, 400)
SNAPSHOT_NOT_ALLOWED = row(401, 403, 405, 405, 405)

# route name -> (url kwargs, (safe method, expected), (write method, expected))
EXPECTED = {
    "schema": ("none", ("get", PUBLIC_DOCS), ("post", PUBLIC_DOCS_WRITE)),
    "api-docs": ("none", ("get", PUBLIC_DOCS), ("post", PUBLIC_DOCS_WRITE)),
    "api-redoc": ("none", ("get", PUBLIC_DOCS), ("post", PUBLIC_DOCS_WRITE)),
    "api:api-root": ("none", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    "api:me": ("none", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    # The planners' messages to the caller: anyone signed in lists their own; marking one read is
    # its labeler's (everyone else 404).
    "api:me-messages": ("none", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    "api:me-message-read": ("labeler_message", ("get", ANY_USER_WRITE), ("post", row(401, 200, 404, 404, 404))),
    # Sign-in for custom clients: open to all (POST {} is a validation error); sign-out needs a
    # token (the matrix signs in by session, so 400).
    "api:auth-login": ("none", ("get", row(405, 405, 405, 405, 405)), ("post", row(400, 400, 400, 400, 400))),
    "api:auth-logout": ("none", ("get", row(401, 405, 405, 405, 405)), ("post", row(401, 400, 400, 400, 400))),
    "api:quotas": ("none", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:category-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:category-detail": ("category", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:subcategory-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:subcategory-detail": ("subcategory", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:licence-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:licence-detail": ("licence", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:source-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:source-detail": ("source", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:image-list": ("none", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:image-detail": ("image", ("get", READ), ("patch", PATCH_EMPTY)),
    # Bulk move / retire / exclude / restore: planners only (POST {} is a validation error).
    "api:image-bulk": ("none", ("get", POST_ONLY_READ), ("post", CREATE_EMPTY)),
    "api:import-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:import-detail": ("import", ("get", READ), ("patch", WRITE_NOT_ALLOWED)),
    "api:import-items": ("import_items", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    # Resume: planners only; the matrix's import is not interrupted, so past the role check it is 409.
    "api:import-resume": ("import", ("get", POST_ONLY_READ), ("post", row(401, 403, 409, 403, 409))),
    # Tokens: planners and engineers manage their own; labelers 403.
    "api:token-list": ("none", ("get", row(401, 403, 200, 200, 200)), ("post", row(401, 403, 400, 400, 400))),
    "api:token-detail": ("own_token", ("get", row(401, 403, 200, 200, 200)), ("delete", row(401, 403, 204, 204, 204))),
    "api:token-revoke": ("own_token", ("get", row(401, 403, 405, 405, 405)), ("post", row(401, 403, 200, 200, 200))),
    # Labeling projects: labelers, planners and engineers read (a labeler only projects where they
    # are an active member: `world` makes the matrix's labeler one); planners write.
    "api:project-list": ("none", ("get", row(401, 200, 200, 200, 200)), ("post", CREATE_EMPTY)),
    "api:project-detail": ("project", ("get", row(401, 200, 200, 200, 200)), ("patch", PATCH_EMPTY)),
    # Project configuration: planners write, planners and engineers read, labelers 403.
    "api:project-comment-type-list": ("project_child", ("get", READ), ("post", CREATE_EMPTY)),
    "api:project-comment-type-detail": ("comment_type", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:project-member-list": ("project_child", ("get", READ), ("post", CREATE_EMPTY)),
    "api:project-member-detail": ("member", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:project-member-import": ("project_child", ("get", POST_ONLY_READ), ("post", CREATE_EMPTY)),
    # The labeler scorecard: planners and engineers read; a message to a labeler: planners ({} is a 400).
    "api:project-labeler-quality": ("project_child", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:project-labeler-message": ("member", ("get", POST_ONLY_READ), ("post", CREATE_EMPTY)),
    "api:project-guideline-draft": ("project_child", ("get", READ), ("put", CREATE_EMPTY)),
    # POST {} publishes the draft (world has one): a new version each time.
    "api:project-guideline-publish": ("project_child", ("get", POST_ONLY_READ), ("post", row(401, 403, 201, 403, 201))),
    "api:project-guideline-versions": ("project_child", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:project-example-list": ("project_child", ("get", READ), ("post", CREATE_EMPTY)),
    "api:project-example-detail": ("example", ("get", READ), ("patch", PATCH_EMPTY)),
    "api:project-report-list": ("project_child", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:project-report-resolve": ("report", ("get", POST_ONLY_READ), ("post", CREATE_EMPTY)),
    "api:project-progress": ("project_child", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    # The comment browser and its download: planners and engineers read, labelers 403.
    "api:project-comment-list": ("project_child", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:project-comment-export": ("project_child", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    # Comment imports (labeling.external): planners import (POST {} lacks the file: 400), planners
    # and engineers read the imports and their report lines.
    "api:project-comment-import-list": ("project_child", ("get", READ), ("post", CREATE_EMPTY)),
    "api:project-comment-import-detail": ("comment_import", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:project-comment-import-rows": ("comment_import", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    # The labeler's flow: members (and, for reading, planners, engineers, admins); `next` only for
    # active members (the others are not members of the project: 403).
    "api:project-guideline": ("project_child", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    "api:project-rules": ("project_child", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    "api:project-history": ("project_child", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    "api:project-next": ("project_child", ("get", ANY_USER_WRITE), ("post", row(401, 200, 403, 403, 403))),
    # Snapshots: engineers and planners (and admins) read and freeze, labelers 403; never edited.
    "api:snapshot-list": ("none", ("get", SNAPSHOT_READ), ("post", SNAPSHOT_BAD_INPUT)),
    "api:snapshot-detail": ("snapshot", ("get", SNAPSHOT_READ), ("patch", SNAPSHOT_NOT_ALLOWED)),
    "api:snapshot-archive": ("snapshot", ("get", SNAPSHOT_NOT_ALLOWED), ("post", SNAPSHOT_READ)),
    # Without the required query parameter (`against`, `projects`): past the role check, a 400.
    "api:snapshot-diff": ("snapshot", ("get", SNAPSHOT_BAD_INPUT), ("post", SNAPSHOT_NOT_ALLOWED)),
    "api:snapshot-preview": ("none", ("get", SNAPSHOT_BAD_INPUT), ("post", SNAPSHOT_NOT_ALLOWED)),
    # Exports: the same roles. POST {} exports the matrix's snapshot, which has no photos: a 400.
    "api:snapshot-export-list": ("snapshot", ("get", SNAPSHOT_READ), ("post", SNAPSHOT_BAD_INPUT)),
    "api:export-detail": ("export", ("get", SNAPSHOT_READ), ("patch", SNAPSHOT_NOT_ALLOWED)),
    # The matrix's export is queued and alive: not resumable (409); the planner cancels it, after
    # which it is no longer cancellable (409).
    "api:export-resume": ("export", ("get", SNAPSHOT_NOT_ALLOWED), ("post", row(401, 403, 409, 409, 409))),
    "api:export-cancel": ("export", ("get", SNAPSHOT_NOT_ALLOWED), ("post", row(401, 403, 200, 409, 409))),
    # Files of a done local export only: the matrix's export is not done (404).
    "api:export-file": ("export_file", ("get", row(401, 403, 404, 404, 404)), ("post", SNAPSHOT_NOT_ALLOWED)),
    # Training runs: planners and engineers read, engineers (and admins) register and remove,
    # labelers 403. POST {} is a validation error; the engineer removes the matrix's run, so the
    # admin after them finds none (404, to read it too).
    "api:run-list": ("none", ("get", READ), ("post", row(401, 403, 403, 400, 400))),
    "api:run-detail": ("run", ("get", row(401, 403, 200, 200, 404)), ("delete", row(401, 403, 403, 204, 404))),
    # The review queue (curation): planners and engineers read, planners (and admins) decide, labelers 403.
    "api:curation-flag-list": ("none", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    "api:curation-flag-detail": ("flag", ("get", READ), ("patch", WRITE_NOT_ALLOWED)),
    "api:curation-flag-decide": ("flag", ("get", POST_ONLY_READ), ("post", CREATE_EMPTY)),
    "api:curation-decide": ("none", ("get", POST_ONLY_READ), ("post", CREATE_EMPTY)),
    "api:curation-flag-decide-matching": ("none", ("get", POST_ONLY_READ), ("post", CREATE_EMPTY)),
    # An unknown batch: nothing to undo (409) past the role check.
    "api:curation-decision-batch-undo": ("decision_batch", ("get", POST_ONLY_READ),
                                         ("post", row(401, 403, 409, 403, 409))),
    "api:curation-decision-list": ("none", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    # POST {} undoes the decision (planner 200); the admin after them finds an undo, which is not undone (409).
    "api:curation-decision-undo": ("decision", ("get", POST_ONLY_READ), ("post", row(401, 403, 200, 403, 409))),
    # The matrix's flag is a quality flag, in no duplicate group: keeping it instead is refused (409).
    "api:curation-flag-keep-instead": ("flag", ("get", POST_ONLY_READ), ("post", row(401, 403, 409, 403, 409))),
    "api:curation-duplicate-groups": ("none", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    # Runs: POST {} names no step (400). The matrix's run is queued: the planner cancels it, the
    # admin after them finds it cancelled (409); it is alive, so not resumable (409).
    "api:curation-run-list": ("none", ("get", READ), ("post", CREATE_EMPTY)),
    "api:curation-run-detail": ("curation_run", ("get", READ), ("patch", WRITE_NOT_ALLOWED)),
    "api:curation-run-cancel": ("curation_run", ("get", POST_ONLY_READ), ("post", row(401, 403, 200, 403, 409))),
    "api:curation-run-resume": ("curation_run", ("get", POST_ONLY_READ), ("post", row(401, 403, 409, 403, 409))),
    "api:curation-project-specificity": ("project", ("get", READ), ("post", WRITE_NOT_ALLOWED)),
    # An assignment is its labeler's: everyone else 404 (planners, engineers, admins may read it).
    "api:assignment-detail": ("assignment", ("get", ANY_USER), ("post", ANY_USER_WRITE)),
    "api:assignment-submit": ("assignment", ("get", ANY_USER_WRITE), ("post", row(401, 400, 404, 404, 404))),
    "api:assignment-skip": ("assignment", ("get", ANY_USER_WRITE), ("post", row(401, 200, 404, 404, 404))),
    "api:assignment-report": ("assignment", ("get", ANY_USER_WRITE), ("post", row(401, 400, 404, 404, 404))),
    # The labeler page's report of a submit the rules blocked: the assignment's labeler only ({} is a 400).
    "api:assignment-blocked": ("assignment", ("get", ANY_USER_WRITE), ("post", row(401, 400, 404, 404, 404))),
}


def api_routes() -> dict[str, str]:
    """{name (with namespace): route} for every URL pattern under /api/ in the resolver."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str, namespaces: list[str]):
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route, namespaces + [p.namespace] if p.namespace else namespaces)
            elif route.lstrip("^").startswith("api/"):
                found[":".join(namespaces + [p.name]) if p.name else route] = route

    walk(get_resolver().url_patterns, "", [])
    return found


def fake_image(source, **fields):
    from datasets.models import Image

    digest = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    values = dict(
        file=f"images/{digest[:2]}/{digest}.jpg", thumbnail=f"thumbs/{digest[:2]}/{digest}.jpg",
        sha256=digest, pixel_sha256=hashlib.sha256(digest.encode()).hexdigest(), phash=1,
        width=640, height=480, original_width=640, original_height=480, original_format="JPEG",
        original_bytes=1000, original_name="secret-photo.jpg", source=source, licence=source.default_licence,
    )
    values.update(fields)
    return Image.objects.create(**values)


@pytest.fixture
def world(users, source):
    from datasets.models import Category, Export, ImportJob, Snapshot

    category = Category.objects.get(slug="food")
    image = fake_image(source, category=category)
    job = ImportJob.objects.create(source=source, kind="upload", status="done")
    tokens = {role: account_services.create_token(users[role], "matrix")[0] for role in ("planner", "engineer", "admin")}
    snapshot = Snapshot.objects.create(name="matrix", version=1, min_sets=1)
    export = Export.objects.create(snapshot=snapshot, destination="/nowhere", folder="/nowhere/matrix/v1",
                                   heartbeat_at=timezone.now())
    from datasets.models import TrainingRun

    run = TrainingRun.objects.create(run_id="retrieval-matrix", kind="retrieval", status="finished",
                                     location="/nowhere/retrieval-matrix", snapshot=snapshot)
    return {"category": category, "image": image, "job": job, "tokens": tokens, "source": source, "snapshot": snapshot,
            "export": export, "run": run,
            **labeling_world(users, source, image), **curation_world(users, image)}


def curation_world(users, image) -> dict:
    """A flag on the photo and a planner's decision on it (keep: nothing else changes)."""
    from curation import services as curation

    curation.record_flags("matrix", "1", [{"kind": "quality_dark", "image": image, "score": 0.01}])
    from curation.models import Flag

    flag = Flag.objects.get()
    [decision] = curation.decide([flag], "keep", users["planner"])
    from curation import runs

    run = runs.start_run(None, ["text"], user=users["planner"], enqueue=False)
    return {"flag": flag, "decision": decision, "curation_run": run}


def labeling_world(users, source, image) -> dict:
    """A project where the matrix's labeler is an active member holding a lease, with a
    published guideline (and its draft), an example and another labeler's open report."""
    from labeling import services as labeling

    fake_image(source)
    project = labeling.create_project("matrix project")
    labeling.sync_project_images(project)
    labeling.add_member(project, users["labeler"])
    reporter = account_services.create_user("reporter", "pw-long-enough-1", "labeler")
    labeling.add_member(project, reporter)
    reported = labeling.next_assignment(project, reporter)
    labeling.report(reported, reporter, "broken")
    assignment = labeling.next_assignment(project, users["labeler"])
    example = labeling.save_example(project, image, comments=[{"text": "와 맛있겠다", "verdict": "good"}])
    labeling.publish_guideline(project, "# 가이드")
    from labeling.models import CommentImport, ExternalSource

    comment_import = CommentImport.objects.create(
        project=project, format="csv", external_source=ExternalSource.objects.create(name="matrix vendor", slug="mv"))
    message = labeling.send_labeler_message(project, users["labeler"], "메시지", sent_by=users["planner"])
    return {"project": project, "assignment": assignment, "example": example, "report": reported,
            "comment_import": comment_import, "labeler_message": message}


def url_kwargs(kind: str, world: dict, role: str) -> dict:
    if kind == "none":
        return {}
    if kind == "category":
        return {"pk": world["category"].pk}
    if kind == "subcategory":
        return {"pk": world["category"].subcategories.first().pk}
    if kind == "licence":
        return {"code": world["source"].default_licence.code}
    if kind == "source":
        return {"pk": world["source"].pk}
    if kind == "image":
        return {"pk": world["image"].pk}
    if kind == "import":
        return {"pk": world["job"].pk}
    if kind == "import_items":
        return {"job_pk": world["job"].pk}
    if kind == "project":
        return {"pk": world["project"].pk}
    if kind == "project_child":
        return {"project_pk": world["project"].pk}
    if kind == "comment_type":
        return {"project_pk": world["project"].pk, "pk": world["project"].comment_types.first().pk}
    if kind == "member":
        return {"project_pk": world["project"].pk, "user_id": world["assignment"].labeler_id}
    if kind == "example":
        return {"project_pk": world["project"].pk, "pk": world["example"].pk}
    if kind == "report":
        return {"project_pk": world["project"].pk, "assignment_id": world["report"].pk}
    if kind == "assignment":
        return {"pk": world["assignment"].pk}
    if kind == "labeler_message":
        return {"pk": world["labeler_message"].pk}
    if kind == "comment_import":
        return {"project_pk": world["project"].pk, "pk": world["comment_import"].pk}
    if kind == "snapshot":
        return {"pk": world["snapshot"].pk}
    if kind == "export":
        return {"pk": world["export"].pk}
    if kind == "export_file":
        return {"pk": world["export"].pk, "path": "SHA256SUMS"}
    if kind == "run":
        return {"pk": world["run"].pk}
    if kind == "flag":
        return {"pk": world["flag"].pk}
    if kind == "decision":
        return {"pk": world["decision"].pk}
    if kind == "decision_batch":
        return {"batch": uuid.UUID(int=12)}
    if kind == "curation_run":
        return {"pk": world["curation_run"].pk}
    if kind == "own_token":
        return {"pk": world["tokens"].get(role, world["tokens"]["planner"]).pk}
    raise AssertionError(kind)


def client_for(role: str, users) -> APIClient:
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(users[role])
    return client


def test_every_api_route_has_a_matrix_row(db):
    routes = api_routes()
    missing = sorted(set(routes) - set(EXPECTED))
    stale = sorted(set(EXPECTED) - set(routes))
    assert not missing, f"API routes without a permission-matrix row: {missing}"
    assert not stale, f"matrix rows for routes that no longer exist: {stale}"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_permission_matrix(name, users, world):
    kind, (safe, safe_expected), (write, write_expected) = EXPECTED[name]
    got, want = {}, {}
    for role in ROLES:
        url = reverse(name, kwargs=url_kwargs(kind, world, role))
        client = client_for(role, users)
        got[(role, safe)] = getattr(client, safe)(url).status_code
        want[(role, safe)] = safe_expected[role]
        got[(role, write)] = getattr(client, write)(url, {}, format="json").status_code
        want[(role, write)] = write_expected[role]
    assert got == want


def test_anonymous_is_asked_for_a_token(db):
    response = APIClient().get("/api/images/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_images_never_reach_a_labeler(users, world):
    """Not by session, not by token, not through filters, search or an import's report."""
    image = world["image"]
    session = APIClient()
    session.force_login(users["labeler"])
    _, key = account_services.create_token(users["labeler"], "phone")
    by_token = APIClient()
    by_token.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    urls = [
        "/api/images/",
        f"/api/images/{image.pk}/",
        "/api/images/?category=food",
        "/api/images/?search=secret",
        f"/api/images/?sha256={image.sha256}",
        f"/api/imports/{world['job'].pk}/items/",
        "/api/quotas/",
    ]
    for client in (session, by_token):
        assert client.get("/api/me/").json()["role"] == "labeler"
        for url in urls:
            response = client.get(url)
            assert response.status_code == 403, url
            body = response.content.decode()
            assert str(image.pk) not in body and "secret-photo" not in body and image.sha256 not in body, url
        assert client.patch(f"/api/images/{image.pk}/", {"category": "people"}, format="json").status_code == 403
    image.refresh_from_db()
    assert image.category.slug == "food"


# A labeler of another project (an active member of project B) asks for project A's things: every
# project endpoint answers 403 (not a member), another labeler's assignment 404, and the project
# list holds only their own project.
OUTSIDER = {
    "api:project-detail": [("get", 403), ("patch", 403), ("delete", 403)],
    "api:project-next": [("post", 403)],
    "api:project-rules": [("get", 403)],
    "api:project-guideline": [("get", 403)],
    "api:project-history": [("get", 403)],
    "api:project-progress": [("get", 403)],
    "api:project-comment-type-list": [("get", 403), ("post", 403)],
    "api:project-member-list": [("get", 403), ("post", 403)],
    "api:project-member-detail": [("get", 403), ("patch", 403), ("delete", 403)],
    "api:project-member-import": [("post", 403)],
    "api:project-guideline-draft": [("get", 403), ("put", 403)],
    "api:project-guideline-publish": [("post", 403)],
    "api:project-guideline-versions": [("get", 403)],
    "api:project-example-list": [("get", 403), ("post", 403)],
    "api:project-example-detail": [("get", 403), ("delete", 403)],
    "api:project-report-list": [("get", 403)],
    "api:project-report-resolve": [("post", 403)],
    "api:project-labeler-quality": [("get", 403)],
    "api:project-labeler-message": [("post", 403)],
    "api:assignment-detail": [("get", 404)],
    "api:assignment-submit": [("post", 404)],
    "api:assignment-skip": [("post", 404)],
    "api:assignment-report": [("post", 404)],
    "api:assignment-blocked": [("post", 404)],
}
OUTSIDER_KINDS = {
    "api:project-detail": "project", "api:project-comment-type-list": "project_child",
    "api:project-member-detail": "member", "api:project-example-detail": "example",
    "api:project-report-resolve": "report", "api:assignment-detail": "assignment",
    "api:assignment-submit": "assignment", "api:assignment-skip": "assignment", "api:assignment-report": "assignment",
    "api:assignment-blocked": "assignment", "api:project-labeler-message": "member",
}


def test_a_labeler_of_another_project_gets_nothing_of_this_one(users, world):
    from labeling import services as labeling
    from labeling.models import Assignment

    other = labeling.create_project("their project")
    outsider = account_services.create_user("outsider", "pw-long-enough-1", "labeler")
    labeling.add_member(other, outsider)
    _, key = account_services.create_token(outsider, "phone")
    for client in (client_for_user(outsider), token_client(key)):
        got, want = {}, {}
        for name, calls in OUTSIDER.items():
            url = reverse(name, kwargs=url_kwargs(OUTSIDER_KINDS.get(name, "project_child"), world, "labeler"))
            for method, expected in calls:
                got[(name, method)] = getattr(client, method)(url, {"comments": {}, "reason": "broken"}, format="json").status_code
                want[(name, method)] = expected
        assert got == want
        listed = client.get(reverse("api:project-list")).json()["results"]
        assert [p["id"] for p in listed] == [other.pk]
    world["assignment"].refresh_from_db()
    assert world["assignment"].status == "leased"
    assert not Assignment.objects.filter(labeler=outsider).exists()


def client_for_user(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client
