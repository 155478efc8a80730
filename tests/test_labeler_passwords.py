"""Issue 9, finding 3: accounts made with a password outside the login form (the labeler CSV
import, the planner's create-labeler form, the account service) get the same password validators
as everywhere else. The CSV import accepted `password` and `12345678`."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts import services as accounts
from accounts.models import User
from labeling import services
from labeling.models import ProjectMember

WEAK_CSV = "username,password\ngood1,long-enough-1\nweak1,password\nweak2,12345678\ngood2,long-enough-2\n"


@pytest.fixture
def project(db):
    return services.create_project("Passwords")


@pytest.fixture
def en(settings):
    settings.LANGUAGE_CODE = "en"


def test_csv_import_refuses_weak_passwords_by_line_and_writes_nothing(project, en):
    with pytest.raises(ValidationError) as exc:
        services.import_labelers_csv(project, WEAK_CSV.encode())
    errors = exc.value.message_dict["file"]
    assert [e.split(":")[0] for e in errors] == ["Line 3", "Line 4"]
    assert "too common" in errors[0] and "too common" in errors[1]
    assert not User.objects.exists() and not ProjectMember.objects.exists()


def test_csv_import_on_the_planner_page_and_the_api_lists_the_weak_lines(project, users, client, en):
    client.force_login(users["planner"])
    response = client.post(reverse("project-labelers", args=[project.pk]),
                           {"action": "import", "csv-file": SimpleUploadedFile("l.csv", WEAK_CSV.encode())})
    html = response.content.decode()
    errors = html[html.index('id="csv-errors"'):]
    assert "Line 3" in errors and "Line 4" in errors and "Line 2" not in errors
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(users["planner"])
    response = api.post(f"/api/projects/{project.pk}/members/import/",
                        {"file": SimpleUploadedFile("l.csv", WEAK_CSV.encode())}, format="multipart")
    assert response.status_code == 400
    assert [e.split(":")[0] for e in response.json()["file"]] == ["Line 3", "Line 4"]
    assert not User.objects.filter(username__in=["good1", "good2", "weak1", "weak2"]).exists()


def test_the_create_labeler_form_refuses_weak_passwords(project, users, client, en):
    client.force_login(users["planner"])
    url = reverse("project-labelers", args=[project.pk])
    for weak in ("password", "12345678"):
        response = client.post(url, {"action": "create", "new-username": "minji", "new-password": weak})
        assert response.status_code == 200 and "password" in response.context["new_form"].errors
    assert not User.objects.filter(username="minji").exists()


@pytest.mark.parametrize("weak", ["password", "12345678", "short"])
def test_the_account_service_refuses_weak_passwords(db, weak):
    with pytest.raises(ValidationError):
        accounts.create_user("someone", weak, "labeler")
    assert not User.objects.filter(username="someone").exists()
