"""The labeling API as a labeler's client (the labeler page, a mobile app) and a planner use it:
next / submit / skip / report, the rules, guidelines and examples, members, reports, progress.

Runs on SQLite by default and on PostgreSQL with DATABASE_URL=postgres://...
"""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as accounts
from accounts.models import User
from datasets.models import Category
from labeling import services
from labeling.models import Assignment, AssignmentStatus, Comment, CommentType, Project, ProjectImage, ProjectMember
from tests.factories import GOOD, fake_images, texts


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def token_client(user) -> APIClient:
    """A custom client (a mobile app): no session, an API token in the Authorization header."""
    _, key = accounts.create_token(user, "phone")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def planner(users):
    return client_of(users["planner"])


def next_(client, project, count=1):
    response = client.post(f"/api/projects/{project.pk}/next/", {"count": count}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def submit(client, assignment_id, comments, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return client.post(f"/api/assignments/{assignment_id}/submit/", {"comments": comments}, format="json", **headers)


# ---------------------------------------------------------------- next and submit


def test_a_mobile_client_labels_with_a_token(make_project, labelers):
    project = make_project(5, cap=4)
    app = token_client(labelers[0])

    first = next_(app, project, count=2)
    assert first["state"] == "ok" and first["detail"] == ""
    assert first["progress"] == {"done": 0, "cap": 4}
    current, ahead = first["assignments"]
    image = current["image"]
    assert set(image) == {"id", "url", "thumbnail_url", "width", "height"}
    assert image["url"].startswith("http://testserver/") and image["thumbnail_url"].startswith("http://testserver/")
    assert current["image"]["id"] != ahead["image"]["id"]
    assert current["status"] == "leased" and current["expires_at"] > current["leased_at"]

    # Asking again gives the same leases (the current photo first), not new ones.
    again = next_(app, project, count=2)
    assert [a["id"] for a in again["assignments"]] == [current["id"], ahead["id"]]
    assert Assignment.objects.filter(labeler=labelers[0]).count() == 2

    # Submit with an Idempotency-Key: 201, then a retried request answers 200 with the stored set.
    stored = submit(app, current["id"], GOOD, key="tap-1")
    assert stored.status_code == 201, stored.content
    body = stored.json()
    assert body["assignment"]["status"] == "submitted"
    assert [(c["comment_type"], c["text"], c["length"]) for c in body["comments"]] == [
        ("reaction", GOOD["reaction"], 7), ("specific", GOOD["specific"], 17)
    ]
    assert body["progress"] == {"done": 1, "cap": 4}
    retry = submit(app, current["id"], GOOD, key="tap-1")
    assert retry.status_code == 200
    assert retry.json()["comments"] == body["comments"] and retry.json()["progress"] == {"done": 1, "cap": 4}
    assert Comment.objects.filter(assignment_id=current["id"]).count() == 2

    # A double submit without a key stores one set too.
    first_click = submit(app, ahead["id"], texts(1))
    second_click = submit(app, ahead["id"], texts(1))
    assert (first_click.status_code, second_click.status_code) == (201, 200)
    assert Comment.objects.filter(assignment_id=ahead["id"]).count() == 2
    member = ProjectMember.objects.get(project=project, user=labelers[0])
    assert member.submitted_count == 2
    assert ProjectImage.objects.get(project=project, image_id=ahead["image"]["id"]).submitted_count == 1

    # The history shows both sets, newest first.
    history = app.get(f"/api/projects/{project.pk}/history/").json()
    assert history["count"] == 2
    assert [h["assignment_id"] for h in history["results"]] == [ahead["id"], current["id"]]
    assert history["results"][1]["comments"][0]["text"] == GOOD["reaction"]


def test_cap_reached_and_no_work_are_states(make_project, labelers):
    project = make_project(2, overlap=1, cap=1)
    alice, bob, carol = (client_of(u) for u in labelers[:3])
    a = next_(alice, project)["assignments"][0]
    assert submit(alice, a["id"], texts(0)).status_code == 201
    capped = next_(alice, project)
    assert capped["state"] == "cap_reached" and capped["assignments"] == [] and capped["detail"]
    assert capped["progress"] == {"done": 1, "cap": 1}

    b = next_(bob, project)["assignments"][0]
    assert b["image"]["id"] != a["image"]["id"]
    empty = next_(carol, project)
    assert empty["state"] == "no_work" and empty["assignments"] == [] and empty["detail"]
    assert empty["progress"] == {"done": 0, "cap": 1}

    # A closed project: 409 project_inactive.
    Project.objects.filter(pk=project.pk).update(is_active=False)
    closed = bob.post(f"/api/projects/{project.pk}/next/", {}, format="json")
    assert closed.status_code == 409 and closed.json()["code"] == "project_inactive"


def test_rules_refuse_with_codes_per_comment_type(make_project, labelers, planner, source, users):
    project = make_project(3)
    # A guideline example: its texts may not be copied.
    example_image = fake_images(source, 1, start=900)[0]
    r = planner.post(f"/api/projects/{project.pk}/examples/", {
        "image": str(example_image.pk), "note": "a good reaction",
        "comments": [{"comment_type": "reaction", "text": "와.. 족발 폼 미쳤다!", "verdict": "good", "why": "natural"}],
    }, format="json")
    assert r.status_code == 201, r.content
    assert planner.post(f"/api/projects/{project.pk}/guideline/publish/", {"body": "# 가이드"}, format="json").status_code == 201

    alice = client_of(labelers[0])
    a = next_(alice, project)["assignments"][0]
    cases = [
        ({"reaction": "좋아", "specific": GOOD["specific"]}, {"reaction": ["too_short"]}),
        ({"reaction": "ㅋㅋㅋㅋ", "specific": "ㅠㅠㅠㅠㅠ 😂😂😂😂😂 ㅠㅠㅠㅠㅠ"},
         {"reaction": ["jamo_or_emoji_only"], "specific": ["jamo_or_emoji_only"]}),
        ({"reaction": "와.. 족발 폼 미쳤다!", "specific": GOOD["specific"]}, {"reaction": ["copied_example"]}),
        ({"reaction": GOOD["reaction"]}, {"specific": ["required"]}),
    ]
    for comments, codes in cases:
        response = submit(alice, a["id"], comments)
        assert response.status_code == 400, response.content
        body = response.json()
        assert body["code"] == "rules"
        assert {slug: [e["code"] for e in errs] for slug, errs in body["errors"].items()} == codes
        assert all(e["message"] for errs in body["errors"].values() for e in errs)
    assert not Comment.objects.exists()
    assert Assignment.objects.get(pk=a["id"]).status == AssignmentStatus.LEASED
    assert ProjectMember.objects.get(project=project, user=labelers[0]).rejection_count == len(cases)

    # The body must carry a comments object.
    assert submit(alice, a["id"], None).status_code == 400
    # What the page mirrors: lengths, switches, example texts and messages.
    rules = alice.get(f"/api/projects/{project.pk}/rules/").json()
    assert [(t["slug"], t["min_length"]) for t in rules["comment_types"]] == [("reaction", 3), ("specific", 10)]
    assert rules["rules"]["reject_jamo_or_emoji_only"] is True and rules["rules"]["count_whitespace"] is False
    assert rules["example_texts"] == ["와.. 족발 폼 미쳤다!"]
    assert {"too_short", "jamo_or_emoji_only", "copied_example", "own_repeat", "url", "email", "phone"} <= set(rules["messages"])
    assert rules["guideline_version"] == 1


def test_skip_and_report(make_project, labelers, planner):
    project = make_project(2, overlap=1)
    alice, bob = client_of(labelers[0]), client_of(labelers[1])
    a = next_(alice, project)["assignments"][0]
    skipped = alice.post(f"/api/assignments/{a['id']}/skip/")
    assert skipped.status_code == 200 and skipped.json()["assignment"]["status"] == "skipped"
    assert skipped.json()["progress"] == {"done": 0, "cap": 300}
    assert alice.post(f"/api/assignments/{a['id']}/skip/").status_code == 200  # a repeated click
    closed = submit(alice, a["id"], GOOD)
    assert closed.status_code == 409 and closed.json()["code"] == "closed"

    b = next_(alice, project)["assignments"][0]
    assert b["image"]["id"] != a["image"]["id"]
    bad = alice.post(f"/api/assignments/{b['id']}/report/", {"reason": "boring"}, format="json")
    assert bad.status_code == 400 and "reason" in bad.json()
    reported = alice.post(f"/api/assignments/{b['id']}/report/",
                          {"reason": "personal_info", "note": "a phone number on a sign"}, format="json")
    assert reported.status_code == 200 and reported.json()["assignment"]["status"] == "reported"
    assert next_(alice, project)["state"] == "no_work"

    # Planners see the open report and exclude the photo: nobody gets it again.
    open_reports = planner.get(f"/api/projects/{project.pk}/reports/?resolved=false").json()
    assert [(r["assignment_id"], r["reason"], r["note"], r["labeler"]) for r in open_reports["results"]] == [
        (b["id"], "personal_info", "a phone number on a sign", "lab0")
    ]
    assert planner.post(f"/api/projects/{project.pk}/reports/{b['id']}/resolve/", {"resolution": "maybe"},
                        format="json").status_code == 400
    resolved = planner.post(f"/api/projects/{project.pk}/reports/{b['id']}/resolve/", {"resolution": "excluded"},
                            format="json")
    assert resolved.status_code == 200 and resolved.json()["resolution"] == "excluded"
    assert planner.get(f"/api/projects/{project.pk}/reports/?resolved=false").json()["count"] == 0
    assert planner.get(f"/api/projects/{project.pk}/reports/?resolved=true").json()["count"] == 1
    # Bob gets the skipped photo, never the excluded one.
    got = next_(bob, project, count=2)["assignments"]
    assert [x["image"]["id"] for x in got] == [a["image"]["id"]]
    # Resolving something that is not a report is refused.
    not_a_report = planner.post(f"/api/projects/{project.pk}/reports/{got[0]['id']}/resolve/",
                                {"resolution": "kept"}, format="json")
    assert not_a_report.status_code == 409


def test_lease_expiry_gives_the_photo_to_someone_else(make_project, labelers):
    project = make_project(1, overlap=1)
    alice, bob = client_of(labelers[0]), client_of(labelers[1])
    a = next_(alice, project)["assignments"][0]
    assert next_(bob, project)["state"] == "no_work"
    Assignment.objects.filter(pk=a["id"]).update(expires_at=timezone.now() - timedelta(seconds=1))
    b = next_(bob, project)["assignments"][0]
    assert b["image"]["id"] == a["image"]["id"]
    late = submit(alice, a["id"], GOOD)
    assert late.status_code == 409 and late.json()["code"] == "lease_lost" and late.json()["detail"]
    assert submit(bob, b["id"], GOOD).status_code == 201


def test_one_labeler_cannot_touch_anothers_assignment(make_project, labelers, users):
    project = make_project(2)
    alice, bob = client_of(labelers[0]), client_of(labelers[1])
    a = next_(alice, project)["assignments"][0]
    assert alice.get(f"/api/assignments/{a['id']}/").status_code == 200
    for response in (
        bob.get(f"/api/assignments/{a['id']}/"),
        submit(bob, a["id"], GOOD),
        bob.post(f"/api/assignments/{a['id']}/skip/"),
        bob.post(f"/api/assignments/{a['id']}/report/", {"reason": "broken"}, format="json"),
        bob.get("/api/assignments/999999/"),
    ):
        assert response.status_code == 404
    assert Assignment.objects.get(pk=a["id"]).status == AssignmentStatus.LEASED
    # Planners read any assignment.
    assert client_of(users["planner"]).get(f"/api/assignments/{a['id']}/").status_code == 200


def test_a_labeler_of_another_project_is_refused(make_project, labelers):
    ours = make_project(2, members=labelers[:1])
    theirs = make_project(2, members=labelers[1:2])
    services.publish_guideline(ours, "# 가이드")
    outsider = client_of(labelers[1])
    for response in (
        outsider.post(f"/api/projects/{ours.pk}/next/", {}, format="json"),
        outsider.get(f"/api/projects/{ours.pk}/rules/"),
        outsider.get(f"/api/projects/{ours.pk}/guideline/"),
        outsider.get(f"/api/projects/{ours.pk}/history/"),
        outsider.get(f"/api/projects/{ours.pk}/"),
    ):
        assert response.status_code == 403, response.request
    for url in (f"/api/projects/{ours.pk}/rules/", f"/api/projects/{ours.pk}/history/"):
        assert outsider.get(url).json()["code"] == "not_member"
    assert outsider.post(f"/api/projects/{ours.pk}/next/", {}, format="json").json()["code"] == "not_member"
    assert [p["id"] for p in outsider.get("/api/projects/").json()["results"]] == [theirs.pk]
    assert outsider.post("/api/projects/999999/next/", {}, format="json").status_code == 404


def test_a_submit_racing_another_answers_200_with_the_stored_set(make_project, labelers, monkeypatch):
    """Two requests for one assignment at once: both read it as leased, one stores the set. The
    other gets the stored set back from services.submit and must answer 200, showing it submitted."""
    from labeling.api import labeler as labeling_api

    project = make_project(1)
    alice = client_of(labelers[0])
    a = next_(alice, project)["assignments"][0]
    stale = Assignment.objects.select_related("image").get(pk=a["id"])
    assert submit(alice, a["id"], GOOD).status_code == 201
    monkeypatch.setattr(labeling_api, "_own_assignment", lambda request, pk: stale)
    late = submit(alice, a["id"], GOOD)
    assert late.status_code == 200
    assert late.json()["assignment"]["status"] == "submitted"
    assert [c["comment_type"] for c in late.json()["comments"]] == ["reaction", "specific"]
    assert Comment.objects.filter(assignment_id=a["id"]).count() == 2


def test_the_schema_describes_the_labeling_api(planner):
    paths = planner.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()["paths"]
    for path in ("/api/projects/", "/api/projects/{project_pk}/next/", "/api/assignments/{id}/submit/",
                 "/api/projects/{project_pk}/rules/", "/api/projects/{project_pk}/progress/",
                 "/api/projects/{project_pk}/members/import/", "/api/projects/{project_pk}/guideline/publish/"):
        assert path in paths, path
    submit_op = paths["/api/assignments/{id}/submit/"]["post"]
    assert {"200", "201", "400", "404", "409"} <= set(submit_op["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in submit_op["parameters"])


def test_query_counts_of_next_and_submit_do_not_grow(make_project, labelers, django_assert_max_num_queries):
    project = make_project(8)
    alice = client_of(labelers[0])
    next_(alice, project)  # the first call may refresh priorities
    with django_assert_max_num_queries(30):
        got = next_(alice, project, count=5)["assignments"]
    assert len(got) == 5
    with django_assert_max_num_queries(25):
        assert submit(alice, got[0]["id"], GOOD, key="k").status_code == 201
    with django_assert_max_num_queries(15):
        assert submit(alice, got[0]["id"], GOOD, key="k").status_code == 200


# ---------------------------------------------------------------- projects and comment types


def test_planner_creates_and_edits_a_project(users, source, labelers):
    food = Category.objects.get(slug="food")
    people = Category.objects.get(slug="people")
    fake_images(source, 3, category=food, start=0)
    fake_images(source, 2, category=people, start=10)
    planner, engineer, labeler = client_of(users["planner"]), client_of(users["engineer"]), client_of(labelers[0])

    assert planner.post("/api/projects/", {}, format="json").status_code == 400
    bad = planner.post("/api/projects/", {"name": "x", "overlap": 0, "categories": ["nope"]}, format="json")
    assert bad.status_code == 400 and {"overlap", "categories"} <= set(bad.json())
    # At most 20 labelers per photo (the settings page's limit; a huge overlap once exhausted memory).
    bad = planner.post("/api/projects/", {"name": "x", "overlap": 2**31, "categories": ["food"]}, format="json")
    assert bad.status_code == 400 and "overlap" in bad.json()
    created = planner.post("/api/projects/", {
        "name": "Food comments", "categories": ["food"], "overlap": 3, "cap_per_labeler": 50,
        "comment_types": [{"slug": "short", "name": "짧게", "min_length": 2, "max_length": 50},
                          {"slug": "long", "name": "길게", "min_length": 12, "max_length": 200}],
    }, format="json")
    assert created.status_code == 201, created.content
    body = created.json()
    pk = body["id"]
    assert body["categories"] == ["food"] and body["overlap"] == 3 and body["created_by"] == "planner1"
    assert [(t["slug"], t["min_length"], t["position"]) for t in body["comment_types"]] == [("short", 2, 0), ("long", 12, 1)]
    assert ProjectImage.objects.filter(project_id=pk).count() == 3  # the queue follows the filters

    # Default comment types when none are given; duplicate names are refused.
    default = planner.post("/api/projects/", {"name": "Defaults"}, format="json").json()
    assert [t["slug"] for t in default["comment_types"]] == ["reaction", "specific"]
    assert planner.post("/api/projects/", {"name": "Defaults"}, format="json").status_code == 400

    # Widening the filters re-syncs the queue; comment types are not edited through the project.
    patched = planner.patch(f"/api/projects/{pk}/", {"categories": ["food", "people"], "lease_minutes": 10}, format="json")
    assert patched.status_code == 200 and patched.json()["lease_minutes"] == 10
    assert ProjectImage.objects.filter(project_id=pk).count() == 5
    assert planner.patch(f"/api/projects/{pk}/", {"comment_types": []}, format="json").status_code == 400
    assert planner.patch(f"/api/projects/{pk}/", {"cap_per_labeler": -1}, format="json").status_code == 400

    # Engineers read, do not write; labelers see only their projects, with their progress.
    assert engineer.get(f"/api/projects/{pk}/").status_code == 200
    assert engineer.patch(f"/api/projects/{pk}/", {"name": "y"}, format="json").status_code == 403
    assert labeler.get("/api/projects/").json()["results"] == []
    assert labeler.get(f"/api/projects/{pk}/").status_code == 403
    services.add_member(Project.objects.get(pk=pk), labelers[0], cap_override=7)
    mine = labeler.get("/api/projects/").json()["results"]
    assert [(p["id"], p["my_progress"]) for p in mine] == [(pk, {"done": 0, "cap": 7})]
    assert labeler.get(f"/api/projects/{pk}/").status_code == 200
    assert labeler.patch(f"/api/projects/{pk}/", {"name": "mine"}, format="json").status_code == 403
    assert planner.get(f"/api/projects/{pk}/").json()["my_progress"] is None

    # A project with comments cannot be deleted (close it instead); an empty one can.
    project = Project.objects.get(pk=pk)
    a = services.next_assignment(project, labelers[0])
    services.submit(a, labelers[0], {"short": "맛있겠다", "long": "바삭한 튀김이 정말 맛있어 보여요"})
    refused = planner.delete(f"/api/projects/{pk}/")
    assert refused.status_code == 409 and Project.objects.filter(pk=pk).exists()
    assert planner.delete(f"/api/projects/{default['id']}/").status_code == 204


def test_comment_types_crud(make_project, labelers, planner, api):
    project = make_project(1)
    url = f"/api/projects/{project.pk}/comment-types/"
    assert [t["slug"] for t in planner.get(url).json()] == ["reaction", "specific"]
    created = planner.post(url, {"slug": "question", "name": "질문", "min_length": 5, "max_length": 80}, format="json")
    assert created.status_code == 201 and created.json()["position"] == 2
    ct = created.json()["id"]
    assert planner.post(url, {"slug": "question", "name": "again"}, format="json").status_code == 400
    assert planner.post(url, {"slug": "odd", "name": "odd", "min_length": 9, "max_length": 3}, format="json").status_code == 400
    assert planner.patch(f"{url}{ct}/", {"min_length": 100}, format="json").status_code == 400  # above max 80
    assert planner.patch(f"{url}{ct}/", {"min_length": 6}, format="json").json()["min_length"] == 6
    assert api("engineer").get(url).status_code == 200
    assert api("engineer").post(url, {"slug": "e", "name": "e"}, format="json").status_code == 403
    assert client_of(labelers[0]).get(url).status_code == 403
    assert planner.delete(f"{url}{ct}/").status_code == 204

    # A type with comments cannot be deleted.
    a = services.next_assignment(project, labelers[0])
    services.submit(a, labelers[0], GOOD)
    reaction = project.comment_types.get(slug="reaction")
    refused = planner.delete(f"{url}{reaction.pk}/")
    assert refused.status_code == 409 and refused.json()["code"] == "in_use"
    # PUT/PATCH go through services.update_comment_type: the model's checks, as field errors.
    assert planner.patch(f"{url}{reaction.pk}/", {"max_length": 50}, format="json").status_code == 200
    assert CommentType.objects.get(pk=reaction.pk).max_length == 50


# ---------------------------------------------------------------- members


def test_members_add_cap_and_deactivate_returns_leases(make_project, labelers, planner, users):
    project = make_project(1, overlap=1, members=labelers[:1])
    url = f"/api/projects/{project.pk}/members/"
    added = planner.post(url, {"username": "lab1", "cap_override": 2}, format="json")
    assert added.status_code == 201 and (added.json()["cap"], added.json()["cap_override"]) == (2, 2)
    assert planner.post(url, {"user": labelers[2].pk}, format="json").status_code == 201
    assert planner.post(url, {"username": "planner1"}, format="json").status_code == 400  # not a labeler
    assert planner.post(url, {"username": "ghost"}, format="json").status_code == 400
    assert planner.post(url, {}, format="json").status_code == 400
    listed = planner.get(url).json()
    assert [m["username"] for m in listed["results"]] == ["lab0", "lab1", "lab2"]

    patched = planner.patch(f"{url}{labelers[1].pk}/", {"cap_override": None}, format="json")
    assert patched.status_code == 200 and patched.json()["cap"] == 300
    assert planner.patch(f"{url}{labelers[1].pk}/", {"cap_override": -3}, format="json").status_code == 400
    assert planner.patch(f"{url}{users['engineer'].pk}/", {"cap_override": 3}, format="json").status_code == 404

    alice, bob = client_of(labelers[0]), client_of(labelers[1])
    a = next_(alice, project)["assignments"][0]
    assert next_(bob, project)["state"] == "no_work"
    removed = planner.delete(f"{url}{labelers[0].pk}/")
    assert removed.status_code == 200 and removed.json() == {"returned_leases": 1}
    assert Assignment.objects.get(pk=a["id"]).status == AssignmentStatus.RETURNED
    assert alice.post(f"/api/projects/{project.pk}/next/", {}, format="json").status_code == 403
    assert submit(alice, a["id"], GOOD).status_code == 403
    assert next_(bob, project)["assignments"][0]["image"]["id"] == a["image"]["id"]
    assert planner.get(f"{url}?is_active=false").json()["results"][0]["username"] == "lab0"


def test_csv_import_all_or_nothing(make_project, planner, users, settings):
    settings.LANGUAGE_CODE = "en"  # the line errors are asserted in English
    project = make_project(1, members=[])
    url = f"/api/projects/{project.pk}/members/import/"

    def upload(text):
        return planner.post(url, {"file": SimpleUploadedFile("labelers.csv", text.encode())}, format="multipart")

    bad = upload("username,password,cap\nnew1,long-password-1,5\n,x,1\nnew2,short,\nplanner1,,\nnew3,long-password-3,many\n")
    assert bad.status_code == 400
    errors = bad.json()["file"]
    assert [e.split(":")[0] for e in errors] == ["Line 3", "Line 4", "Line 5", "Line 6"]
    assert not User.objects.filter(username__startswith="new").exists()
    assert not ProjectMember.objects.filter(project=project).exists()
    assert upload("name\nx\n").status_code == 400
    assert planner.post(url, {}, format="multipart").status_code == 400

    good = upload("username,password,name,cap\nnew1,long-password-1,김민수,5\nlab0,,,\n")
    assert good.status_code == 200 and good.json() == {"created": 1, "added": 2, "rows": 2}
    caps = dict(ProjectMember.objects.filter(project=project).values_list("user__username", "cap_override"))
    assert caps == {"new1": 5, "lab0": None}
    assert client_of(users["engineer"]).post(url, {}, format="multipart").status_code == 403


# ---------------------------------------------------------------- guidelines and examples


def test_guideline_versions_and_comments_keep_theirs(make_project, labelers, planner, source, users):
    project = make_project(4, members=labelers[:1])
    alice = client_of(labelers[0])
    base = f"/api/projects/{project.pk}/guideline/"
    assert alice.get(base).status_code == 404  # none published yet
    assert planner.post(f"{base}publish/", {}, format="json").status_code == 400  # empty draft

    saved = planner.put(f"{base}draft/", {"body": "# 규칙\n\n자연스럽게 <script>alert(1)</script>"}, format="json")
    assert saved.status_code == 200 and "<h1>" in saved.json()["html"] and "<script>" not in saved.json()["html"]
    assert planner.get(f"{base}draft/").json()["body"].startswith("# 규칙")
    assert alice.get(f"{base}draft/").status_code == 403

    example_image = fake_images(source, 1, start=950)[0]
    planner.post(f"/api/projects/{project.pk}/examples/", {
        "image": str(example_image.pk),
        "comments": [{"comment_type": "specific", "text": "접시 위 족발이 윤기가 흘러요", "verdict": "good", "why": "구체적"}],
    }, format="json")
    v1 = planner.post(f"{base}publish/", {}, format="json")
    assert v1.status_code == 201 and v1.json()["version"] == 1 and v1.json()["published_by"] == "planner1"
    current = alice.get(base).json()
    assert current["version"] == 1 and "<h1>" in current["html"] and "<script>" not in current["html"]
    assert current["examples"][0]["comments"][0]["verdict"] == "good"
    assert current["examples"][0]["image_url"]

    a = next_(alice, project)["assignments"][0]
    assert submit(alice, a["id"], texts(1)).status_code == 201
    v2 = planner.post(f"{base}publish/", {"body": "# 규칙 v2"}, format="json")
    assert v2.json()["version"] == 2
    b = next_(alice, project)["assignments"][0]
    assert submit(alice, b["id"], texts(2)).status_code == 201
    versions = {h["assignment_id"]: {c["guideline_version"] for c in h["comments"]}
                for h in alice.get(f"/api/projects/{project.pk}/history/").json()["results"]}
    assert versions == {a["id"]: {1}, b["id"]: {2}}
    assert set(Comment.objects.filter(assignment_id=a["id"]).values_list("guideline_version", flat=True)) == {1}
    listed = planner.get(f"{base}versions/").json()
    assert [v["version"] for v in listed["results"]] == [2, 1]
    assert client_of(users["engineer"]).get(f"{base}versions/").status_code == 200
    assert client_of(users["engineer"]).post(f"{base}publish/", {}, format="json").status_code == 403


def test_examples_crud(make_project, planner, source, labelers):
    project = make_project(1)
    url = f"/api/projects/{project.pk}/examples/"
    one, two = fake_images(source, 2, start=960)
    bad = planner.post(url, {"image": str(one.pk), "comments": [
        {"comment_type": "nope", "text": "x", "verdict": "good"}, {"text": "y", "verdict": "meh"}]}, format="json")
    assert bad.status_code == 400
    created = planner.post(url, {"image": str(one.pk), "note": "좋은 예와 나쁜 예", "comments": [
        {"comment_type": "reaction", "text": "와 대박", "verdict": "good", "why": "자연스러움"},
        {"comment_type": None, "text": "테이블 위에 음식이 있습니다", "verdict": "bad", "why": "캡션 같음"},
    ]}, format="json")
    assert created.status_code == 201, created.content
    ex = created.json()
    assert ex["position"] == 0 and ex["image_url"].startswith("http://testserver/")
    assert [(c["comment_type"], c["verdict"]) for c in ex["comments"]] == [("reaction", "good"), (None, "bad")]
    assert planner.post(url, {"image": str(one.pk)}, format="json").status_code == 400  # already an example
    second = planner.post(url, {"image": str(two.pk)}, format="json").json()
    assert second["position"] == 1

    patched = planner.patch(f"{url}{ex['id']}/", {"note": "고친 설명", "position": 5}, format="json")
    assert patched.status_code == 200
    assert patched.json()["note"] == "고친 설명" and len(patched.json()["comments"]) == 2  # comments kept
    replaced = planner.put(f"{url}{ex['id']}/", {"image": str(one.pk), "comments": [
        {"comment_type": "specific", "text": "빨간 소스가 먹음직스러워요", "verdict": "good"}]}, format="json")
    assert [c["text"] for c in replaced.json()["comments"]] == ["빨간 소스가 먹음직스러워요"]
    assert [e["id"] for e in planner.get(url).json()] == [second["id"], ex["id"]]
    taken = planner.patch(f"{url}{second['id']}/", {"image": str(one.pk)}, format="json")
    assert taken.status_code == 400 and "image" in taken.json()
    assert client_of(labelers[0]).get(url).status_code == 403
    assert planner.delete(f"{url}{second['id']}/").status_code == 204
    assert [e["id"] for e in planner.get(url).json()] == [ex["id"]]


# ---------------------------------------------------------------- progress


def test_progress_per_category_and_labeler(make_project, labelers, planner, users):
    food = Category.objects.get(slug="food")
    project = make_project(3, overlap=2, image_fields={"category": food})
    for n, user in enumerate(labelers[:3]):
        client = client_of(user)
        a = next_(client, project)["assignments"][0]
        assert submit(client, a["id"], texts(n)).status_code == 201
    client_of(labelers[3]).post(f"/api/projects/{project.pk}/next/", {}, format="json")  # a lease, no submission
    data = planner.get(f"/api/projects/{project.pk}/progress/").json()
    assert data["categories"] == [{"category": {"id": food.pk, "slug": "food", "name": food.name},
                                   "counts": [1, 1, 1], "total": 3}]
    assert data["totals"]["photos"] == 3 and data["totals"]["sets"] == 3 and data["totals"]["done"] == 1
    labeler_rows = data["labelers"]
    assert labeler_rows["count"] == 4
    by_name = {r["username"]: r for r in labeler_rows["results"]}
    assert by_name["lab0"]["submitted_count"] == 1 and by_name["lab3"]["submitted_count"] == 0
    assert by_name["lab0"]["median_length"]["reaction"] == 5  # "와 멋지다 0": spaces not counted
    assert by_name["lab3"]["median_length"] == {"reaction": None, "specific": None}
    page = planner.get(f"/api/projects/{project.pk}/progress/?page_size=3&order=username").json()["labelers"]
    assert [r["username"] for r in page["results"]] == ["lab0", "lab1", "lab2"] and page["next"]
    page2 = planner.get(page["next"]).json()["labelers"]
    assert [r["username"] for r in page2["results"]] == ["lab3"] and page2["next"] is None and page2["previous"]
    assert planner.get(f"/api/projects/{project.pk}/progress/?page=x").status_code == 400
    assert client_of(users["engineer"]).get(f"/api/projects/{project.pk}/progress/").status_code == 200
    assert client_of(labelers[0]).get(f"/api/projects/{project.pk}/progress/").status_code == 403
