"""Hallucination and specificity scores (issue 12, items 1 and 2): a tiny CLIP trained inside the
test on generated scenes with Korean descriptions (curation.tinyclip) must tell swapped comments
from their own (ROC AUC >= 0.9 on held-out pairs); the math of the scores and the fixed sample;
the step end to end with that model as the configured checkpoint (scores stored, swapped
comments flagged with their evidence, a rerun changes nothing, no weights: skipped with the
reason); the specificity numbers per labeler and the page and API."""
from __future__ import annotations

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import translation

from curation import embedding as E
from curation import scores as S
from curation import tinyclip as T


@pytest.fixture
def english(settings):
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny CLIP, trained once for the module on one CPU thread, saved as a checkpoint."""
    import torch

    threads = torch.get_num_threads()
    model, preprocess, tokenizer = T.train(threads=1)
    torch.set_num_threads(threads)
    path = T.save(model, tmp_path_factory.mktemp("tinyclip"))
    return model, preprocess, tokenizer, path


# ---------------------------------------------------------------- the scores (no database)

@pytest.mark.once
def test_score_pairs_counts_better_sample_photos_and_leaves_the_own_photo_out():
    sample = np.eye(4, dtype=np.float32)               # four orthogonal photos
    comment = np.array([[0.8, 0.6, 0, 0]], dtype=np.float32)
    own = sample[[1]]                                   # its own photo is sample photo 1
    s = S.score_pairs(comment, own, sample, exclude=np.array([[False, True, False, False]]))
    # Of the three other sample photos, one (photo 0: cos 0.8) fits better than its own (0.6).
    assert s.hallucination[0] == pytest.approx(1 / 3)
    assert s.similarity[0] == pytest.approx(0.6)
    assert s.specificity[0] == pytest.approx(0.6 - 0.8 / 3)
    assert s.sample_size[0] == 3 and s.better[0] == [0]


@pytest.mark.once
def test_a_bland_comment_is_not_called_a_hallucination_but_a_wrong_one_is():
    rng = np.random.default_rng(5)

    def unit(v):
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

    # Photos of 10 subjects (a dog, a bowl of noodles, ...); comments name a subject.
    themes = unit(rng.normal(size=(10, 32)))
    theme_of = rng.integers(10, size=300)
    photos = unit(themes[theme_of] + 0.6 * rng.normal(size=(300, 32)) / np.sqrt(32))
    sample, own, own_theme = photos[:100], photos[100:], theme_of[100:]
    n = len(own)
    noise = 0.5 * rng.normal(size=own.shape) / np.sqrt(32)
    right = unit(themes[own_theme] + noise)                  # about its own photo's subject
    wrong = unit(themes[(own_theme + 1) % 10] + noise)       # about another subject
    # Names none; fewer than the rule's quarter of the project's comments (here a fifth).
    bland = unit(np.tile(rng.normal(size=(1, 32)), (n, 1)) + 0.1 * rng.normal(size=own.shape))[:n // 2]
    s = S.score_pairs(np.vstack([right, wrong, bland]), np.vstack([own, own, own[:n // 2]]), sample)
    h = [s.hallucination[:n], s.hallucination[n:2 * n], s.hallucination[2 * n:]]
    reach = [s.reach[:n], s.reach[n:2 * n], s.reach[2 * n:]]
    assert h[0].mean() < 0.15 < 0.4 < h[1].mean()     # the rank tells right from wrong ...
    assert 0.2 < h[2].mean() < 0.8                     # ... but a bland comment's rank is noise
    threshold = float(np.quantile(h[1], 0.5))          # the calibration's rule at target 0.5 (wrong = null)
    floor = float(np.quantile(s.reach, 0.25))          # the project's lowest quarter of reach
    by_rank = [np.mean(h[row] >= threshold) for row in range(3)]
    flagged = [np.mean([h[row][i] >= threshold and not S.is_bland(reach[row][i], floor) for i in range(len(h[row]))])
               for row in range(3)]
    assert by_rank[2] > 0.15                            # the rank alone calls many bland comments wrong
    assert flagged[1] > 0.4 and flagged[0] < 0.05 and flagged[2] < 0.02, (by_rank, flagged)
    assert not S.is_bland(0.1, None) and not S.is_bland(None, 0.1)


@pytest.mark.once
def test_the_sample_is_fixed_per_project_and_model_and_stable_when_photos_arrive(settings):
    photos = [f"p{i}" for i in range(100)]
    first = S.sample_ids(1, "m", photos, size=10)
    assert first == S.sample_ids(1, "m", list(reversed(photos)), size=10)
    assert first != S.sample_ids(2, "m", photos, size=10) and first != S.sample_ids(1, "m2", photos, size=10)
    grown = S.sample_ids(1, "m", photos + [f"q{i}" for i in range(10)], size=10)
    assert len(set(first) & set(grown)) >= 5  # a new photo only joins where its hash is small


@pytest.mark.once
def test_a_tiny_clip_trained_here_flags_swapped_comments_with_auc_above_0_9(trained):
    from sklearn.metrics import roc_auc_score

    model, preprocess, tokenizer, _path = trained
    pool, texts, labels = T.held_out_pairs(200, seed=99)
    sample_scenes = T.scenes(128, seed=4321)
    photos, comments = T.embed(model, preprocess, tokenizer, [T.draw(s) for s in pool], texts)
    sample, _t = T.embed(model, preprocess, tokenizer, [T.draw(s) for s in sample_scenes], ["-"])
    s = S.score_pairs(comments, photos, sample)
    auc = roc_auc_score(labels, s.hallucination)
    assert auc >= 0.9, auc
    # Specificity: own descriptions fit their photo clearly better than the average photo.
    assert s.specificity[labels == 0].mean() > s.specificity[labels == 1].mean() + 0.1


# ---------------------------------------------------------------- the step on a project

def _configure(settings, path, target=0.9):
    E._LOADED.clear()
    settings.CURATION_EMBED = {**settings.CURATION_EMBED, "MODEL": T.NAME, "PRETRAINED": "", "CHECKPOINT": path,
                               "DEVICE": "cpu", "BATCH": 32, "THREADS": 1, "REMOTE": False}
    settings.CURATION = {**settings.CURATION, "HALLUCINATION_TARGET_RATE": target, "SCORE_SAMPLE": 64}


def scene_project(make_project, labelers, n=36, swapped=(1, 5, 9, 14, 20, 27)):
    """A project of `n` generated scenes (files in storage), one submitted comment each: its
    description, or for the photos at `swapped`, the description of a scene of another class."""
    from django.utils import timezone

    from labeling.models import Assignment, AssignmentStatus, Comment, ProjectImage

    project = make_project(n, members=labelers[:2])
    images = list(ProjectImage.objects.filter(project=project).order_by("image_id").values_list("image", flat=True))
    ctype = project.comment_types.order_by("pk").first()
    now = timezone.now()
    truth = {}
    for i, image_id in enumerate(images):
        scene = T.Scene(i % len(T.CLASSES), 5000 + i)
        name = default_storage.save(f"images/s/{image_id}.jpg", ContentFile(T.jpeg(T.draw(scene))))
        from datasets.models import Image

        Image.objects.filter(pk=image_id).update(file=name)
        text = scene.description()
        if i in swapped:
            text = T.Scene((scene.cls + 7) % len(T.CLASSES), scene.seed).description()
        a = Assignment.objects.create(project=project, image_id=image_id, labeler=labelers[i % 2],
                                      status=AssignmentStatus.SUBMITTED, leased_at=now, expires_at=now, submitted_at=now)
        c = Comment.objects.create(assignment=a, comment_type=ctype, text=text, length=len(text), key=text)
        truth[c.pk] = i in swapped
    return project, truth


@pytest.fixture
def scored(settings, trained, make_project, labelers):
    from curation import runs

    _configure(settings, trained[3])
    project, truth = scene_project(make_project, labelers)
    run = runs.run_here(runs.start_run(project, ["scores"], enqueue=False))
    yield project, truth, run
    E._LOADED.clear()


@pytest.mark.django_db
def test_the_step_scores_every_comment_once_and_flags_swapped_ones_with_evidence(scored, english):
    from curation import runs
    from curation.models import CommentScore, Flag, FlagKind, ScoreCalibration, ScoreKind

    project, truth, run = scored
    assert run.steps == ["embed_images", "embed_comments", "scores"]
    step = run.run_steps.get(name="scores")
    assert step.state == "done", step.reason
    assert CommentScore.objects.filter(project=project).count() == len(truth)
    identity = E.current_identity("comment")
    calibration = ScoreCalibration.objects.get(model=identity, kind=ScoreKind.HALLUCINATION)
    assert calibration.target_rate == 0.9 and calibration.null_pairs > 0
    assert 0 < calibration.threshold < 0.5  # 90% of wrong-photo pairs above it
    assert ScoreCalibration.objects.filter(model=identity, kind=ScoreKind.SPECIFICITY).exists()

    flagged = {f.comment_id: f for f in Flag.objects.filter(kind=FlagKind.HALLUCINATION)}
    swapped = {pk for pk, bad in truth.items() if bad}
    assert len(swapped & set(flagged)) >= len(swapped) - 1, (swapped, set(flagged))
    assert len(set(flagged) - swapped) <= len(truth) // 4  # at 90% recall, some own descriptions too
    f = flagged[next(iter(swapped & set(flagged)))]
    ev = f.evidence
    assert f.detector == "scores" and f.detector_version.startswith(f"{calibration.pk}:")
    assert ev["threshold"] == calibration.threshold and ev["model"] == identity
    assert ev["hallucination"] == f.score >= calibration.threshold
    assert 1 <= len(ev["better_photos"]) <= 5 and ev["calibration"] == calibration.pk and ev["calibrated_at"]
    # Swapped comments fit their photo worse than their own descriptions do.
    scores = dict(CommentScore.objects.values_list("comment_id", "hallucination"))
    assert np.mean([scores[c] for c in swapped]) > np.mean([scores[c] for c in truth if c not in swapped]) + 0.3

    # A rerun scores nothing twice and changes no flag.
    before = list(Flag.objects.order_by("pk").values_list("pk", "score", "evidence", "status"))
    again = runs.run_here(runs.start_run(project, ["scores"], enqueue=False))
    counts = again.run_steps.get(name="scores").counts
    assert counts.get("scored", 0) == 0 and counts.get("hallucination_new", 0) == 0
    assert CommentScore.objects.count() == len(truth)
    assert list(Flag.objects.order_by("pk").values_list("pk", "score", "evidence", "status")) == before


@pytest.mark.django_db
def test_a_small_projects_calibration_draws_the_pairs_asked_for_whatever_its_keys(scored, monkeypatch):
    """36 comments and 2,000 pairs asked for: each comment is paired with several other photos (one
    each made the threshold a quantile of 36 numbers, and the flags changed with the database's
    keys, which seed the draw). With every pair drawn, other keys give the same null."""
    from curation.models import CommentScore

    project, truth, _run = scored
    model = CommentScore.objects.values_list("model", flat=True).first()
    n = len(truth)
    assert len(S.null_scores(model, project, pairs=400).hallucination) == n * 12  # ceil(400 / 36) each
    assert len(S.null_scores(model, project, pairs=10).hallucination) == 10  # fewer than the comments: one each
    every = S.null_scores(model, project)  # 36 x 35 pairs exist: all of them, each once
    assert len(every.hallucination) == n * (n - 1)
    salted = S._rank_key
    monkeypatch.setattr(S, "_rank_key", lambda p, m, i: salted(f"{p}-other-keys", m, i))
    again = S.null_scores(model, project)
    assert np.array_equal(np.sort(again.hallucination), np.sort(every.hallucination))


@pytest.mark.django_db
def test_low_specificity_flags_only_where_the_project_sets_a_threshold(scored):
    from curation import runs
    from curation.models import CommentScore, Flag, FlagKind
    from labeling import services as labeling

    project, truth, _run = scored
    assert not Flag.objects.filter(kind=FlagKind.LOW_SPECIFICITY).exists()
    cut = float(np.median(list(CommentScore.objects.values_list("specificity", flat=True))))
    labeling.update_project(project, specificity_flag_below=cut)
    runs.run_here(runs.start_run(project, ["scores"], enqueue=False))
    low = Flag.objects.filter(kind=FlagKind.LOW_SPECIFICITY)
    expected = CommentScore.objects.filter(specificity__lt=cut).count()
    assert low.count() == expected > 0
    assert all(f.evidence["threshold"] == cut and f.score < cut for f in low)
    # The planner clears the threshold: the next run withdraws the open flags.
    from curation.models import FlagStatus

    labeling.update_project(project, specificity_flag_below=None)
    again = runs.run_here(runs.start_run(project, ["scores"], enqueue=False))
    assert again.run_steps.get(name="scores").counts["low_specificity_withdrawn"] == expected
    assert set(low.values_list("status", flat=True)) == {FlagStatus.WITHDRAWN}


@pytest.mark.django_db
def test_without_weights_the_step_is_skipped_with_the_reason(settings, make_project, labelers, tmp_path, english):
    from curation import runs
    from curation.models import CommentScore

    settings.CURATION_EMBED = {**settings.CURATION_EMBED, "MODEL": T.NAME, "PRETRAINED": "",
                               "CHECKPOINT": str(tmp_path / "missing.pt"), "REMOTE": False}
    E._LOADED.clear()
    project = make_project(2, members=labelers[:1])
    run = runs.run_here(runs.start_run(project, ["scores"], enqueue=False))
    step = run.run_steps.get(name="scores")
    assert step.state == "skipped" and "CURATION_EMBED_CHECKPOINT" in step.reason and "missing.pt" in step.reason
    assert run.status == "done" and not CommentScore.objects.exists()


@pytest.mark.django_db
def test_specificity_by_labeler_counts_generic_comments(scored, labelers):
    from curation import selectors
    from curation.models import CommentScore

    project, truth, _run = scored
    out = selectors.specificity_by_labeler(project)
    assert set(out) == {labelers[0].pk, labelers[1].pk}
    assert sum(v["scored"] for v in out.values()) == len(truth)
    values = list(CommentScore.objects.values_list("specificity", flat=True))
    for v in out.values():
        assert 0 <= v["generic"] <= v["scored"] and v["generic_share"] == pytest.approx(v["generic"] / v["scored"])
        assert min(values) <= v["median_specificity"] <= max(values)


@pytest.mark.django_db
def test_the_specificity_page_and_api_show_the_same_numbers_and_planners_set_the_threshold(scored, users, api, client,
                                                                                          english):
    from django.urls import reverse

    from curation import selectors

    project, truth, _run = scored
    url = reverse("curation-specificity", args=[project.pk])
    client.force_login(users["engineer"])
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="specificity-histogram"' in html and 'id="least-specific"' in html and "the 0.10 quantile" in html
    assert 'id="specificity-threshold"' not in html  # engineers read
    assert client.post(url, {"specificity_flag_below": "0.1"}).status_code == 403

    out = api("engineer").get(f"/api/curation/projects/{project.pk}/specificity/").json()
    report = selectors.specificity_report(project)
    assert out["scored"] == report["scored"] == len(truth) and out["threshold_source"] == "quantile"
    assert out["generic"] == report["generic"] and len(out["histogram"]) == selectors.HISTOGRAM_BINS
    assert {r["labeler"] for r in out["labelers"]} == set(selectors.specificity_by_labeler(project))
    assert out["clusters"][0]["mean_specificity"] <= out["clusters"][-1]["mean_specificity"]

    client.force_login(users["planner"])
    assert 'id="specificity-threshold"' in client.get(url).content.decode()
    assert client.post(url, {"specificity_flag_below": "abc"}).status_code == 200  # the form says what is wrong
    response = client.post(url, {"specificity_flag_below": "0.05"})
    assert response.status_code == 302
    project.refresh_from_db()
    assert project.specificity_flag_below == 0.05
    out = api("planner").get(f"/api/curation/projects/{project.pk}/specificity/").json()
    assert out["threshold"] == 0.05 and out["threshold_source"] == "project" and out["flag_below"] == 0.05
    assert "the threshold set for this project" in client.get(url).content.decode()
    client.post(url, {"specificity_flag_below": ""})
    project.refresh_from_db()
    assert project.specificity_flag_below is None


@pytest.mark.django_db
def test_the_review_card_of_a_hallucination_shows_score_threshold_and_better_photos(scored, users, client, english):
    from curation.models import Flag, FlagKind

    flag = Flag.objects.filter(kind=FlagKind.HALLUCINATION).order_by("-score").first()
    client.force_login(users["planner"])
    html = client.get("/curation/review/", {"kind": "hallucination"}).content.decode()
    card = html[html.index(f'data-flag="{flag.pk}"'):]
    card = card[:card.index("</article>")]
    assert "Hallucination score" in card and "Threshold" in card and "Specificity" in card
    assert "data-better-photos" in card and card.count("Better-fitting photo") == len(flag.evidence["better_photos"])
