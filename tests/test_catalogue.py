"""Issue 8, items 2 and 3: new photos reach open projects, and planners manage the catalogue
(recategorise, retire, exclude, restore; one photo or many) with quotas and queues following.

Runs on SQLite by default and on PostgreSQL with DATABASE_URL=postgres://...
"""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from accounts import services as accounts
from datasets import selectors as dataset_selectors
from datasets import services as datasets
from datasets.models import Category, Image, ImageStatus, ImportStatus
from labeling import services
from labeling.models import AssignmentStatus, PhotoSet, Project, ProjectImage
from tests.conftest import make_photo
from tests.factories import fake_images, texts

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield




@pytest.fixture
def labelers(db):
    return [accounts.create_user(f"cat-lab{i}", "pw-long-enough-1", "labeler") for i in range(3)]


def queue(project) -> set:
    return set(ProjectImage.objects.filter(project=project).values_list("image_id", flat=True))


def run_upload(source, n: int, seed: int, **kwargs):
    files = [SimpleUploadedFile(f"p{seed + i}.jpg", make_photo(320, 240, seed=seed + i)) for i in range(n)]
    job = datasets.create_import(source=source, files=files, enqueue=False, **kwargs)
    return datasets.run_import(job.pk)


# --- Item 2: an import's photos join open projects ------------------------------------------

def test_an_imports_new_photos_join_open_following_projects_only(source, food, people,
                                                                  django_capture_on_commit_callbacks):
    fake_images(source, 3, category=food)
    following = services.create_project("follows", categories=[food])
    frozen = services.create_project("frozen", categories=[food], photo_set=PhotoSet.FROZEN)
    closed = services.create_project("closed", categories=[food], is_active=False)
    other = services.create_project("people only", categories=[people])
    for p in (following, frozen, closed, other):
        services.sync_project_images(p)
    before = {p.pk: queue(p) for p in (following, frozen, closed, other)}
    assert all(len(before[p.pk]) == 3 for p in (following, frozen, closed))

    with django_capture_on_commit_callbacks(execute=True):
        job = run_upload(source, 2, seed=500, category=food)
    assert job.status == ImportStatus.DONE and job.accepted == 2
    new = set(Image.objects.filter(import_job=job).values_list("pk", flat=True))

    following.refresh_from_db()
    assert queue(following) == before[following.pk] | new
    assert following.last_joined_count == 2 and following.last_joined_at is not None
    for p in (frozen, closed, other):
        p.refresh_from_db()
        assert queue(p) == before[p.pk]
        assert p.last_joined_at is None
    # The new rows carry the photo's category and the queue's priority for it (not a default 0).
    row = ProjectImage.objects.get(project=following, image_id=next(iter(new)))
    assert row.category_id == food.pk
    assert row.priority == services.category_order().index(food.pk)


