"""The labeler quality scorecard (issue 12, item 5): its numbers on a made-up project with known
answers, sorting, the page's actions (cap, deactivate, message), the labeler's messages, the
review queue's labeler filter and who may see what."""
from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from curation import scorecard
from curation import services as curation
from curation.models import CommentScore, Flag, FlagStatus
from labeling import services as labeling
from labeling.models import AssignmentStatus, Comment, LabelerMessage

SAME = {"reaction": "와 진짜 맛있겠다", "specific": "족발 윤기가 장난 아니네요 쫀득해 보여요"}
# No character in common with SAME: a character n-gram profile shares nothing with it.
OTHER = {"reaction": "호호 흐흐 히히", "specific": "후후후 흑흑흑 훗훗훗 휴휴휴"}


@pytest.fixture
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def _label(project, labeler, n, texts_for):
    sets = []
    for i in range(n):
        a = labeling.next_assignment(project, labeler)
        labeling.submit(a, labeler, texts_for(i, a))
        sets.append(a)
    return sets


@pytest.fixture
def card(make_project, labelers, users):
    """6 photos, overlap 2. lab0 and lab1 label all six: the same texts on three photos, texts with
    no character in common on the other three; lab2 labels nothing. A planner rejects lab0's set
    on one photo of the first three (through a flag in the review queue); flags and scores as in
    the tests below."""
    lab0, lab1, lab2 = labelers[:3]
    project = make_project(6, overlap=2, members=[lab0, lab1, lab2], reject_own_repeats=False)
    sets0 = _label(project, lab0, 6, lambda i, a: SAME)
    same_photos = {a.image_id for a in sets0[:3]}
    sets1 = _label(project, lab1, 6, lambda i, a: SAME if a.image_id in same_photos else OTHER)
    c0 = list(Comment.objects.filter(assignment__labeler=lab0).order_by("assignment__image_id", "comment_type__position"))
    c1 = list(Comment.objects.filter(assignment__labeler=lab1).order_by("assignment__image_id", "comment_type__position"))
    rejected_comment = next(c for c in c0 if c.assignment.image_id == sets0[0].image_id)
    others0 = [c for c in c0 if c.assignment_id != rejected_comment.assignment_id]
    curation.record_flags("tox", "1", [{"kind": "toxicity", "comment": rejected_comment, "score": 0.99}])
    curation.record_flags("copies", "1", [{"kind": "self_copy_comment", "comment": c, "score": 1} for c in others0[:2]])
    curation.record_flags("pii", "1", [{"kind": "pii", "comment": others0[2], "score": 1}])
    Flag.objects.filter(detector="pii").update(status=FlagStatus.WITHDRAWN)  # withdrawn: counts nowhere
    curation.record_flags("halluc", "1", [{"kind": "hallucination", "comment": c, "score": 0.9} for c in c1[:3]])
    curation.record_flags("tox", "1", [{"kind": "toxicity", "comment": c1[0], "score": 0.97}])
    [decision] = curation.decide([Flag.objects.get(comment=rejected_comment)], "reject_comment", users["planner"])
    # Specificity: lab0 three generic comments of twelve (below the project's 0.05), lab1 none.
    project.specificity_flag_below = 0.05
    project.save(update_fields=["specificity_flag_below"])
    for i, c in enumerate(c0):
        CommentScore.objects.create(model="m1", comment=c, project=project, hallucination=0.1,
                                    specificity=0.0 if i < 3 else 0.1, similarity=0.3, sample_size=10)
    for c in c1:
        CommentScore.objects.create(model="m1", comment=c, project=project, hallucination=0.1, specificity=0.2,
                                    similarity=0.3, sample_size=10)
    return {"project": project, "lab0": lab0, "lab1": lab1, "lab2": lab2, "sets0": sets0, "sets1": sets1}


def _rows(project, sort=scorecard.DEFAULT_SORT):
    return {r["username"]: r for r in scorecard.labeler_scorecard(project, sort=sort)}


