"""Issue 8, items 5 and 8: what the rules stop is counted (the labeler page reports the submits it
blocks, POST /api/assignments/{id}/blocked/, and the server counts its own refusals) per labeler
and per rule for the planners' dashboard; a submit from a second tab says the photo was already
submitted and returns what was stored, while a retry with the same Idempotency-Key stays a plain 200.
"""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from labeling import selectors, services
from labeling.models import Assignment, Comment, ProjectMember, RuleHit
from tests.factories import GOOD

from .test_labeling_api import client_of, next_, submit


def blocked(client, assignment_id, rules):
    return client.post(f"/api/assignments/{assignment_id}/blocked/", {"rules": rules}, format="json")


def hits(project, user) -> dict:
    return dict(RuleHit.objects.filter(project=project, member__user=user).values_list("code", "count"))


# --- item 8: a second tab ---------------------------------------------------------------------

def test_a_second_tab_hears_the_photo_was_already_submitted(make_project, labelers):
    project = make_project(3)
    tab1, tab2 = client_of(labelers[0]), client_of(labelers[0])
    a = next_(tab1, project)["assignments"][0]
    assert next_(tab2, project)["assignments"][0]["id"] == a["id"]  # the same lease in both tabs

    first = submit(tab1, a["id"], GOOD, key="tab-1")
    assert first.status_code == 201 and first.json()["already_submitted"] is False

    # The same request again (a retry): 200 as before, nothing to tell.
    retry = submit(tab1, a["id"], GOOD, key="tab-1")
    assert retry.status_code == 200 and retry.json()["already_submitted"] is False

    # The second tab, with other texts: 200, flagged, and the first tab's texts.
    other = {"reaction": "완전 귀엽다 진짜", "specific": "강아지 털이 햇빛에 반짝여서 너무 예뻐 보여요"}
    second = submit(tab2, a["id"], other, key="tab-2")
    assert second.status_code == 200
    body = second.json()
    assert body["already_submitted"] is True
    assert {c["comment_type"]: c["text"] for c in body["comments"]} == GOOD
    assert [c.text for c in Comment.objects.filter(assignment_id=a["id"]).order_by("comment_type__position")] == \
        [GOOD["reaction"], GOOD["specific"]]
    assert body["progress"]["done"] == 1


def test_a_submit_without_a_key_after_a_stored_one_is_flagged(make_project, labelers):
    project = make_project(2)
    alice = client_of(labelers[0])
    a = next_(alice, project)["assignments"][0]
    assert submit(alice, a["id"], GOOD, key="k1").status_code == 201
    assert submit(alice, a["id"], GOOD).json()["already_submitted"] is True


# --- item 5: blocked submits ------------------------------------------------------------------

def test_the_page_reports_blocked_submits_and_the_server_counts_its_own(make_project, labelers):
    project = make_project(3)
    alice = client_of(labelers[0])
    a = next_(alice, project)["assignments"][0]

    response = blocked(alice, a["id"], ["too_short", "phone", "too_short"])
    assert response.status_code == 200 and response.json() == {"counted": True}
    assert blocked(alice, a["id"], ["too_short"]).json() == {"counted": True}
    member = ProjectMember.objects.get(project=project, user=labelers[0])
    assert member.rejection_count == 2
    assert hits(project, labelers[0]) == {"too_short": 2, "phone": 1}

    # A refusal by the server counts the same way (one attempt, each rule once).
    refused = submit(alice, a["id"], {"reaction": "ㅋ", "specific": "ㅋㅋ"})
    assert refused.status_code == 400
    assert ProjectMember.objects.get(pk=member.pk).rejection_count == 3
    assert hits(project, labelers[0]) == {"too_short": 3, "phone": 1, "jamo_or_emoji_only": 1}

    # The dashboard: per labeler and in total, most first, with the rules' names.
    _, rows = selectors.labeler_stats(project)
    row = next(r for r in rows if r["username"] == labelers[0].username)
    assert row["rejection_count"] == 3
    assert [(h["code"], h["count"]) for h in row["rule_hits"]] == [("too_short", 3), ("jamo_or_emoji_only", 1), ("phone", 1)]
    assert [(h["code"], h["count"]) for h in selectors.project_dashboard(project)["rule_hits"]] == \
        [("too_short", 3), ("jamo_or_emoji_only", 1), ("phone", 1)]

    # Once submitted, the photo takes no more reports.
    assert submit(alice, a["id"], GOOD).status_code == 201
    late = blocked(alice, a["id"], ["too_short"])
    assert late.status_code == 409 and late.json()["code"] == "already_submitted"
    assert ProjectMember.objects.get(pk=member.pk).rejection_count == 3


