"""Planner pages for labeling projects: who may open what, and what each form does."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from accounts import services as accounts
from datasets.models import Category
from labeling import selectors, services
from labeling.models import (
    Assignment,
    CommentType,
    GuidelineExample,
    GuidelineVersion,
    Project,
    ProjectImage,
    ProjectMember,
)
from tests.conftest import ROLES, make_photo
from tests.factories import fake_images, texts

ANON = "anonymous"
ALL = (ANON, *ROLES)
READERS = {"planner", "engineer", "admin"}
PLANNERS = {"planner", "admin"}


@pytest.fixture(autouse=True)
def english(settings):
    settings.LANGUAGE_CODE = "en"  # what the test client's requests get, too
    with translation.override("en"):
        yield


@pytest.fixture
def photos(db, source):
    """Real photos (files and thumbnails): two food, one people, one without a category."""
    from datasets import services as datasets

    out = []
    for seed, cat in enumerate(["food", "food", "people", None], start=500):
        out.append(datasets.ingest_one(make_photo(seed=seed, width=160, height=120), source=source,
                                       category=cat).image)
    return out


@pytest.fixture
def project(db, photos, labelers, users):
    p = services.create_project("Food talk", created_by=users["planner"])
    services.sync_project_images(p)
    for user in labelers[:3]:
        services.add_member(p, user)
    return p


def submit_one(project, user, n):
    a = services.next_assignment(project, user)
    services.submit(a, user, texts(n))
    return a


def login(client, users, role="planner"):
    client.force_login(users[role])
    return client


# ---------------------------------------------------------------- access


def page_matrix():
    return [
        ("projects", None, READERS),
        ("project-new", None, PLANNERS),
        ("project-detail", "project", READERS),
        ("project-edit", "project", PLANNERS),
        ("project-guideline", "project", PLANNERS),
        ("project-guideline-version", "version", PLANNERS),
        ("project-example-pick", "project", PLANNERS),
        ("project-example-edit", "example", PLANNERS),
        ("project-labelers", "project", PLANNERS),
        ("project-reports", "project", PLANNERS),
    ]


@pytest.mark.parametrize("role", ALL)
@pytest.mark.parametrize("name,arg,allowed", page_matrix(), ids=[p[0] for p in page_matrix()])
def test_page_access(client, users, project, photos, role, name, arg, allowed):
    example = services.save_example(project, photos[0], comments=[{"text": "맛있겠다", "verdict": "good"}])
    services.save_guideline_draft(project, "# Rules")
    services.publish_guideline(project)
    args = {None: [], "project": [project.pk], "version": [project.pk, 1], "example": [project.pk, example.pk]}[arg]
    if role != ANON:
        client.force_login(users[role])
    response = client.get(reverse(name, args=args))
    if role == ANON:
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    elif role in allowed:
        assert response.status_code == 200, response.content[:500]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ROLES)
def test_nav_projects_link(client, users, project, role):
    client.force_login(users[role])
    html = client.get(reverse("home"), follow=True).content.decode()
    assert (f'href="{reverse("projects")}"' in html) == (role in READERS)
    if role in READERS:
        html = client.get(reverse("project-detail", args=[project.pk])).content.decode()
        assert f'<a href="{reverse("projects")}" class="active">' in html


def test_engineer_reads_dashboard_without_planner_tabs_or_writes(client, users, project):
    login(client, users, "engineer")
    html = client.get(reverse("project-detail", args=[project.pk])).content.decode()
    assert reverse("project-edit", args=[project.pk]) not in html
    assert f'href="{reverse("project-labelers", args=[project.pk])}"' not in html
    # Engineers read the labeler quality scorecard (no actions there).
    assert f'href="{reverse("project-labeler-quality", args=[project.pk])}"' in html
    html = client.get(reverse("projects")).content.decode()
    assert "Food talk" in html and reverse("project-new") not in html
    response = client.post(reverse("project-edit", args=[project.pk]), {"name": "Hacked"})
    assert response.status_code == 403
    assert client.post(reverse("project-guideline-preview", args=[project.pk]), {"body": "x"}).status_code == 403
    project.refresh_from_db()
    assert project.name == "Food talk"


# ---------------------------------------------------------------- list, new, edit


def test_project_list_shows_queue_and_progress(client, users, project, labelers):
    for n, user in enumerate(labelers[:2]):
        submit_one(project, user, n)  # both on the same (started) photo: 1 of 4 done
    login(client, users)
    response = client.get(reverse("projects"))
    html = response.content.decode()
    row = html[html.index(f'data-project="{project.pk}"'):]
    row = row[:row.index("</tr>")]
    assert "<td class=\"num\" data-photos>4</td>" in row
    assert "25.0%" in row
    assert ">3</td>" in row  # active labelers
    assert "not published" in row


def type_rows(rows):
    """Formset POST data for comment types: rows of (name, slug, min, max, position[, id, delete])."""
    data = {"types-TOTAL_FORMS": str(len(rows)), "types-INITIAL_FORMS": str(sum(1 for r in rows if r.get("id"))),
            "types-MIN_NUM_FORMS": "1", "types-MAX_NUM_FORMS": "1000"}
    for i, r in enumerate(rows):
        for key in ("name", "slug", "description", "min_length", "max_length", "position", "id"):
            if r.get(key) is not None:
                data[f"types-{i}-{key}"] = str(r[key])
        if r.get("delete"):
            data[f"types-{i}-DELETE"] = "on"
    return data


def project_data(**overrides):
    data = {
        "name": "Street food", "description": "Street stalls", "is_active": "on", "overlap": "2",
        "cap_per_labeler": "300", "lease_minutes": "30", "reject_jamo_or_emoji_only": "on", "max_repeat_run": "5",
        "reject_copied_examples": "on", "reject_own_repeats": "on", "reject_urls": "on", "reject_emails": "on",
        "reject_phone_numbers": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


DEFAULT_ROWS = [
    {"name": "짧은 반응", "slug": "reaction", "min_length": 3, "max_length": 100, "position": 0},
    {"name": "구체적인 코멘트", "slug": "specific", "min_length": 10, "max_length": 300, "position": 1},
]


def test_new_project_form_starts_with_the_defaults(client, users):
    login(client, users)
    response = client.get(reverse("project-new"))
    html = response.content.decode()
    assert 'name="types-0-slug"' in html and 'value="reaction"' in html and 'value="specific"' in html
    assert 'name="overlap" value="2"' in html and 'name="cap_per_labeler" value="300"' in html
    assert 'name="lease_minutes" value="30"' in html
    assert response.context["formset"].total_form_count() == 2
    for label in ("Refuse jamo-only or emoji-only text", "Refuse phone numbers", "Count spaces in the length"):
        assert label in html


def test_create_project_with_default_types_untouched(client, users, photos):
    """The default types count even when the planner does not touch them."""
    login(client, users)
    data = project_data()
    data.update({"types-TOTAL_FORMS": "2", "types-INITIAL_FORMS": "0", "types-MIN_NUM_FORMS": "1",
                 "types-MAX_NUM_FORMS": "1000"})
    for i, spec in enumerate(services.DEFAULT_COMMENT_TYPES):
        for key in ("name", "slug", "description", "min_length", "max_length", "position"):
            data[f"types-{i}-{key}"] = str(spec[key])
    response = client.post(reverse("project-new"), data)
    project = Project.objects.get(name="Street food")
    assert response.status_code == 302 and response["Location"] == reverse("project-detail", args=[project.pk])
    assert list(project.comment_types.values_list("slug", "min_length")) == [("reaction", 3), ("specific", 10)]


def test_create_project_with_types_filters_and_sync(client, users, photos, source):
    login(client, users)
    food = Category.objects.get(slug="food")
    rows = DEFAULT_ROWS + [{"name": "Question", "slug": "question", "min_length": 5, "max_length": 80, "position": 2}]
    data = project_data(overlap="3", cap_per_labeler="120", lease_minutes="15", count_whitespace="on",
                        reject_urls=None, max_repeat_run="4")
    data.update(type_rows(rows))
    data["categories"] = [str(food.pk)]
    data["sources"] = [str(source.pk)]
    response = client.post(reverse("project-new"), data, follow=True)
    project = Project.objects.get(name="Street food")
    assert response.redirect_chain[-1][0] == reverse("project-detail", args=[project.pk])
    assert (project.overlap, project.cap_per_labeler, project.lease_minutes) == (3, 120, 15)
    assert project.count_whitespace and not project.reject_urls and project.max_repeat_run == 4
    assert project.created_by == users["planner"]
    assert list(project.categories.all()) == [food] and list(project.sources.all()) == [source]
    assert list(project.comment_types.values_list("slug", "min_length", "max_length")) == [
        ("reaction", 3, 100), ("specific", 10, 300), ("question", 5, 80)]
    assert ProjectImage.objects.filter(project=project).count() == 2  # the two food photos
    html = response.content.decode()
    assert "Queue updated: 2 photos added, 0 removed." in html


def test_invalid_new_project_shows_errors_and_writes_nothing(client, users, photos):
    services.create_project("Taken")
    before = (Project.objects.count(), CommentType.objects.count(), ProjectImage.objects.count())
    login(client, users)
    rows = [
        {"name": "짧은 반응", "slug": "reaction", "min_length": 10, "max_length": 3, "position": 0},
        {"name": "Again", "slug": "reaction", "min_length": 1, "max_length": 30, "position": 1},
    ]
    data = project_data(name="Taken", overlap="0")
    data.update(type_rows(rows))
    response = client.post(reverse("project-new"), data)
    assert response.status_code == 200
    form, formset = response.context["form"], response.context["formset"]
    assert "name" in form.errors and "overlap" in form.errors
    assert "max_length" in formset.forms[0].errors
    assert "slug" in formset.forms[1].errors
    html = response.content.decode()
    assert "Nothing was saved" in html and 'class="field-error"' in html
    assert (Project.objects.count(), CommentType.objects.count(), ProjectImage.objects.count()) == before


def test_a_project_needs_at_least_one_comment_type(client, users):
    login(client, users)
    data = project_data()
    data.update(type_rows([dict(DEFAULT_ROWS[0], delete=True)]))
    response = client.post(reverse("project-new"), data)
    assert response.status_code == 200
    assert response.context["formset"].non_form_errors()
    assert not Project.objects.filter(name="Street food").exists()


def edit_data(project, **overrides):
    data = project_data(name=project.name, overlap=str(project.overlap), cap_per_labeler=str(project.cap_per_labeler),
                        lease_minutes=str(project.lease_minutes))
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def test_edit_project_settings_types_and_filters(client, users, project, photos):
    login(client, users)
    reaction, specific = project.comment_types.order_by("position")
    people = Category.objects.get(slug="people")
    data = edit_data(project, cap_per_labeler="50", reject_emails=None)
    data["categories"] = [str(people.pk)]
    data.update(type_rows([
        {"id": reaction.pk, "name": "Reaction", "slug": "reaction", "min_length": 2, "max_length": 50, "position": 0},
        {"id": specific.pk, "name": specific.name, "slug": "specific", "min_length": 10, "max_length": 300,
         "position": 1, "delete": True},
        {"name": "Mood", "slug": "mood", "min_length": 1, "max_length": 20, "position": 2},
    ]))
    data["types-INITIAL_FORMS"] = "2"
    response = client.post(reverse("project-edit", args=[project.pk]), data, follow=True)
    assert response.redirect_chain[-1][0] == reverse("project-edit", args=[project.pk])
    project.refresh_from_db()
    assert project.cap_per_labeler == 50 and not project.reject_emails
    assert list(project.comment_types.values_list("slug", "name", "min_length")) == [
        ("reaction", "Reaction", 2), ("mood", "Mood", 1)]
    # Only the people photo matches now; the untouched others left the queue.
    assert list(ProjectImage.objects.filter(project=project).values_list("image_id", flat=True)) == [photos[2].pk]
    assert "3 removed" in response.content.decode()


def test_edit_refuses_removing_a_type_with_comments_and_writes_nothing(client, users, project, labelers):
    submit_one(project, labelers[0], 0)
    login(client, users)
    reaction, specific = project.comment_types.order_by("position")
    data = edit_data(project, cap_per_labeler="77")
    data.update(type_rows([
        {"id": reaction.pk, "name": reaction.name, "slug": "reaction", "min_length": 3, "max_length": 100,
         "position": 0, "delete": True},
        {"id": specific.pk, "name": specific.name, "slug": "specific", "min_length": 10, "max_length": 300,
         "position": 1},
    ]))
    data["types-INITIAL_FORMS"] = "2"
    response = client.post(reverse("project-edit", args=[project.pk]), data)
    assert response.status_code == 200
    assert "already has comments" in response.content.decode()
    project.refresh_from_db()
    assert project.cap_per_labeler == 300
    assert project.comment_types.count() == 2


# ---------------------------------------------------------------- dashboard


def test_dashboard_numbers_for_a_small_project(client, users, project, labelers, photos):
    a = submit_one(project, labelers[0], 0)
    b = submit_one(project, labelers[1], 1)  # the started photo first: it is done
    assert a.image_id == b.image_id
    submit_one(project, labelers[2], 2)  # another photo: 1 set
    services.next_assignment(project, labelers[0])  # an open lease
    rejected = services.next_assignment(project, labelers[1])
    with pytest.raises(services.SubmissionRejected):
        services.submit(rejected, labelers[1], {"reaction": "ㅋㅋㅋ", "specific": "짧다"})

    data = selectors.project_dashboard(project)
    t = data["totals"]
    assert (t["photos"], t["sets"], t["done"], t["open_leases"], t["active_labelers"]) == (4, 3, 1, 2, 3)
    assert t["counts"] == [2, 1, 1] and t["percent_done"] == 25.0
    by_cat = {(r["category"].slug if r["category"] else None): r["counts"] for r in data["categories"]}
    assert set(by_cat) == {"food", "people", None}
    assert [sum(c[k] for c in by_cat.values()) for k in range(3)] == [2, 1, 1]

    login(client, users, "engineer")
    response = client.get(reverse("project-detail", args=[project.pk]))
    html = response.content.decode()
    assert 'data-total="photos">4<' in html and 'data-total="sets">3<' in html
    assert 'data-total="done">1<' in html and 'data-total="open_leases">2<' in html
    row = html[html.index('data-labeler="lab1"'):]
    row = row[:row.index("</tr>")]
    assert 'data-count>1<' in row and 'badge-warn">1<' in row  # one set, one rejection
    # The fragment the page refreshes itself with: the same figures, no page around them.
    partial = client.get(reverse("project-detail", args=[project.pk]), {"partial": 1}).content.decode()
    assert 'data-total="sets">3<' in partial and "<html" not in partial
    assert 'data-refresh-url="' in html and "partial=1" in html


def test_dashboard_sorts_and_pages_labelers(client, users, project, labelers):
    submit_one(project, labelers[2], 0)
    login(client, users)
    html = client.get(reverse("project-detail", args=[project.pk])).content.decode()
    assert html.index('data-labeler="lab2"') < html.index('data-labeler="lab0"')
    html = client.get(reverse("project-detail", args=[project.pk]), {"sort": "username"}).content.decode()
    assert html.index('data-labeler="lab0"') < html.index('data-labeler="lab1"') < html.index('data-labeler="lab2"')
    assert client.get(reverse("project-detail", args=[project.pk]), {"sort": "bogus", "page": "99"}).status_code == 200


def test_dashboard_queries_do_not_grow_with_labelers_or_photos(client, users, project, labelers, source):

    login(client, users)
    submit_one(project, labelers[0], 0)
    url = reverse("project-detail", args=[project.pk])
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    more = [accounts.create_user(f"more{i}", "pw-long-enough-1", "labeler") for i in range(6)]
    for user in more:
        services.add_member(project, user)
    fake_images(source, 20, category=Category.objects.get(slug="places"))
    services.sync_project_images(project)
    for n, user in enumerate(more[:3]):
        submit_one(project, user, 10 + n)
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


def test_labeler_stats_medians_sorting_and_pages(project, labelers, source):
    """Medians of comment length per type and of seconds per photo, computed for one page of
    labelers (PostgreSQL: percentile_cont; SQLite: in Python); the same answers on both."""

    fake_images(source, 6)
    services.sync_project_images(project)
    reaction_texts = ["와 좋다", "정말 멋진 사진", "우와아 대박이다 진짜"]  # 3, 6, 9 characters without spaces
    for n, text in enumerate(reaction_texts):
        a = services.next_assignment(project, labelers[0])
        services.submit(a, labelers[0], {"reaction": text, "specific": f"사진 속 풍경이 정말 아름다워요 {n}번"})
        Assignment.objects.filter(pk=a.pk).update(work_seconds=[10.0, 30.0, 200.0][n])
    for n, text in enumerate(["와 좋다", "정말 멋진 사진"]):
        a = services.next_assignment(project, labelers[1])
        services.submit(a, labelers[1], {"reaction": text, "specific": f"사진 속 풍경이 정말 아름다워요 {n}번"})
        Assignment.objects.filter(pk=a.pk).update(work_seconds=[4.0, 9.0][n])
    ProjectMember.objects.filter(project=project, user=labelers[0]).update(work_seconds_total=240.0, rejection_count=2)
    ProjectMember.objects.filter(project=project, user=labelers[1]).update(work_seconds_total=13.0)
    ProjectMember.objects.filter(project=project, user=labelers[2]).update(cap_override=5, is_active=False)

    total, rows = selectors.labeler_stats(project)
    assert total == 3
    assert [r["username"] for r in rows] == ["lab0", "lab1", "lab2"]
    first, second, third = rows
    assert first["median_length"]["reaction"] == 6
    assert second["median_length"]["reaction"] == 4.5
    assert first["median_length"]["specific"] == 15
    assert first["seconds_per_photo"] == 30 and second["seconds_per_photo"] == 6.5
    assert first["mean_seconds_per_photo"] == 80
    assert (first["submitted_count"], first["rejection_count"], first["cap"], first["is_active"]) == (3, 2, 300, True)
    assert first["name"] == "Lab 0" and first["user_id"] == labelers[0].pk
    assert third["median_length"] == {"reaction": None, "specific": None}
    assert third["seconds_per_photo"] is None and (third["cap"], third["is_active"]) == (5, False)

    assert [r["username"] for r in selectors.labeler_stats(project, order="-rejection_count")[1]][0] == "lab0"
    by_time = selectors.labeler_stats(project, order="seconds_per_photo")[1]
    assert [r["username"] for r in by_time] == ["lab1", "lab0", "lab2"]  # no time yet: last
    total, page = selectors.labeler_stats(project, order="username", offset=1, limit=1)
    assert total == 3 and [r["username"] for r in page] == ["lab1"]


# ---------------------------------------------------------------- guideline


def test_guideline_draft_publish_and_versions(client, users, project, photos):
    login(client, users)
    url = reverse("project-guideline", args=[project.pk])
    response = client.post(url, {"body": "# 규칙\n\n- 사진에 있는 것만", "action": "save"}, follow=True)
    project.refresh_from_db()
    assert project.guideline_draft.startswith("# 규칙") and project.guideline_version == 0
    assert not GuidelineVersion.objects.exists()
    assert "Labelers see nothing until you publish" in response.content.decode()

    services.save_example(project, photos[0], note="Food", comments=[{"comment_type": "reaction", "text": "맛있겠다!",
                                                                      "verdict": "good", "why": "natural"}])
    response = client.post(url, {"body": "# 규칙 v1", "action": "publish"}, follow=True)
    project.refresh_from_db()
    v1 = GuidelineVersion.objects.get(project=project)
    assert (project.guideline_version, v1.version, v1.body, v1.published_by) == (1, 1, "# 규칙 v1", users["planner"])
    assert v1.examples[0]["comments"][0]["text"] == "맛있겠다!"
    html = response.content.decode()
    assert "Published as version 1" in html and "Publish as version 2" in html

    client.post(url, {"body": "# 규칙 v2", "action": "publish"})
    assert list(GuidelineVersion.objects.filter(project=project).values_list("version", flat=True)) == [2, 1]
    old = client.get(reverse("project-guideline-version", args=[project.pk, 1])).content.decode()
    assert "규칙 v1" in old and "맛있겠다!" in old and "read-only" in old
    assert client.get(reverse("project-guideline-version", args=[project.pk, 9])).status_code == 404


def test_publishing_an_empty_guideline_is_refused(client, users, project):
    login(client, users)
    response = client.post(reverse("project-guideline", args=[project.pk]), {"body": "  ", "action": "publish"})
    assert response.status_code == 200
    assert "The guideline is empty." in response.content.decode()
    assert not GuidelineVersion.objects.exists()


def test_preview_renders_markdown_and_strips_script(client, users, project):
    login(client, users)
    url = reverse("project-guideline-preview", args=[project.pk])
    body = "# 제목\n\n**굵게** <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>"
    data = client.post(url, {"body": body}).json()
    assert "<h1>제목</h1>" in data["html"] and "<strong>굵게</strong>" in data["html"]
    assert "<script" not in data["html"] and "javascript:" not in data["html"] and "onerror" not in data["html"]
    assert client.get(url).status_code == 405
    # The page's own first render is sanitised too.
    services.save_guideline_draft(project, "<script>alert(1)</script>ok")
    html = client.get(reverse("project-guideline", args=[project.pk])).content.decode()
    preview = html[html.index('id="guideline-preview"'):]
    assert "<script>alert(1)" not in preview[:300]


# ---------------------------------------------------------------- examples


def example_data(rows, note="", initial=0):
    data = {"note": note, "c-TOTAL_FORMS": str(len(rows)), "c-INITIAL_FORMS": str(initial),
            "c-MIN_NUM_FORMS": "1", "c-MAX_NUM_FORMS": "1000"}
    for i, r in enumerate(rows):
        for key in ("comment_type", "text", "verdict", "why"):
            if r.get(key) is not None:
                data[f"c-{i}-{key}"] = r[key]
        if r.get("delete"):
            data[f"c-{i}-DELETE"] = "on"
    return data


def test_example_picker_lists_queue_photos_by_category(client, users, project, photos):
    login(client, users)
    url = reverse("project-example-pick", args=[project.pk])
    html = client.get(url).content.decode()
    assert all(str(p.pk) in html for p in photos)
    food = Category.objects.get(slug="food")
    html = client.get(url, {"category": food.pk}).content.decode()
    assert str(photos[0].pk) in html and str(photos[2].pk) not in html
    html = client.get(url, {"category": "none"}).content.decode()
    assert str(photos[3].pk) in html and str(photos[0].pk) not in html
    assert reverse("project-example-new", args=[project.pk]) + f"?image={photos[3].pk}" in html


def test_add_edit_move_and_delete_examples(client, users, project, photos):
    login(client, users)
    new = reverse("project-example-new", args=[project.pk]) + f"?image={photos[0].pk}"
    page = client.get(new)
    assert page.status_code == 200 and photos[0].file.url in page.content.decode()
    response = client.post(new, example_data([
        {"comment_type": "reaction", "text": "와 맛있겠다!", "verdict": "good", "why": "자연스러운 반응"},
        {"comment_type": "specific", "text": "테이블 위에 음식들이 놓여있습니다", "verdict": "bad", "why": "캡션 같음"},
    ], note="Natural, not a caption"))
    assert response.status_code == 302
    ex = GuidelineExample.objects.get(project=project)
    assert ex.note == "Natural, not a caption"
    assert list(ex.comments.values_list("comment_type__slug", "verdict", "why")) == [
        ("reaction", "good", "자연스러운 반응"), ("specific", "bad", "캡션 같음")]
    # The same photo again goes to the existing example.
    assert client.get(new)["Location"] == reverse("project-example-edit", args=[project.pk, ex.pk])

    edit = reverse("project-example-edit", args=[project.pk, ex.pk])
    client.post(edit, example_data([
        {"comment_type": "reaction", "text": "와 맛있겠다!", "verdict": "good", "why": "자연스러운 반응"},
        {"comment_type": "specific", "text": "x", "verdict": "bad", "delete": True},
        {"comment_type": "", "text": "ㅋㅋㅋ", "verdict": "bad", "why": "자모만"},
    ], note="Edited", initial=2))
    ex.refresh_from_db()
    assert ex.note == "Edited"
    assert list(ex.comments.values_list("comment_type", "text")) == [
        (project.comment_types.get(slug="reaction").pk, "와 맛있겠다!"), (None, "ㅋㅋㅋ")]

    second = services.save_example(project, photos[1], comments=[{"text": "좋다", "verdict": "good"}])
    guideline = client.get(reverse("project-guideline", args=[project.pk])).content.decode()
    assert guideline.index(f'data-example="{ex.pk}"') < guideline.index(f'data-example="{second.pk}"')
    assert "badge-ok" in guideline and "badge-bad" in guideline and "자모만" in guideline
    client.post(reverse("project-example-move", args=[project.pk, second.pk]), {"direction": "up"})
    assert list(GuidelineExample.objects.filter(project=project).order_by("position").values_list("pk", flat=True)) \
        == [second.pk, ex.pk]
    assert ex.comments.count() == 2  # moving keeps the comments

    client.post(reverse("project-example-delete", args=[project.pk, ex.pk]))
    assert list(GuidelineExample.objects.values_list("pk", flat=True)) == [second.pk]


def test_invalid_example_shows_errors_and_writes_nothing(client, users, project, photos):
    login(client, users)
    new = reverse("project-example-new", args=[project.pk]) + f"?image={photos[0].pk}"
    response = client.post(new, example_data([{"comment_type": "reaction", "text": "", "verdict": "good"},
                                              {"comment_type": "specific", "text": "좋아요"}]))
    assert response.status_code == 200
    forms = response.context["formset"].forms
    assert "text" in forms[0].errors and "verdict" in forms[1].errors
    response = client.post(new, example_data([{"text": "x", "verdict": "good", "delete": True}]))
    assert response.status_code == 200 and response.context["formset"].non_form_errors()
    assert not GuidelineExample.objects.exists()
    assert client.get(reverse("project-example-new", args=[project.pk]) + "?image=nope")["Location"] \
        == reverse("project-example-pick", args=[project.pk])


# ---------------------------------------------------------------- labelers


def test_add_existing_labeler_and_refuse_others(client, users, project):
    newbie = accounts.create_user("newbie", "pw-long-enough-1", "labeler")
    login(client, users)
    url = reverse("project-labelers", args=[project.pk])
    response = client.post(url, {"action": "add", "add-username": "newbie", "add-cap_override": "40"})
    assert response.status_code == 302
    member = ProjectMember.objects.get(project=project, user=newbie)
    assert member.is_active and member.cap_override == 40
    response = client.post(url, {"action": "add", "add-username": "engineer1"})
    assert response.status_code == 200 and "username" in response.context["add_form"].errors
    response = client.post(url, {"action": "add", "add-username": "ghost"})
    assert "No account with this username." in response.content.decode()


def test_create_labeler_account(client, users, project):
    login(client, users)
    url = reverse("project-labelers", args=[project.pk])
    response = client.post(url, {"action": "create", "new-username": "minji", "new-name": "김민지",
                                 "new-password": "short"})
    assert response.status_code == 200 and "password" in response.context["new_form"].errors
    response = client.post(url, {"action": "create", "new-username": "lab0", "new-password": "long-enough-pass"})
    assert "username" in response.context["new_form"].errors
    response = client.post(url, {"action": "create", "new-username": "minji", "new-name": "김민지",
                                 "new-password": "long-enough-pass"})
    assert response.status_code == 302
    from accounts.models import User

    minji = User.objects.get(username="minji")
    assert (minji.role, minji.first_name) == ("labeler", "김민지") and minji.check_password("long-enough-pass")
    assert ProjectMember.objects.get(project=project, user=minji).is_active


def csv_file(text: str):
    return SimpleUploadedFile("labelers.csv", text.encode(), content_type="text/csv")


def test_import_labelers_from_csv(client, users, project, labelers):
    login(client, users)
    url = reverse("project-labelers", args=[project.pk])
    html = client.get(url).content.decode()
    assert "username,password,name,email,cap" in html
    data = "username,password,name,email,cap\nminji,first-pass-123,김민지,minji@example.com,\njunho,second-pass-456,박준호,,150\nlab0,,,,\n"
    response = client.post(url, {"action": "import", "csv-file": csv_file(data)}, follow=True)
    assert "Imported 3 rows: 2 accounts created, 0 labelers added" not in response.content.decode()
    assert "Imported 3 rows: 2 accounts created, 2 labelers added to the project." in response.content.decode()
    assert ProjectMember.objects.get(project=project, user__username="junho").cap_override == 150


def test_malformed_csv_lists_lines_and_creates_nothing(client, users, project):
    from accounts.models import User

    login(client, users)
    before = (User.objects.count(), ProjectMember.objects.count())
    data = "username,password,name\nfine,long-enough-1,Fine\n,x,\nshorty,abc,\nfine,long-enough-1,\n"
    response = client.post(reverse("project-labelers", args=[project.pk]), {"action": "import", "csv-file": csv_file(data)})
    assert response.status_code == 200
    html = response.content.decode()
    errors = html[html.index('id="csv-errors"'):]
    for line in ("Line 3", "Line 4", "Line 5"):
        assert line in errors
    assert "Line 2" not in errors
    assert (User.objects.count(), ProjectMember.objects.count()) == before
    response = client.post(reverse("project-labelers", args=[project.pk]),
                           {"action": "import", "csv-file": csv_file("name,email\nx,y\n")})
    assert "header" in response.content.decode()


def test_cap_override_set_and_cleared(client, users, project, labelers):
    login(client, users)
    url = reverse("project-member-cap", args=[project.pk, labelers[0].pk])
    back = reverse("project-labelers", args=[project.pk]) + "?page=1"
    response = client.post(url, {"cap_override": "25", "next": back})
    assert response["Location"] == back
    assert ProjectMember.objects.get(project=project, user=labelers[0]).cap_override == 25
    html = client.get(reverse("project-labelers", args=[project.pk])).content.decode()
    row = html[html.index('data-member="lab0"'):]
    assert 'value="25"' in row[:row.index("</tr>")]
    client.post(url, {"cap_override": ""})
    assert ProjectMember.objects.get(project=project, user=labelers[0]).cap_override is None
    response = client.post(url, {"cap_override": "-3", "next": "https://evil.example/"})
    assert response["Location"] == reverse("project-labelers", args=[project.pk])
    assert ProjectMember.objects.get(project=project, user=labelers[0]).cap_override is None


def test_deactivate_returns_leases_and_reactivate_keeps_cap(client, users, project, labelers):
    services.set_member_cap(project, labelers[0], 7)
    leases = services.next_assignments(project, labelers[0], count=2)
    assert len(leases) == 2
    login(client, users)
    url = reverse("project-member-active", args=[project.pk, labelers[0].pk])
    response = client.post(url, {"active": "0"}, follow=True)
    assert "lab0 deactivated; 2 open leases returned to the queue." in response.content.decode()
    member = ProjectMember.objects.get(project=project, user=labelers[0])
    assert not member.is_active
    assert set(Assignment.objects.filter(labeler=labelers[0]).values_list("status", flat=True)) == {"returned"}
    assert sum(ProjectImage.objects.filter(project=project).values_list("slots_taken", flat=True)) == 0
    client.post(url, {"active": "1"})
    member.refresh_from_db()
    assert member.is_active and member.cap_override == 7


def test_labelers_search_and_lease_counts(client, users, project, labelers):
    services.next_assignment(project, labelers[1])
    login(client, users)
    url = reverse("project-labelers", args=[project.pk])
    html = client.get(url).content.decode()
    row = html[html.index('data-member="lab1"'):]
    assert "data-leases>1<" in row[:row.index("</tr>")]
    html = client.get(url, {"q": "lab2"}).content.decode()
    assert 'data-member="lab2"' in html and 'data-member="lab1"' not in html


# ---------------------------------------------------------------- reports


def test_reports_keep_and_exclude(client, users, project, labelers):
    a, b = services.next_assignments(project, labelers[0], count=2)  # two different photos
    services.report(a, labelers[0], "personal_info", "얼굴이 보여요")
    services.report(b, labelers[0], "broken")
    login(client, users)
    url = reverse("project-reports", args=[project.pk])
    html = client.get(url).content.decode()
    assert f'data-report="{a.pk}"' in html and f'data-report="{b.pk}"' in html
    assert "얼굴이 보여요" in html and "Personal information" in html

    client.post(reverse("project-report-resolve", args=[project.pk, a.pk]), {"resolution": "kept"})
    client.post(reverse("project-report-resolve", args=[project.pk, b.pk]), {"resolution": "excluded", "confirm": "1"})
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.report_resolution, b.report_resolution) == ("kept", "excluded")
    assert not ProjectImage.objects.get(project=project, image_id=a.image_id).excluded
    assert ProjectImage.objects.get(project=project, image_id=b.image_id).excluded

    assert "No open reports." in client.get(url).content.decode()
    html = client.get(url, {"state": "resolved"}).content.decode()
    assert f'data-report="{a.pk}"' in html and f'data-report="{b.pk}"' in html
    response = client.post(reverse("project-report-resolve", args=[project.pk, a.pk]), {"resolution": "maybe"},
                           follow=True)
    assert "Choose kept or excluded." in response.content.decode()
    # Not a reported assignment: 404.
    c = services.next_assignment(project, labelers[2])
    assert client.post(reverse("project-report-resolve", args=[project.pk, c.pk]),
                       {"resolution": "kept"}).status_code == 404


def test_exclude_asks_first_without_script(client, users, project, labelers):
    """A post without the page's confirm (no script ran) lands on a page that asks; nothing changed yet."""
    a = services.next_assignment(project, labelers[0])
    services.report(a, labelers[0], "broken", "반쯤 잘렸어요")
    login(client, users)
    reports = reverse("project-reports", args=[project.pk]) + "?state=all"
    response = client.post(reverse("project-report-resolve", args=[project.pk, a.pk]),
                           {"resolution": "excluded", "next": reports})
    confirm_url = reverse("project-report-exclude", args=[project.pk, a.pk])
    assert response.status_code == 302 and response["Location"].startswith(confirm_url)
    a.refresh_from_db()
    assert a.report_resolution == "" and not ProjectImage.objects.get(project=project, image_id=a.image_id).excluded

    html = client.get(response["Location"]).content.decode()
    assert "Exclude this photo?" in html and "반쯤 잘렸어요" in html
    assert 'name="confirm" value="1"' in html and f'href="{reports}"' in html  # cancel goes back
    # The reports page's own button asks in the page's script, which then posts confirm=1.
    table = client.get(reports).content.decode()
    assert 'data-confirm-field="confirm"' in table
    response = client.post(reverse("project-report-resolve", args=[project.pk, a.pk]),
                           {"resolution": "excluded", "confirm": "1", "next": reports})
    assert response["Location"] == reports
    assert ProjectImage.objects.get(project=project, image_id=a.image_id).excluded
    # Only planners see the question.
    client.force_login(users["engineer"])
    assert client.get(confirm_url).status_code == 403


