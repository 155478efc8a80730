"""Personal information at submit (the labeler's refusal, with the kind named) and in comments
already stored (curation.pii's step writing PII flags with masked evidence)."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation import pii, runs
from curation.models import Flag, FlagKind
from labeling import services
from labeling.models import Comment, ProjectMember, RuleHit
from tests.factories import GOOD


def client_of(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def lease(client, project) -> dict:
    response = client.post(f"/api/projects/{project.pk}/next/", {"count": 1}, format="json")
    assert response.status_code == 200, response.content
    return response.json()["assignments"][0]


def submit(client, assignment_id, comments, language="ko"):
    return client.post(f"/api/assignments/{assignment_id}/submit/", {"comments": comments}, format="json",
                       HTTP_ACCEPT_LANGUAGE=language)


def test_a_comment_with_personal_information_is_refused_and_names_the_kind(make_project, labelers):
    project = make_project(3)
    alice = client_of(labelers[0])
    a = lease(alice, project)

    refused = submit(alice, a["id"], {"reaction": GOOD["reaction"], "specific": "제 주민번호 900101-1234568 이에요 ㅎㅎ"},
                     language="en")
    assert refused.status_code == 400, refused.content
    [error] = refused.json()["errors"]["specific"]
    assert error["code"] == "personal_info"
    assert "resident registration number" in error["message"]
    assert "900101" not in refused.content.decode()  # the refusal does not echo the number
    assert not Comment.objects.exists()
    assert RuleHit.objects.get(member__user=labelers[0], code="personal_info").count == 1

    # A phone number keeps its own rule and message; the same set without it is stored.
    phone = submit(alice, a["id"], {"reaction": "연락 공일공-일이삼사-오육칠팔", "specific": GOOD["specific"]})
    assert [e["code"] for e in phone.json()["errors"]["reaction"]] == ["phone"]
    assert submit(alice, a["id"], GOOD).status_code == 201
    assert ProjectMember.objects.get(project=project, user=labelers[0]).rejection_count == 2


def test_the_planner_can_switch_the_rule_off_and_the_page_gets_the_patterns(make_project, labelers):
    project = make_project(3, reject_personal_info=False)
    alice = client_of(labelers[0])
    rules = alice.get(f"/api/projects/{project.pk}/rules/").json()
    assert rules["rules"]["reject_personal_info"] is False
    assert [r["regex"] for r in rules["pii"]["recognizers"]] == [r.regex for r in pii.RECOGNIZERS]
    assert "personal_info" in rules["messages"]
    a = lease(alice, project)
    ok = submit(alice, a["id"], {"reaction": GOOD["reaction"], "specific": "여권 M123A4567 잃어버렸어요 ㅠㅠ"})
    assert ok.status_code == 201, ok.content


def test_blocked_submits_count_the_personal_information_rule(make_project, labelers):
    project = make_project(3)
    alice = client_of(labelers[0])
    a = lease(alice, project)
    response = alice.post(f"/api/assignments/{a['id']}/blocked/", {"rules": ["personal_info"]}, format="json")
    assert response.status_code == 200, response.content
    assert RuleHit.objects.get(member__user=labelers[0], code="personal_info").count == 1


def test_the_step_flags_stored_comments_with_masked_evidence_once(make_project, labelers):
    # Comments stored before the rule existed (or with it off): the step finds them.
    project = make_project(3, reject_personal_info=False, reject_phone_numbers=False, reject_emails=False)
    texts = [
        {"reaction": "와 맛있겠다 진짜", "specific": "연락 010-9876-5432 주세요 사장님 친절해요"},
        {"reaction": "분위기 좋다 ㅎㅎ", "specific": "카드 4111-1111-1111-1111 로 결제했는데 또 갈래요"},
        {"reaction": "색감 미쳤다!", "specific": "2024년 5월에 12,000원 주고 먹었어요 3시 30분쯤"},
    ]
    for user, comments in zip(labelers, texts):
        services.submit(services.next_assignment(project, user), user, comments)

    [step] = pii.STEPS
    assert step.subject == "comments" and step.unavailable(None) is None
    run = runs.start_run(project, ["pii"], enqueue=False)
    ids = step.plan(run)
    assert len(ids) == 6
    counts = step.process(run, ids)
    assert counts == {"comments": 6, "flags_new": 2, "flags_updated": 0}

    flags = {f.comment.text: f for f in Flag.objects.filter(kind=FlagKind.PII).select_related("comment")}
    assert set(flags) == {texts[0]["specific"], texts[1]["specific"]}
    phone = flags[texts[0]["specific"]]
    assert phone.detector == "pii" and phone.score == 1.0
    assert phone.evidence["kinds"] == ["phone"]
    assert phone.evidence["findings"][0]["masked"] == "01*-****-****"
    assert "9876" not in str(phone.evidence) and "4111-1111" not in str(flags[texts[1]["specific"]].evidence)
    assert flags[texts[1]["specific"]].evidence["masked_text"].startswith("카드 41**-****-****-****")

    # Idempotent: the same chunk again changes nothing.
    assert step.process(run, ids) == {"comments": 6, "flags_new": 0, "flags_updated": 0}
    assert Flag.objects.filter(kind=FlagKind.PII).count() == 2


@pytest.mark.once
def test_the_step_is_importable_as_the_contract_says():
    from curation.pii import STEPS

    assert [s.name for s in STEPS] == ["pii"] and STEPS[0].queue == "curation"