def test_the_numbers_have_known_answers(card):
    rows = _rows(card["project"])
    lab0, lab1, lab2 = rows["lab0"], rows["lab1"], rows["lab2"]
    assert (lab0["sets"], lab0["rejected"], lab0["comments"]) == (6, 1, 12)
    assert lab0["rejected_share"] == pytest.approx(1 / 6)
    assert (lab1["sets"], lab1["rejected"], lab1["comments"]) == (6, 0, 12)
    assert lab1["rejected_share"] == 0
    # lab0: a toxicity flag and two self-copies (the withdrawn PII flag does not count).
    assert lab0["flagged"] == 3 and lab0["flagged_share"] == pytest.approx(3 / 12)
    assert lab0["flags"]["toxicity"] == {"count": 1, "share": pytest.approx(1 / 12)}
    assert lab0["flags"]["pii"]["count"] == 0
    assert lab0["self_copy"] == 2 and lab0["self_copy_share"] == pytest.approx(2 / 12)
    # lab1: three hallucination flags, one of those comments also toxic: three comments flagged.
    assert lab1["flagged"] == 3 and lab1["flags"]["hallucination"]["count"] == 3
    assert lab1["flags"]["toxicity"]["count"] == 1 and lab1["self_copy_share"] == 0
    # Specificity (model m1, the project's threshold 0.05).
    assert (lab0["scored"], lab0["generic"]) == (12, 3)
    assert lab0["generic_share"] == pytest.approx(0.25) and lab0["median_specificity"] == pytest.approx(0.1)
    assert lab1["generic_share"] == 0 and lab1["median_specificity"] == pytest.approx(0.2)
    # Agreement: five photos still shared (lab0's set on one "same" photo was rejected): two with
    # the same texts (1.0), three with nothing in common (0.0).
    assert lab0["shared_photos"] == lab1["shared_photos"] == 5
    assert lab0["agreement"] == pytest.approx(0.4) and lab1["agreement"] == pytest.approx(0.4)
    # lab2 wrote nothing: empty values, never a division by zero.
    assert (lab2["sets"], lab2["comments"]) == (0, 0)
    for key in ("rejected_share", "flagged_share", "self_copy_share", "generic_share", "median_specificity", "agreement"):
        assert lab2[key] is None, key


def test_agreement_needs_enough_shared_photos(card, monkeypatch):
    monkeypatch.setattr(scorecard, "AGREEMENT_MIN_PHOTOS", 6)
    rows = _rows(card["project"])
    assert rows["lab0"]["agreement"] is None and rows["lab0"]["shared_photos"] == 5


def test_without_scores_the_specificity_is_empty(make_project, labelers):
    project = make_project(2, members=labelers[:2])
    rows = _rows(project)
    assert rows["lab0"]["generic_share"] is None and rows["lab0"]["median_specificity"] is None


def test_generic_without_a_threshold_is_the_projects_lowest_tenth(card):
    from curation.selectors import specificity_by_labeler

    project = card["project"]
    project.specificity_flag_below = None
    project.save(update_fields=["specificity_flag_below"])
    # 24 scores: three 0.0, nine 0.1, twelve 0.2 -> the 10th percentile is 0.03: lab0's three zeros.
    spec = specificity_by_labeler(project)
    assert spec[card["lab0"].pk]["generic"] == 3 and spec[card["lab1"].pk]["generic"] == 0


def test_sorting_by_every_column(card):
    project = card["project"]
    order = lambda sort: [r["username"] for r in scorecard.labeler_scorecard(project, sort=sort)]  # noqa: E731
    assert order("-self_copy_share") == ["lab0", "lab1", "lab2"]
    assert order("self_copy_share") == ["lab1", "lab0", "lab2"]  # empty values last both ways
    assert order("-median_specificity") == ["lab1", "lab0", "lab2"]
    assert order("-username") == ["lab2", "lab1", "lab0"]
    assert order("-flag_hallucination") == ["lab1", "lab0", "lab2"]
    assert order("not-a-column") == order(scorecard.DEFAULT_SORT)
    rows = scorecard.labeler_scorecard(project)
    for sort in scorecard.SORTS:  # every column sorts (empty values last)
        assert len(scorecard.sort_rows(rows, sort)) == 3


