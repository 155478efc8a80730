"""A labeler removed from a project can do nothing more there: not submit, skip or report an
assignment they still hold an id for, nor read it (its photo URL) again. Before, submit was refused
but report and skip were not, so a removed labeler could still fill the planners' report queue."""
from __future__ import annotations

import pytest

from labeling import services
from labeling.models import Assignment, AssignmentStatus
from tests.factories import GOOD

from .test_labeling_api import client_of, next_, submit, token_client


@pytest.fixture
def removed(make_project, labelers):
    """lab0 held a lease and a submitted photo in the project, then a planner removed them."""
    project = make_project(3)
    lab = labelers[0]
    client = client_of(lab)
    done = next_(client, project)["assignments"][0]["id"]
    assert submit(client, done, GOOD).status_code == 201
    held = next_(client, project)["assignments"][0]["id"]
    services.deactivate_member(project, lab)
    assert Assignment.objects.get(pk=held).status == AssignmentStatus.RETURNED
    return {"project": project, "labeler": lab, "held": held, "done": done}


@pytest.mark.parametrize("how", ["session", "token"])
def test_a_removed_labeler_cannot_report_skip_or_submit(removed, how):
    lab = removed["labeler"]
    client = client_of(lab) if how == "session" else token_client(lab)
    for pk in (removed["held"], removed["done"]):
        for action, body in (("report", {"reason": "inappropriate", "note": "spam"}), ("skip", {}),
                             ("submit", {"comments": GOOD})):
            response = client.post(f"/api/assignments/{pk}/{action}/", body, format="json")
            assert response.status_code == 403, (pk, action, response.content)
            assert response.json()["code"] == "not_member"
    assert Assignment.objects.get(pk=removed["held"]).status == AssignmentStatus.RETURNED
    assert not Assignment.objects.filter(status=AssignmentStatus.REPORTED).exists()  # nothing reached planners


def test_a_removed_labeler_cannot_read_their_old_assignments(removed, users):
    planner = client_of(users["planner"])
    client = client_of(removed["labeler"])
    for pk in (removed["held"], removed["done"]):
        response = client.get(f"/api/assignments/{pk}/")
        assert response.status_code == 403 and response.json()["code"] == "not_member"
        assert planner.get(f"/api/assignments/{pk}/").status_code == 200  # staff still read it


def test_the_services_refuse_a_removed_labeler_like_submit_does(removed):
    held = Assignment.objects.get(pk=removed["held"])
    lab = removed["labeler"]
    for action in (lambda: services.report(held, lab, "broken"), lambda: services.skip(held, lab),
                   lambda: services.submit(held, lab, GOOD)):
        with pytest.raises(services.NotAMember):
            action()
    held.refresh_from_db()
    assert held.status == AssignmentStatus.RETURNED


def test_an_active_labeler_still_reports_and_skips(make_project, labelers):
    project = make_project(3)
    client = client_of(labelers[1])
    a, b = (x["id"] for x in next_(client, project, count=2)["assignments"])
    assert client.post(f"/api/assignments/{a}/report/", {"reason": "broken"}, format="json").status_code == 200
    assert client.post(f"/api/assignments/{b}/skip/", {}, format="json").status_code == 200
    assert client.get(f"/api/assignments/{a}/").json()["status"] == "reported"
