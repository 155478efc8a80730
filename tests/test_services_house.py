"""The services that replaced writes in views and API views (issue 8): one update_project for the
settings page and the API, comment types, deleting projects and catalogue rows, moving examples,
a new labeler added to a project. Each refuses bad input with nothing half-written."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts import services as accounts
from accounts.models import User
from datasets import services as datasets
from datasets.models import Category, Licence, Source
from labeling import services
from labeling.models import CommentType, GuidelineExample, Project, ProjectImage, ProjectMember
from tests.factories import fake_images, texts

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    from django.utils import translation

    with translation.override("en"):
        yield


@pytest.fixture
def food_and_animals(source):
    food, animals = Category.objects.get(slug="food"), Category.objects.get(slug="animals")
    fake_images(source, 3, category=food)
    fake_images(source, 2, category=animals, start=50)
    return food, animals


def test_update_project_changes_fields_filters_and_types_in_one_call(food_and_animals):
    food, animals = food_and_animals
    project, (added, _removed) = services.create_project_with_queue("p", categories=[food])
    assert added == 3
    reaction = project.comment_types.get(slug="reaction")
    specific = project.comment_types.get(slug="specific")
    synced = services.update_project(
        project, name="renamed", categories=[food, animals],
        comment_types=[{"id": reaction.pk, "name": "Quick", "min_length": 2},
                       {"id": specific.pk, "DELETE": True},
                       {"slug": "extra", "name": "Extra", "min_length": 1, "max_length": 50}],
    )
    assert synced == (2, 0)
    project.refresh_from_db()
    assert project.name == "renamed"
    assert ProjectImage.objects.filter(project=project).count() == 5
    assert list(project.comment_types.order_by("position", "id").values_list("slug", "name", "min_length")) == [
        ("reaction", "Quick", 2), ("extra", "Extra", 1)]
    # No filter given: no queue sync.
    assert services.update_project(project, overlap=3) is None


def test_update_project_writes_nothing_when_a_type_with_comments_is_deleted(source, food_and_animals):
    food, _ = food_and_animals
    project, _ = services.create_project_with_queue("p", categories=[food], overlap=1)
    labeler = accounts.create_user("lab", "pw-long-enough-1", "labeler")
    services.add_member(project, labeler)
    services.submit(services.next_assignment(project, labeler), labeler, texts(1))
    reaction = project.comment_types.get(slug="reaction")
    with pytest.raises(services.InUse) as refused:
        services.update_project(project, name="changed",
                                comment_types=[{"slug": "new", "name": "New", "min_length": 1, "max_length": 9},
                                               {"id": reaction.pk, "DELETE": True}])
    assert "Comments of this type exist" in str(refused.value)
    project.refresh_from_db()
    assert project.name == "p"
    assert set(project.comment_types.values_list("slug", flat=True)) == {"reaction", "specific"}


def test_update_project_refuses_more_types_than_the_limit(settings, food_and_animals):
    settings.LABELING_MAX_COMMENT_TYPES = 2
    project = services.create_project("p")
    with pytest.raises(ValidationError) as refused:
        services.update_project(project, name="changed",
                                comment_types=[{"slug": "third", "name": "Third", "min_length": 1, "max_length": 9}])
    assert "comment_types" in refused.value.message_dict
    project.refresh_from_db()
    assert project.name == "p" and project.comment_types.count() == 2


def test_comment_type_update_and_delete(source):
    project = services.create_project("p")
    reaction = project.comment_types.get(slug="reaction")
    services.update_comment_type(reaction, max_length=40)
    assert CommentType.objects.get(pk=reaction.pk).max_length == 40
    with pytest.raises(ValidationError):
        services.update_comment_type(reaction, min_length=50)  # above the maximum
    assert CommentType.objects.get(pk=reaction.pk).min_length == 3
    services.delete_comment_type(reaction)
    assert not CommentType.objects.filter(pk=reaction.pk).exists()


def test_a_project_with_comments_is_not_deleted(source, food_and_animals):
    food, _ = food_and_animals
    empty = services.create_project("empty")
    services.delete_project(empty)
    assert not Project.objects.filter(pk=empty.pk).exists()
    project, _ = services.create_project_with_queue("p", categories=[food], overlap=1)
    labeler = accounts.create_user("lab", "pw-long-enough-1", "labeler")
    services.add_member(project, labeler)
    services.submit(services.next_assignment(project, labeler), labeler, texts(1))
    with pytest.raises(services.InUse):
        services.delete_project(project)
    assert Project.objects.filter(pk=project.pk).exists()


def test_move_example(source):
    project = services.create_project("p")
    images = fake_images(source, 3)
    examples = [services.save_example(project, image, comments=[{"text": f"good {i}", "verdict": "good"}])
                for i, image in enumerate(images)]
    assert services.move_example(project, examples[2].pk, "up")
    order = list(GuidelineExample.objects.filter(project=project).order_by("position", "id").values_list("pk", flat=True))
    assert order == [examples[0].pk, examples[2].pk, examples[1].pk]
    assert services.move_example(project, examples[0].pk, "up")  # already first: nothing moves
    assert list(GuidelineExample.objects.filter(project=project).order_by("position", "id")
                .values_list("pk", flat=True)) == order
    assert not services.move_example(project, 999999, "down")


def test_a_new_labeler_is_created_and_added_or_neither(source):
    project = services.create_project("p")
    user = services.add_new_labeler(project, username="newbie", password="pw-long-enough-1", name="New", cap_override=5)
    assert ProjectMember.objects.get(project=project, user=user).cap_override == 5
    with pytest.raises(ValidationError):
        services.add_new_labeler(project, username="weak", password="short")
    assert not User.objects.filter(username="weak").exists()


def test_licences_are_saved_and_deleted_through_services(source):
    licence = datasets.save_licence(code="my-1.0", name="Mine", commercial_use=True, attribution_required=False)
    datasets.save_licence(code="my-1.0", name="Mine, renamed", commercial_use=False, attribution_required=True,
                          instance=licence)
    licence.refresh_from_db()
    assert (licence.name, licence.commercial_use) == ("Mine, renamed", False)
    with pytest.raises(ValidationError):
        datasets.save_licence(code="Bad Code", name="x", commercial_use=True, attribution_required=True)
    datasets.delete_licence(licence)
    assert not Licence.objects.filter(code="my-1.0").exists()
    # The source's licence is in use: refused, named, kept.
    with pytest.raises(datasets.InUseError) as refused:
        datasets.delete_licence(source.default_licence)
    assert "is used by sources and cannot be deleted" in str(refused.value)
    fake_images(source, 1)
    with pytest.raises(datasets.InUseError):
        datasets.delete_source(source)
    assert Source.objects.filter(pk=source.pk).exists()


def test_one_exception_handler_answers_every_apps_service_errors():
    """config.api.exception_handler (settings.REST_FRAMEWORK) answers what the apps registered: the
    most specific class wins (NotAMember 403 over LabelingError 409), a Django ValidationError is
    a 400 with field errors, and anything else is left to DRF (None: a 500)."""
    from config.api import exception_handler

    def answer(exc):
        response = exception_handler(exc, {})
        return None if response is None else (response.status_code, response.data)

    assert answer(services.NotAMember()) == (403, {"code": "not_member", "detail": str(services.NotAMember())})
    assert answer(services.LeaseLost())[0] == 409 and answer(services.LeaseLost())[1]["code"] == "lease_lost"
    assert answer(services.InUse())[1]["code"] == "in_use"
    rules = answer(services.SubmissionRejected({"reaction": [("too_short", "Too short.")]}))
    assert rules == (400, {"code": "rules", "errors": {"reaction": [{"code": "too_short", "message": "Too short."}]}})
    assert answer(ValidationError({"name": "Bad."})) == (400, {"name": ["Bad."]})
    assert answer(datasets.InUseError("used")) == (409, {"detail": "used"})
    assert answer(datasets.NotResumable("no")) == (409, {"detail": "no", "code": "not_interrupted"})
    assert answer(datasets.IngestError("bad")) == (400, {"detail": "bad"})
    assert answer(RuntimeError("boom")) is None
    from config.api import Conflict

    assert answer(Conflict("Taken.", code="taken")) == (409, {"detail": "Taken.", "code": "taken"})
    assert answer(Conflict("Taken.")) == (409, {"detail": "Taken."})