def test_query_count_does_not_grow_with_labelers(card, django_assert_max_num_queries):
    with django_assert_max_num_queries(15):
        scorecard.labeler_scorecard(card["project"])


# ---------------------------------------------------------------- the page


def _client(client, users, role):
    client.force_login(users[role])
    return client


def test_page_sorts_and_links(card, client, users, english):
    c = _client(client, users, "planner")
    project = card["project"]
    url = reverse("project-labeler-quality", args=[project.pk])
    body = c.get(url + "?sort=self_copy_share").content.decode()
    assert body.index('data-labeler="lab1"') < body.index('data-labeler="lab0"') < body.index('data-labeler="lab2"')
    assert 'aria-sort="ascending"' in body and "?sort=-self_copy_share" in body
    assert f"?project={project.pk}&amp;labeler={card['lab0'].pk}&amp;status=all" in body
    assert f"{reverse('project-comments', args=[project.pk])}?labeler=lab0" in body
    assert "Hallucination" in body or "Not in the photo" in body  # the kinds the project has get columns
    assert c.get(url + "?sort=%27;drop").status_code == 200  # not in the allow-list: the default


def test_page_says_scores_need_the_model(make_project, labelers, client, users, english):
    project = make_project(2, members=labelers[:1])
    body = _client(client, users, "planner").get(reverse("project-labeler-quality", args=[project.pk])).content.decode()
    assert 'id="no-scores"' in body and "embedding model" in body and "—" in body


def test_who_sees_the_page(card, client, users):
    url = reverse("project-labeler-quality", args=[card["project"].pk])
    assert _client(client, users, "labeler").get(url).status_code == 403
    client.logout()
    engineer = _client(client, users, "engineer").get(url)
    assert engineer.status_code == 200 and b"message-form" not in engineer.content  # read-only
    client.logout()
    planner = _client(client, users, "planner").get(url)
    assert b"message-form" in planner.content and b"data-deactivate" in planner.content
    msg_url = reverse("project-labeler-message", args=[card["project"].pk, card["lab0"].pk])
    client.logout()
    assert _client(client, users, "engineer").post(msg_url, {"body": "hi"}).status_code == 403
    assert LabelerMessage.objects.count() == 0


def test_actions_cap_deactivate_message(make_project, labelers, client, users, english):
    lab0, lab1 = labelers[:2]
    project = make_project(3, members=[lab0, lab1])
    lease = labeling.next_assignment(project, lab1)
    c = _client(client, users, "planner")
    here = reverse("project-labeler-quality", args=[project.pk]) + "?sort=username"
    r = c.post(reverse("project-member-cap", args=[project.pk, lab0.pk]), {"cap_override": "5", "next": here})
    assert r.status_code == 302 and r["Location"] == here
    assert project.members.get(user=lab0).cap_override == 5
    r = c.post(reverse("project-member-active", args=[project.pk, lab1.pk]), {"active": "0", "next": here}, follow=True)
    assert "1 open lease returned" in r.content.decode()
    lease.refresh_from_db()
    assert lease.status == AssignmentStatus.RETURNED and not project.members.get(user=lab1).is_active
    r = c.post(reverse("project-labeler-message", args=[project.pk, lab0.pk]),
               {"body": "특정한 내용을 더 써 주세요", "next": here}, follow=True)
    assert "Message sent to lab0" in r.content.decode()
    message = LabelerMessage.objects.get()
    assert (message.labeler, message.sent_by, message.read_at) == (lab0, users["planner"], None)
    row = _rows(project)["lab0"]
    assert (row["messages_sent"], row["unread_messages"]) == (1, 1)
    # Too long, or empty: refused, nothing written.
    c.post(reverse("project-labeler-message", args=[project.pk, lab0.pk]), {"body": "가" * 2001})
    c.post(reverse("project-labeler-message", args=[project.pk, lab0.pk]), {"body": "   "})
    assert LabelerMessage.objects.count() == 1


# ---------------------------------------------------------------- the labeler's messages