def test_an_interrupted_import_announces_what_it_stored_and_a_resume_adds_only_the_rest(
        source, food, django_capture_on_commit_callbacks):
    project = services.create_project("follows", categories=[food])
    files = [SimpleUploadedFile(f"r{i}.jpg", make_photo(320, 240, seed=900 + i)) for i in range(3)]
    job = datasets.create_import(source=source, files=files, enqueue=False, category=food)
    with pytest.raises(datasets.ImportStopped):
        datasets.run_import(job.pk, deadline=0)  # stops after one file
    with django_capture_on_commit_callbacks(execute=True):
        datasets.interrupt_import(job.pk, "stopped for the test")
    project.refresh_from_db()
    assert len(queue(project)) == 1 and project.last_joined_count == 1
    datasets.resume_import(job, enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        datasets.run_import(job.pk)
    project.refresh_from_db()
    assert len(queue(project)) == 3 and project.last_joined_count == 2


# --- Item 3: retire, exclude, restore --------------------------------------------------------

@pytest.fixture
def project(source, food, labelers):
    fake_images(source, 4, category=food)
    p = services.create_project("catalogue", overlap=2, cap_per_labeler=10, categories=[food])
    services.sync_project_images(p)
    for user in labelers:
        services.add_member(p, user)
    return p


def test_retiring_photos_drops_them_from_quotas_and_untouched_queue_rows(project, food, users):
    touched = services.next_assignment(project, project.members.first().user)
    images = list(Image.objects.filter(category=food).order_by("pk"))
    untouched = [i for i in images if i.pk != touched.image_id]
    quota = {r.slug: r for r in dataset_selectors.quota_dashboard()[0]}
    assert quota["food"].collected == 4

    changed = datasets.set_image_status(images, ImageStatus.RETIRED, reason="  too   dark ", user=users["planner"])
    assert changed == 4
    image = Image.objects.get(pk=untouched[0].pk)
    assert (image.status, image.status_reason, image.status_changed_by) == ("retired", "too dark", users["planner"])
    rows, totals = dataset_selectors.quota_dashboard()
    assert {r.slug: r for r in rows}["food"].collected == 0 and totals["withdrawn"] == 4
    # Untouched rows left; the touched one stays (its lease and counts) but is excluded.
    assert queue(project) == {touched.image_id}
    assert ProjectImage.objects.get(project=project, image_id=touched.image_id).excluded
    assert not dataset_selectors.images().exists()
    assert dataset_selectors.images(status="retired").count() == 4
    # Nothing is handed out, to anyone.
    for user in [m.user for m in project.members.all()][1:]:
        with pytest.raises(services.NoWorkLeft):
            services.next_assignment(project, user)
    # Saving the settings does not bring them back either.
    services.sync_project_images(project)
    assert queue(project) == {touched.image_id}


def test_restoring_brings_photos_back_to_quotas_and_following_queues(project, food, labelers):
    images = list(Image.objects.filter(category=food))
    datasets.set_image_status(images, ImageStatus.EXCLUDED, reason="faces")
    assert datasets.set_image_status(images, ImageStatus.EXCLUDED) == 0  # already
    assert datasets.set_image_status(images, ImageStatus.ACTIVE) == 4
    assert Image.objects.filter(status="active", status_reason="").count() == 4
    assert len(queue(project)) == 4
    project.refresh_from_db()
    assert project.last_joined_count == 4
    assert services.next_assignment(project, labelers[0]).image_id in {i.pk for i in images}


def test_a_restored_photo_that_a_planner_excluded_after_a_report_stays_out(project, food, labelers):
    a = services.next_assignment(project, labelers[0])
    services.report(a, labelers[0], "personal_info")
    services.resolve_report(a, "excluded")
    other = services.next_assignment(project, labelers[1])
    services.submit(other, labelers[1], texts(1))
    datasets.set_image_status([a.image_id, other.image_id], ImageStatus.RETIRED)
    # "kept" on a retired photo does not bring it back to labelers.
    services.resolve_report(a, "kept")
    assert ProjectImage.objects.get(project=project, image_id=a.image_id).excluded
    datasets.set_image_status([a.image_id, other.image_id], ImageStatus.ACTIVE)
    assert not ProjectImage.objects.get(project=project, image_id=other.image_id).excluded
    services.resolve_report(a, "excluded")
    datasets.set_image_status([a.image_id], ImageStatus.RETIRED)
    datasets.set_image_status([a.image_id], ImageStatus.ACTIVE)
    assert ProjectImage.objects.get(project=project, image_id=a.image_id).excluded


def test_the_engine_never_hands_out_a_withdrawn_photo(source, food, labelers):
    fake_images(source, 2, category=food)
    project = services.create_project("engine", overlap=3, categories=[food])
    services.sync_project_images(project)
    for user in labelers:
        services.add_member(project, user)
    first = services.next_assignment(project, labelers[0])  # started photos come first
    datasets.set_image_status([first.image_id], ImageStatus.EXCLUDED)
    picks = {services.next_assignment(project, u).image_id for u in labelers[1:]}
    assert first.image_id not in picks


def test_a_lease_on_a_photo_taken_out_is_returned_and_its_submit_says_why(source, food, labelers):
    fake_images(source, 3, category=food)
    project = services.create_project("withdrawn lease", overlap=1, cap_per_labeler=2, categories=[food])
    services.sync_project_images(project)
    services.add_member(project, labelers[0])
    held = services.next_assignment(project, labelers[0])
    datasets.set_image_status([held.image_id], ImageStatus.RETIRED)
    held.refresh_from_db()
    assert held.status == AssignmentStatus.EXPIRED  # the lease went back: it no longer counts to the cap
    assert ProjectImage.objects.get(project=project, image_id=held.image_id).slots_taken == 0
    with pytest.raises(services.PhotoWithdrawn):
        services.submit(held, labelers[0], texts(1))
    # The returned lease no longer counts to the cap of 2: both other photos still come.
    for n in (2, 3):
        a = services.next_assignment(project, labelers[0])
        assert a.image_id != held.image_id
        services.submit(a, labelers[0], texts(n))


def test_status_changes_refuse_bad_input_and_write_nothing(project, food):
    images = list(Image.objects.filter(category=food))
    with pytest.raises(ValidationError) as exc:
        datasets.set_image_status(images, "deleted")
    assert "Choose one of" in str(exc.value)
    with pytest.raises(ValidationError):
        datasets.set_image_status([], ImageStatus.RETIRED)
    with pytest.raises(ValidationError) as exc:
        datasets.set_image_status(list(range(datasets.BULK_MAX + 1)), ImageStatus.RETIRED)
    assert "At most" in str(exc.value)
    assert Image.objects.filter(status="active").count() == 4


# --- Item 3: recategorise -------------------------------------------------------------------

def test_recategorising_moves_photos_between_project_queues(project, source, food, people):
    people_project = services.create_project("people", categories=[people])
    frozen_people = services.create_project("people frozen", categories=[people], photo_set=PhotoSet.FROZEN)
    images = list(Image.objects.filter(category=food).order_by("pk"))
    moved = datasets.recategorise_images(images[:2], category="people", subcategory=None)
    assert moved == 2
    assert Image.objects.filter(category=people).count() == 2
    assert queue(project) == {i.pk for i in images[2:]}
    assert queue(people_project) == {i.pk for i in images[:2]}
    assert queue(frozen_people) == set()
    assert set(ProjectImage.objects.filter(project=people_project).values_list("category_id", flat=True)) == {people.pk}
    # Moving them again to where they are changes nothing.
    assert datasets.recategorise_images(images[:2], category=people, subcategory=None) == 0


def test_recategorising_keeps_touched_rows_and_updates_their_category(project, food, people, labelers):
    a = services.next_assignment(project, labelers[0])
    datasets.recategorise_images([a.image_id], category=people, subcategory=None)
    row = ProjectImage.objects.get(project=project, image_id=a.image_id)
    assert row.category_id == people.pk and not row.excluded


def test_recategorising_refuses_retired_and_full_targets_and_writes_nothing(project, food, people):
    images = list(Image.objects.filter(category=food))
    people.is_active = False
    people.save()
    with pytest.raises(datasets.IngestError, match="retired"):
        datasets.recategorise_images(images, category=people, subcategory=None)
    people.is_active, people.quota, people.full_policy = True, 3, "refuse"
    people.save()
    with pytest.raises(datasets.IngestError, match="room for 3 more, not 4"):
        datasets.recategorise_images(images, category=people, subcategory=None)
    assert Image.objects.filter(category=food).count() == 4
    # Retired photos do not count towards the quota: three active ones fit, then one more.
    datasets.set_image_status(images[:1], ImageStatus.RETIRED)
    assert datasets.recategorise_images(images[1:], category=people, subcategory=None) == 3
    with pytest.raises(datasets.IngestError, match="is full"):
        datasets.recategorise_images(images[:1], category=people, subcategory=None)


def test_one_photo_recategorise_still_works_and_queues_follow(project, food, people):
    image = Image.objects.filter(category=food).first()
    people_project = services.create_project("people", categories=[people])
    image = datasets.recategorise_image(image, category=people, subcategory=None)
    assert image.category == people
    assert queue(people_project) == {image.pk}
    assert image.pk not in queue(project)


def test_labeled_counts_on_the_quota_dashboard_follow_the_status(project, labelers):
    a = services.next_assignment(project, labelers[0])
    services.submit(a, labelers[0], texts(7))
    totals = dataset_selectors.quota_dashboard()[1]
    assert totals["labeled"] == 1
    datasets.set_image_status([a.image_id], ImageStatus.RETIRED)
    totals = dataset_selectors.quota_dashboard()[1]
    assert totals["labeled"] == 0 and totals["collected"] == 3


# --- Pages ------------------------------------------------------------------------------------

@pytest.fixture
def client_as(client, users):
    def login(role):
        client.force_login(users[role])
        return client
    return login


def test_the_grid_retires_the_chosen_photos_and_shows_them_under_their_status(client_as, project, food):
    images = list(Image.objects.filter(category=food).order_by("pk"))
    c = client_as("planner")
    page = c.get("/datasets/images/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="bulk-form"' in page and page.count('name="ids"') == 4
    r = c.post("/datasets/images/bulk/", {"ids": [str(i.pk) for i in images[:3]], "action": "retire",
                                          "reason": "blurry", "next": "/datasets/images/?category=food"},
               HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert r.redirect_chain[-1][0] == "/datasets/images/?category=food"
    assert "3 photos retired." in r.content.decode()
    assert Image.objects.filter(status="retired", status_reason="blurry").count() == 3
    assert r.context["page"].paginator.count == 1  # the grid shows active photos
    retired = c.get("/datasets/images/?status=retired", HTTP_ACCEPT_LANGUAGE="en")
    assert retired.context["page"].paginator.count == 3 and "Retired" in retired.content.decode()
    assert c.get("/datasets/images/?status=all").context["page"].paginator.count == 4
    quotas = c.get("/datasets/quotas/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "3 retired or excluded photos are not counted." in quotas
    # Restore from the grid of retired photos; one was already active.
    r = c.post("/datasets/images/bulk/", {"ids": [str(i.pk) for i in images], "action": "restore",
                                          "next": "/datasets/images/?status=retired"},
               HTTP_ACCEPT_LANGUAGE="en", follow=True)
    body = r.content.decode()
    assert "3 photos restored." in body and "1 photo already had that status." in body
    assert len(queue(project)) == 4


def test_the_grid_moves_photos_and_refuses_bad_input_with_a_message(client_as, project, food, people):
    images = list(Image.objects.filter(category=food).order_by("pk"))
    c = client_as("planner")
    r = c.post("/datasets/images/bulk/", {"ids": [str(images[0].pk)], "action": "move", "target": "people"},
               HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert f"1 photo moved to {people.name}." in r.content.decode()
    assert Image.objects.get(pk=images[0].pk).category == people
    sub = people.subcategories.first()
    c.post("/datasets/images/bulk/", {"ids": [str(images[1].pk)], "action": "move",
                                      "target": f"people/{sub.slug}"})
    assert Image.objects.get(pk=images[1].pk).subcategory == sub
    for data, fragment in [
        ({"ids": [str(images[2].pk)], "action": "move"}, "Choose where to move the photos."),
        ({"ids": ["not-a-uuid"], "action": "retire"}, "is not a photo id."),
        ({"action": "retire"}, "Choose at least one photo."),
        ({"ids": [str(images[2].pk)], "action": "delete"}, "Select a valid choice."),
    ]:
        r = c.post("/datasets/images/bulk/", data, HTTP_ACCEPT_LANGUAGE="en", follow=True)
        assert fragment in r.content.decode(), fragment
    assert Image.objects.filter(category=food, status="active").count() == 2
    # An outside `next` is not followed.
    r = c.post("/datasets/images/bulk/", {"ids": [str(images[2].pk)], "action": "retire",
                                          "next": "https://evil.example/"})
    assert r["Location"] == "/datasets/images/"


def test_engineers_read_the_grid_without_actions_and_may_not_post(client_as, project, food):
    image = Image.objects.filter(category=food).first()
    c = client_as("engineer")
    assert 'id="bulk-form"' not in c.get("/datasets/images/").content.decode()
    assert "data-image-actions" not in c.get(f"/datasets/images/{image.pk}/").content.decode()
    assert c.post("/datasets/images/bulk/", {"ids": [str(image.pk)], "action": "retire"}).status_code == 403
    assert Image.objects.get(pk=image.pk).status == "active"


def test_the_image_page_retires_and_restores_one_photo(client_as, project, food, users):
    image = Image.objects.filter(category=food).first()
    c = client_as("planner")
    url = f"/datasets/images/{image.pk}/"
    assert "data-image-actions" in c.get(url).content.decode()
    r = c.post("/datasets/images/bulk/", {"ids": [str(image.pk)], "action": "exclude", "reason": "얼굴", "next": url},
               HTTP_ACCEPT_LANGUAGE="en", follow=True)
    body = r.content.decode()
    assert r.redirect_chain[-1][0] == url
    assert "1 photo excluded." in body and 'data-status="excluded"' in body and "얼굴" in body
    assert "by planner1" in body and 'value="restore"' in body
    c.post("/datasets/images/bulk/", {"ids": [str(image.pk)], "action": "restore", "next": url})
    assert Image.objects.get(pk=image.pk).status == "active"


def test_the_project_page_says_how_many_photos_joined_and_when(client_as, source, food,
                                                                django_capture_on_commit_callbacks):
    project = services.create_project("intake", categories=[food])
    c = client_as("planner")
    body = c.get(f"/projects/{project.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "join the queue when their import finishes" in body and "Last:" not in body
    with django_capture_on_commit_callbacks(execute=True):
        run_upload(source, 2, seed=700, category=food)
    body = c.get(f"/projects/{project.pk}/?partial=1", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'data-joined="2"' in body and "Last: 2 photos joined" in body


def test_the_project_form_sets_a_frozen_photo_set(client_as, source, food, django_capture_on_commit_callbacks):
    from tests.test_planner_pages import DEFAULT_ROWS, project_data, type_rows

    c = client_as("planner")
    page = c.get("/projects/new/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="photo_set" value="follow"' in page and "Frozen" in page
    data = project_data(name="frozen by form", photo_set="frozen")
    data.update(type_rows(DEFAULT_ROWS))
    data["categories"] = [str(food.pk)]
    r = c.post("/projects/new/", data)
    assert r.status_code == 302
    project = Project.objects.get(name="frozen by form")
    assert project.photo_set == "frozen"
    with django_capture_on_commit_callbacks(execute=True):
        run_upload(source, 1, seed=800, category=food)
    assert not queue(project)
    assert "Photo set frozen" in c.get(f"/projects/{project.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    # Saved again without the option (an older client), it stays frozen.
    data = project_data(name="frozen by form", description="changed")
    data.update(type_rows([{"name": ct.name, "slug": ct.slug, "min_length": ct.min_length, "max_length": ct.max_length,
                            "position": ct.position, "id": ct.pk} for ct in project.comment_types.all()]))
    data["categories"] = [str(food.pk)]
    assert c.post(f"/projects/{project.pk}/edit/", data).status_code == 302
    project.refresh_from_db()
    assert (project.description, project.photo_set) == ("changed", "frozen")


# --- API --------------------------------------------------------------------------------------

def test_the_api_bulk_action_retires_moves_and_restores(api, project, food, people):
    ids = [str(pk) for pk in Image.objects.filter(category=food).order_by("pk").values_list("pk", flat=True)]
    planner = api("planner")
    r = planner.post("/api/images/bulk/", {"action": "retire", "ids": ids[:2], "reason": "dup"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json() == {"action": "retire", "changed": 2, "unchanged": 0}
    listed = planner.get("/api/images/").json()
    assert listed["count"] == 2
    assert planner.get("/api/images/?status=retired").json()["count"] == 2
    assert planner.get("/api/images/?status=all").json()["count"] == 4
    one = planner.get(f"/api/images/{ids[0]}/").json()  # found whatever its status
    assert (one["status"], one["status_reason"]) == ("retired", "dup")
    r = planner.post("/api/images/bulk/", {"action": "move", "ids": ids[2:], "category": "people"}, format="json")
    assert r.json()["changed"] == 2 and Image.objects.filter(category=people).count() == 2
    r = planner.post("/api/images/bulk/", {"action": "restore", "ids": ids}, format="json")
    assert r.json() == {"action": "restore", "changed": 2, "unchanged": 2}
    assert len(queue(project)) == 2  # the two moved to people left the food project


def test_the_api_bulk_action_refuses_bad_input_and_changes_nothing(api, project, food, settings):
    import uuid

    ids = [str(pk) for pk in Image.objects.filter(category=food).values_list("pk", flat=True)]
    planner = api("planner")
    cases = [
        ({"action": "retire", "ids": ids + [str(uuid.uuid4())]}, "ids"),
        ({"action": "retire", "ids": []}, "ids"),
        ({"action": "retire", "ids": [str(uuid.uuid4()) for _ in range(datasets.BULK_MAX + 1)]}, "ids"),
        ({"action": "move", "ids": ids}, "category"),
        ({"action": "move", "ids": ids, "category": "food", "subcategory": "nope"}, "subcategory"),
        ({"action": "burn", "ids": ids}, "action"),
    ]
    for body, field in cases:
        r = planner.post("/api/images/bulk/", body, format="json")
        assert r.status_code == 400 and field in r.json(), (body, r.content)
    Category.objects.filter(slug="people").update(quota=1, full_policy="refuse")
    r = planner.post("/api/images/bulk/", {"action": "move", "ids": ids, "category": "people"}, format="json",
                     HTTP_ACCEPT_LANGUAGE="en")
    assert r.status_code == 400 and "room for 1 more" in str(r.json())
    assert Image.objects.filter(category=food, status="active").count() == 4
    assert api("engineer").post("/api/images/bulk/", {"action": "retire", "ids": ids}, format="json").status_code == 403


def test_the_api_project_has_the_photo_set_option(api, food):
    planner = api("planner")
    r = planner.post("/api/projects/", {"name": "api frozen", "categories": ["food"], "photo_set": "frozen"},
                     format="json")
    assert r.status_code == 201, r.content
    body = r.json()
    assert (body["photo_set"], body["last_joined_at"], body["last_joined_count"]) == ("frozen", None, 0)
    r = planner.patch(f"/api/projects/{body['id']}/", {"photo_set": "follow", "last_joined_count": 9}, format="json")
    assert r.json()["photo_set"] == "follow" and r.json()["last_joined_count"] == 0
    assert Project.objects.get(pk=body["id"]).photo_set == "follow"


# --- Admin ------------------------------------------------------------------------------------

def test_the_admin_lists_images_and_retires_them_through_the_service(client_as, project, food):
    images = list(Image.objects.filter(category=food))
    c = client_as("admin")
    for url in ("/admin/datasets/image/", "/admin/datasets/image/?status__exact=active", f"/admin/datasets/image/{images[0].pk}/change/",
                "/admin/datasets/category/", "/admin/datasets/subcategory/", "/admin/datasets/licence/",
                "/admin/datasets/source/", "/admin/datasets/importjob/", "/admin/datasets/importitem/"):
        assert c.get(url).status_code == 200, url
    r = c.post("/admin/datasets/image/", {"action": "make_retired", "_selected_action": [str(i.pk) for i in images[:2]]})
    assert r.status_code == 302
    assert Image.objects.filter(status="retired").count() == 2
    assert len(queue(project)) == 2


def test_the_api_bulk_action_takes_json_only(api, project, food):
    ids = [str(pk) for pk in Image.objects.filter(category=food).values_list("pk", flat=True)]
    r = api("planner").post("/api/images/bulk/", {"action": "retire", "ids": ids}, format="multipart")
    assert r.status_code == 415
    assert Image.objects.filter(status="active").count() == 4


def test_an_import_is_done_even_when_its_photos_cannot_be_announced(source, food, monkeypatch, caplog,
                                                                     django_capture_on_commit_callbacks):
    from labeling import tasks

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.join_imported_images_task, "delay", broker_down)
    project = services.create_project("follows", categories=[food])
    with django_capture_on_commit_callbacks(execute=True):
        job = run_upload(source, 1, seed=950, category=food)
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE and job.accepted == 1
    assert "failed on images_added" in caplog.text
    assert not queue(project)
    services.sync_project_images(project)  # saving the settings adds them
    assert len(queue(project)) == 1


def test_the_api_moves_photos_out_of_every_category(api, project, food):
    ids = [str(pk) for pk in Image.objects.filter(category=food).values_list("pk", flat=True)]
    r = api("planner").post("/api/images/bulk/", {"action": "move", "ids": ids[:2], "category": None}, format="json")
    assert r.status_code == 200 and r.json()["changed"] == 2
    assert Image.objects.filter(category__isnull=True).count() == 2
    assert len(queue(project)) == 2  # the food project's untouched rows of those two left