@pytest.mark.parametrize("before", ["", "kept"])
def test_undo_exclude_reopens_report_and_queue(client, users, project, labelers, before):
    a = services.next_assignment(project, labelers[0])
    services.report(a, labelers[0], "inappropriate")
    if before:
        services.resolve_report(a, before)
    pi = ProjectImage.objects.get(project=project, image_id=a.image_id)
    slots = pi.slots_taken
    login(client, users)
    url = reverse("project-reports", args=[project.pk])
    response = client.post(reverse("project-report-resolve", args=[project.pk, a.pk]),
                           {"resolution": "excluded", "confirm": "1"}, follow=True)
    html = response.content.decode()
    assert "The photo is out of the project: nobody gets it again." in html
    undo_url = reverse("project-report-undo", args=[project.pk, a.pk])
    assert f'action="{undo_url}"' in html and ">Undo</button>" in html
    pi.refresh_from_db()
    assert pi.excluded
    # Offered once: the next visit of the page has no Undo.
    assert undo_url not in client.get(url).content.decode()

    html = client.post(undo_url, {"previous": before}, follow=True).content.decode()
    assert "Undone: the photo is back in the project&#x27;s queue." in html
    a.refresh_from_db()
    pi.refresh_from_db()
    assert a.report_resolution == before and not pi.excluded and pi.slots_taken == slots
    # The photo is handed out again (to another labeler).
    assert a.image_id in {x.image_id for x in services.next_assignments(project, labelers[1], count=10)}
    # Nothing left to undo: a clear error, no change.
    html = client.post(undo_url, {"previous": ""}, follow=True).content.decode()
    assert "nothing to undo" in html
    a.refresh_from_db()
    assert a.report_resolution == before


def test_undo_keeps_photo_out_while_another_report_excludes_it(project, labelers):
    a = services.next_assignment(project, labelers[0])
    services.report(a, labelers[0], "broken")
    # The same photo, reported by a second labeler.
    b = next(x for x in services.next_assignments(project, labelers[1], count=10) if x.image_id == a.image_id)
    services.report(b, labelers[1], "broken")
    services.resolve_report(a, "excluded")
    services.resolve_report(b, "excluded")
    services.undo_report_resolution(a)
    assert ProjectImage.objects.get(project=project, image_id=a.image_id).excluded
    services.undo_report_resolution(b, "kept")
    assert not ProjectImage.objects.get(project=project, image_id=a.image_id).excluded
    with pytest.raises(services.LabelingError):
        services.undo_report_resolution(b)  # not excluded any more


def test_open_reports_badge_on_project_tabs(client, users, project, labelers):
    a = services.next_assignment(project, labelers[0])
    services.report(a, labelers[0], "inappropriate")
    login(client, users)
    html = client.get(reverse("project-labelers", args=[project.pk])).content.decode()
    assert 'class="count-badge"' in html