def test_blocked_reports_are_checked_and_bounded(make_project, labelers):
    project = make_project(3)
    alice, bob = client_of(labelers[0]), client_of(labelers[1])
    a = next_(alice, project)["assignments"][0]
    for bad in ([], ["no_such_rule"], ["too_short"] * 40, "too_short", [{"x": 1}]):
        assert blocked(alice, a["id"], bad).status_code == 400, bad
    assert blocked(bob, a["id"], ["too_short"]).status_code == 404  # not his
    assert ProjectMember.objects.get(project=project, user=labelers[0]).rejection_count == 0
    assert not RuleHit.objects.exists()

    for _ in range(services.MAX_BLOCKED_REPORTS_PER_ASSIGNMENT):
        assert blocked(alice, a["id"], ["url"]).json()["counted"] is True
    assert blocked(alice, a["id"], ["url"]).json()["counted"] is False
    assert hits(project, labelers[0]) == {"url": services.MAX_BLOCKED_REPORTS_PER_ASSIGNMENT}
    assert Assignment.objects.get(pk=a["id"]).blocked_count == services.MAX_BLOCKED_REPORTS_PER_ASSIGNMENT

    # A removed labeler is refused like everywhere else in the flow.
    services.deactivate_member(project, labelers[0])
    assert blocked(alice, a["id"], ["url"]).status_code in (403, 404)


def test_record_blocked_submit_refuses_bad_codes(make_project, labelers):
    project = make_project(2)
    a = services.next_assignment(project, labelers[0])
    with pytest.raises(ValidationError):
        services.record_blocked_submit(a, labelers[0], ["nope"])
    with pytest.raises(ValidationError):
        services.record_blocked_submit(a, labelers[0], [])
    assert services.record_blocked_submit(a, labelers[0], ["own_repeat"]) is True
    services.skip(a, labelers[0])
    with pytest.raises(services.AssignmentClosed):
        services.record_blocked_submit(a, labelers[0], ["own_repeat"])
    assert hits(project, labelers[0]) == {"own_repeat": 1}


def test_the_dashboard_names_the_column_and_breaks_it_down(make_project, labelers, users, client):
    project = make_project(2)
    a = services.next_assignment(project, labelers[0])
    services.record_blocked_submit(a, labelers[0], ["too_short", "url"])
    client.force_login(users["planner"])
    html = client.get(f"/projects/{project.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Submits stopped by rules" in html and "Rule rejections" not in html
    assert 'data-rule="too_short">Too short <span class="num">1</span>' in html
    assert 'id="rule-totals"' in html


def test_rule_hits_are_read_only_in_the_admin(make_project, labelers, users, client):
    project = make_project(2)
    a = services.next_assignment(project, labelers[0])
    services.record_blocked_submit(a, labelers[0], ["email"])
    client.force_login(users["admin"])
    listing = client.get("/admin/labeling/rulehit/", HTTP_ACCEPT_LANGUAGE="en")
    assert listing.status_code == 200 and "email" in listing.content.decode()
    assert client.get("/admin/labeling/rulehit/add/").status_code == 403