def test_message_shown_until_dismissed(make_project, labelers, client, users):
    lab0 = labelers[0]
    project = make_project(2, members=[lab0])
    message = labeling.send_labeler_message(project, lab0, "사진에 보이는 것을 써 주세요", sent_by=users["planner"])
    client.force_login(lab0)
    for url in (reverse("labeler-home"), reverse("label", args=[project.pk])):
        body = client.get(url).content.decode()
        assert "사진에 보이는 것을 써 주세요" in body and f'data-message="{message.pk}"' in body
    r = client.post(reverse("labeler-message-read", args=[message.pk]), {"next": reverse("label", args=[project.pk])})
    assert r.status_code == 302 and r["Location"] == reverse("label", args=[project.pk])
    message.refresh_from_db()
    assert message.read_at is not None
    assert "사진에 보이는 것을" not in client.get(reverse("labeler-home")).content.decode()
    # Another labeler cannot mark it (nothing happens), and a planner has no such page.
    assert labeling.mark_messages_read(labelers[1], [message.pk]) == 0


def test_messages_api(make_project, labelers, api, users):
    lab0, lab1 = labelers[:2]
    project = make_project(2, members=[lab0, lab1])
    planner = api("planner")
    r = planner.post(f"/api/projects/{project.pk}/labelers/{lab0.pk}/message/", {"body": "안녕하세요"}, format="json")
    assert r.status_code == 201 and r.json()["read_at"] is None and r.json()["sent_by"] == "planner1"
    assert planner.post(f"/api/projects/{project.pk}/labelers/{lab0.pk}/message/", {"body": "x" * 2001},
                        format="json").status_code == 400
    assert planner.post(f"/api/projects/{project.pk}/labelers/{users['engineer'].pk}/message/", {"body": "hi"},
                        format="json").status_code == 404
    assert api("engineer").post(f"/api/projects/{project.pk}/labelers/{lab0.pk}/message/", {"body": "hi"},
                                format="json").status_code == 403
    from rest_framework.test import APIClient

    me = APIClient()
    me.force_authenticate(lab0)
    [m] = me.get("/api/me/messages/").json()
    assert m["body"] == "안녕하세요" and m["project"] == project.pk
    other = APIClient()
    other.force_authenticate(lab1)
    assert other.get("/api/me/messages/").json() == []
    assert other.post(f"/api/me/messages/{m['id']}/read/").status_code == 404
    r = me.post(f"/api/me/messages/{m['id']}/read/")
    assert r.status_code == 200 and r.json()["read_at"]
    assert me.post(f"/api/me/messages/{m['id']}/read/").status_code == 200  # again: harmless
    assert me.get("/api/me/messages/").json() == []


def test_scorecard_api(card, api):
    project = card["project"]
    r = api("engineer").get(f"/api/projects/{project.pk}/labelers/quality/?sort=-self_copy_share")
    assert r.status_code == 200
    rows = r.json()
    assert [row["username"] for row in rows] == ["lab0", "lab1", "lab2"]
    assert rows[0]["self_copy"] == 2 and rows[0]["agreement"] == pytest.approx(0.4)
    assert rows[0]["flags"]["toxicity"]["count"] == 1
    assert api("planner").get(f"/api/projects/{project.pk}/labelers/quality/?sort=nope").status_code == 400
    assert api("labeler").get(f"/api/projects/{project.pk}/labelers/quality/").status_code == 403


def test_review_queue_filters_by_labeler(card, client, users, api):
    project, lab1 = card["project"], card["lab1"]
    flags = api("planner").get(f"/api/curation/flags/?project={project.pk}&labeler={lab1.pk}&status=").json()
    assert flags["count"] == 4  # three hallucinations, one toxicity
    c = _client(client, users, "planner")
    body = c.get(reverse("curation-review") + f"?project={project.pk}&labeler={lab1.pk}&status=all").content.decode()
    assert "data-labeler-filter" in body and "lab1" in body
    assert body.count('class="card flag-card"') == 4


@pytest.mark.once
def test_sort_columns_cover_the_kinds():
    assert {f"flag_{k}" for k in scorecard.KIND_COLUMNS} <= set(scorecard.SORT_COLUMNS)
    assert "self_copy_comment" not in scorecard.KIND_COLUMNS and "face" not in scorecard.KIND_COLUMNS

