"""Hallucination and specificity scores in a real browser: a project's Specificity tab (the
histogram, the least specific texts, the generic share per labeler; a planner sets the threshold)
and a hallucination card in the review queue with its score, threshold and the photos the comment
fits better. Scores and flags are stored as the step stores them (no model needed here).
Screenshots in test-artifacts/screenshots/."""
from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import make_photo
from tests.factories import make_labelers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

MODEL = "open_clip:tiny|sha256:0123456789abcdef"
GENERIC = ("맛있겠다", "어디야?", "와 대박")


@pytest.fixture
def scored(users, source):
    """Eight food photos, two labelers' comments on them (one writes mostly generic ones), their
    scores, a calibration, and a hallucination flag whose evidence names three better photos."""
    from curation import services as curation
    from curation.models import ScoreKind
    from datasets import services as datasets
    from datasets.models import Category
    from labeling import services
    from labeling.models import Comment

    images = [datasets.ingest_one(make_photo(480, 360, seed=7300 + i), source=source, category="food",
                                  original_name=f"dish-{i}.jpg").image for i in range(8)]
    project = services.create_project("구체성 Specificity", created_by=users["planner"], overlap=2,
                                      categories=[Category.objects.get(slug="food")])
    services.sync_project_images(project)
    labelers = make_labelers(2, prefix="spec")
    for user in labelers:
        services.add_member(project, user)
    for n, user in enumerate(labelers):
        for k in range(4):
            a = services.next_assignment(project, user)
            reaction = GENERIC[k % 3] + (" ㅋㅋ" * k if n else "") if n == 1 or k == 0 else f"국물이 진해 보여요 {k}"
            services.submit(a, user, {"reaction": reaction, "specific": f"김치찌개에 두부가 듬뿍 들어갔네요 {n}{k}번"})
    rows = []
    for n, c in enumerate(Comment.objects.select_related("assignment").order_by("pk")):
        generic = c.comment_type.slug == "reaction" and not c.text.startswith("국물")
        # By order, not by primary key (PostgreSQL's keys do not restart between tests): spec1's
        # generic texts are the project's least specific, spec0's one generic text is above them.
        if generic:
            specificity = 0.004 + 0.0005 * n if c.assignment.labeler_id == labelers[1].pk else 0.02
        else:
            specificity = 0.08 + 0.005 * n
        rows.append({"comment": c.pk, "project": project.pk, "hallucination": 0.45 if generic else 0.02,
                     "specificity": specificity, "similarity": 0.25, "sample_size": 7})
    curation.store_comment_scores(MODEL, rows)
    cal = curation.store_calibration(MODEL, ScoreKind.HALLUCINATION, threshold=0.52, target_rate=0.5, null_pairs=16,
                                     null_quantiles={"0.5": 0.52})
    curation.store_calibration(MODEL, ScoreKind.SPECIFICITY, threshold=0.0, target_rate=0.5, null_pairs=16,
                               null_quantiles={"0.5": -0.001})
    wrong = Comment.objects.filter(comment_type__slug="specific").order_by("pk").first()
    own = wrong.assignment.image_id
    better = [str(i.pk) for i in images if i.pk != own][:3]
    curation.record_flags("scores", f"{cal.pk}:{MODEL}", [{
        "kind": "hallucination", "comment": wrong, "score": 0.86, "evidence": {
            "hallucination": 0.86, "threshold": 0.52, "target_rate": 0.5, "model": MODEL, "calibration": cal.pk,
            "calibrated_at": cal.created_at.isoformat(), "specificity": -0.031, "similarity": 0.19, "sample_size": 7,
            "better_photos": better}}])
    return {"project": project, "better": better, "comment": wrong}


def _english(page):
    page.click("button.lang[value=en]")
    page.wait_for_load_state()


def test_the_specificity_tab_shows_the_distribution_the_generic_texts_and_labelers(new_page, users, scored, login,
                                                                                    shot):
    project = scored["project"]
    page = new_page()
    login(page, "planner1")
    page.goto(reverse("project-detail", args=[project.pk]))
    page.locator(f"nav.subnav a[href='{reverse('curation-specificity', args=[project.pk])}']").click()  # the tab
    page.wait_for_load_state()
    _english(page)
    assert page.locator(".spec-bin").count() == 20
    assert page.locator(".spec-bin.is-generic").count() >= 1
    assert "the 0.10 quantile of this project's scores" in page.locator("#generic-rule").inner_text()
    least = page.locator("#least-specific tbody tr").first.inner_text()
    assert any(g in least for g in GENERIC)
    rows = page.locator("#generic-by-labeler tbody tr")
    assert rows.count() == 2 and "spec1" in rows.first.inner_text()  # the generic one first
    shot(page, "scores-specificity-page")

    page.fill("#id_specificity_flag_below", "0.02")
    page.click("#specificity-threshold button[type=submit]")
    page.wait_for_load_state()
    assert "the threshold set for this project" in page.locator("#generic-rule").inner_text()
    project.refresh_from_db()
    assert project.specificity_flag_below == 0.02
    shot(page, "scores-specificity-threshold-set")

    phone = new_page(viewport=(375, 740))
    login(phone, "engineer1")
    phone.goto(reverse("curation-specificity", args=[project.pk]))
    assert phone.locator("#specificity-threshold").count() == 0  # engineers read
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375
    shot(phone, "scores-specificity-phone")


def test_a_hallucination_card_shows_score_threshold_and_the_photos_the_comment_fits_better(new_page, users, scored,
                                                                                          login, shot):
    page = new_page()
    login(page, "planner1")
    page.goto(reverse("curation-review") + "?kind=hallucination")
    _english(page)
    card = page.locator("article.flag-card").first
    text = card.inner_text()
    assert scored["comment"].text in text
    assert "Hallucination score 0.860" in text and "Threshold 0.52" in text and "Specificity -0.031" in text
    thumbs = card.locator("[data-better-photos] img")
    assert thumbs.count() == 3
    for i in range(3):  # the thumbnails load
        thumbs.nth(i).scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumbs.nth(i).element_handle())
    assert MODEL in text
    shot(page, "scores-hallucination-card")
