"""Embeddings and the semantic duplicate tier (issue 11, items 1 and 2): the model as
configuration (a tiny open_clip model registered from a config, saved as a local checkpoint),
the clear reason when weights are missing, the embedding steps (only new or other-model work,
idempotent), the vector search, and the semantic duplicate groups with their keeper."""
from __future__ import annotations

import json

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import translation

from curation import embedding as E
from curation import vectors as V
from curation.models import Embedding, EmbeddingSegment, Flag, FlagKind
from datasets.models import Image, ImageStatus, Licence
from tests.conftest import make_photo
from tests.factories import fake_images

TINY = "test-tiny-clip"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}



@pytest.fixture(autouse=True)
def english(settings):
    """These tests read the English messages (the Korean catalogue translates them all)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


@pytest.fixture(scope="module")
def tiny_name(tmp_path_factory):
    """A tiny open_clip model name registered at run time (no download)."""
    import open_clip

    path = tmp_path_factory.mktemp("configs") / f"{TINY}.json"
    path.write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(path)
    return TINY


def save_checkpoint(tmp_path, tiny_name, seed: int):
    """A tiny model with weights from `seed`, saved as open_clip's trainer saves them."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    model = open_clip.create_model(tiny_name, pretrained=None)
    path = tmp_path / f"tiny-{seed}.pt"
    torch.save({"epoch": 1, "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    return str(path), model


@pytest.fixture
def configured(settings, tmp_path, tiny_name):
    """The settings point at a tiny local checkpoint; returns a function to switch checkpoints."""
    E._LOADED.clear()

    def use(seed: int):
        path, model = save_checkpoint(tmp_path, tiny_name, seed)
        settings.CURATION_EMBED = {**settings.CURATION_EMBED, "MODEL": tiny_name, "PRETRAINED": "",
                                   "CHECKPOINT": path, "DEVICE": "cpu", "BATCH": 4, "THREADS": 2}
        return path, model

    use(1)
    yield use
    E._LOADED.clear()


def Run(steps=("embed_images", "embed_comments", "semantic")):
    """A curation run over the whole catalogue (not started: the tests call the steps)."""
    from curation import runs

    return runs.start_run(None, list(steps), enqueue=False)


def photos_with_files(source, n, start=0):
    rows = fake_images(source, n, start=start)
    for i, img in enumerate(rows):
        name = default_storage.save(f"images/t/{img.pk}.jpg", ContentFile(make_photo(96, 72, seed=start + i)))
        Image.objects.filter(pk=img.pk).update(file=name)
    return rows


# ---------------------------------------------------------------- the model

@pytest.mark.once
def test_tiny_model_from_config_embeds_texts_as_unit_vectors(tiny_name, settings):
    loaded = E.build_model(E.EmbedSpec(model=tiny_name, device="cpu"), allow_random=True)
    vec = E.embed_texts(loaded, ["맛있겠다", "a photo of food", "정말 멋진 풍경"], batch_size=2)
    assert vec.shape == (3, 16) and loaded.dim == 16
    assert np.allclose(np.linalg.norm(vec, axis=1), 1, atol=1e-5)
    assert loaded.identity == f"open_clip:{tiny_name}|random"


@pytest.mark.once
def test_a_local_checkpoint_loads_its_weights_and_its_digest_is_the_identity(tmp_path, tiny_name):
    import hashlib

    import torch

    path, model = save_checkpoint(tmp_path, tiny_name, seed=3)
    loaded = E.build_model(E.EmbedSpec(model=tiny_name, checkpoint=path, device="cpu"))
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    assert loaded.identity == f"open_clip:{tiny_name}|sha256:{digest[:16]}"
    tokens = loaded.tokenizer(["사진"])
    with torch.inference_mode():
        expected = model.eval().encode_text(tokens)
    assert np.allclose(E.embed_texts(loaded, ["사진"]), V.normalise(expected.numpy()), atol=1e-5)


@pytest.mark.once
def test_missing_weights_give_a_reason_that_says_what_to_set_and_what_is_off(tmp_path, tiny_name, settings):
    for spec in (E.EmbedSpec(model=tiny_name, checkpoint=str(tmp_path / "nope.pt")),
                 E.EmbedSpec(model="xlm-roberta-base-ViT-B-32", pretrained="laion5b_s13b_b90k"),
                 E.EmbedSpec(model="ViT-B-32", pretrained="no-such-tag")):
        reason = E.weights_problem(spec)
        assert "CURATION_EMBED_CHECKPOINT" in reason and "semantic duplicates" in reason, reason
        with pytest.raises(E.WeightsUnavailable, match="CURATION_EMBED_CHECKPOINT"):
            E.build_model(spec)
    settings.CURATION_EMBED = {**settings.CURATION_EMBED, "CHECKPOINT": str(tmp_path / "nope.pt")}
    assert "nope.pt" in E.EmbedImages().unavailable(None)
    # GPU workers hold the model: the planning machine does not look for it.
    settings.CURATION_EMBED = {**settings.CURATION_EMBED, "REMOTE": True}
    assert E.EmbedImages().unavailable(None) is None


# ---------------------------------------------------------------- the steps

@pytest.mark.django_db
def test_embed_images_stores_vectors_with_the_model_and_only_redoes_other_models_work(source, configured):
    photos_with_files(source, 5)
    step = E.EmbedImages()
    run = Run()
    assert step.unavailable(run) is None
    todo = step.plan(run)
    assert len(todo) == 5
    counts = step.process(run, todo[:3])
    assert counts["embedded"] == 3
    counts = step.process(run, todo)  # a redelivered / overlapping chunk: only the two left
    assert counts == {"embedded": 2, "skipped": 3, "unreadable": 0}
    identity = E.model_identity()
    assert set(Embedding.objects.values_list("model", flat=True)) == {identity}
    assert step.plan(run) == [] and step.process(run, todo)["embedded"] == 0  # a second run embeds nothing
    seg = EmbeddingSegment.objects.first()
    assert (seg.kind, seg.dim, seg.model) == ("image", 16, identity) and default_storage.exists(seg.path)
    ids, matrix = E.stored_vectors("image", identity)
    assert sorted(map(str, ids)) == sorted(todo) and matrix.shape == (5, 16) and matrix.dtype == np.float16
    # A photo added later: only it is planned.
    new = photos_with_files(source, 1, start=100)
    assert step.plan(run) == [str(new[0].pk)]
    # Another model (another checkpoint): everything again, the old vectors stay as they were.
    configured(2)
    assert len(step.plan(run)) == 6
    assert step.process(run, step.plan(run))["embedded"] == 6
    assert Embedding.objects.count() == 5 + 6 and len(set(Embedding.objects.values_list("model", flat=True))) == 2


@pytest.mark.django_db
def test_unreadable_photos_are_counted_and_planned_again(source, configured):
    good, bad = photos_with_files(source, 2)
    Image.objects.filter(pk=bad.pk).update(file="images/missing.jpg")
    step, run = E.EmbedImages(), Run()
    counts = step.process(run, step.plan(run))
    assert counts == {"embedded": 1, "skipped": 0, "unreadable": 1}
    assert step.plan(run) == [str(bad.pk)]


@pytest.mark.django_db
def test_embed_comments_embeds_each_comment_once(labeled_comments, configured):
    step, run = E.EmbedComments(), Run()
    todo = step.plan(run)
    assert len(todo) == labeled_comments
    assert step.process(run, todo)["embedded"] == labeled_comments
    assert step.plan(run) == []
    assert Embedding.objects.filter(comment__isnull=False).count() == labeled_comments


@pytest.fixture
def labeled_comments(make_project, labelers):
    from labeling import services
    from labeling.models import Comment
    from tests.factories import texts

    project = make_project(2, members=labelers[:1])
    for n in range(2):
        a = services.next_assignment(project, labelers[0])
        services.submit(a, labelers[0], texts(900 + n))
    return Comment.objects.count()


# ---------------------------------------------------------------- search and semantic duplicates

def planted(n=3000, pairs=40, d=64, seed=0):
    rng = np.random.default_rng(seed)
    x = V.normalise(rng.standard_normal((n, d)))
    a = rng.choice(n, size=pairs, replace=False)
    b = (a + 1 + rng.integers(0, n - 1, size=pairs)) % n
    b = np.setdiff1d(b, a)[: len(a)]
    a = a[: len(b)]
    x[b] = V.normalise(x[a] + 0.15 * V.normalise(rng.standard_normal((len(b), d))))
    return x, a, b


@pytest.mark.once
def test_clustered_search_finds_what_exact_all_pairs_search_finds():
    x, a, b = planted()
    exact = V.exact_pairs(x, 0.95)
    found = V.near_duplicates(x, 0.95, exact_below=0, clusters=30)
    assert set(zip(found.a.tolist(), found.b.tolist())) == set(zip(exact.a.tolist(), exact.b.tolist()))
    assert {(min(p), max(p)) for p in zip(a.tolist(), b.tolist())} <= set(zip(found.a.tolist(), found.b.tolist()))
    assert (found.similarity >= 0.95).all() and (found.clusters >= 0).all()
    # Queries: only pairs that involve a query row.
    q = V.near_duplicates(x, 0.95, exact_below=0, clusters=30, queries=[int(b[0])])
    assert list(zip(q.a.tolist(), q.b.tolist())) == [(min(a[0], b[0]), max(a[0], b[0]))]


@pytest.mark.once
def test_segments_round_trip_as_float16_unit_vectors():
    x = np.random.default_rng(1).standard_normal((7, 12)) * 5
    ids, vec = V.unpack(V.pack(list("abcdefg"), x))
    assert ids == list("abcdefg") and vec.dtype == np.float16
    assert np.allclose(vec.astype(np.float32), V.normalise(x), atol=1e-3)


@pytest.mark.django_db
def test_semantic_duplicates_group_near_identical_photos_with_the_right_keeper(source, configured, settings):
    from curation.services import store_embeddings

    rows = fake_images(source, 7)
    a, b, c, d, e, f, g = (str(r.pk) for r in rows)
    # b is the largest of its group; e has the better licence of d/e (same size).
    Image.objects.filter(pk=b).update(original_width=4000, original_height=3000)
    free = Licence.objects.create(code="test-free", name="Free", commercial_use=True, attribution_required=False)
    Image.objects.filter(pk=e).update(licence=free)
    rng = np.random.default_rng(5)
    base = V.normalise(rng.standard_normal((7, 16)))
    base[1] = base[0] + 0.05 * base[6]  # b ~ a
    base[2] = base[0] + 0.1 * base[5]  # c ~ a
    base[4] = base[3] + 0.05 * base[6]  # e ~ d
    base = V.normalise(base)
    identity = E.model_identity()
    store_embeddings("image", identity, [a, b, c, d], base[:4])
    store_embeddings("image", identity, [e, f, g], base[4:])
    store_embeddings("image", "open_clip:other|x", [a, f], base[[0, 0]])  # another model's: ignored
    Image.objects.filter(pk=g).update(status=ImageStatus.EXCLUDED)  # excluded: left out

    step, run = E.SemanticDuplicates(), Run()
    assert step.unavailable(run) is None
    counts = step.finish(run)
    assert counts["groups"] == 2 and counts["flagged"] == 5
    flags = {str(fl.image_id): fl for fl in Flag.objects.filter(kind=FlagKind.SEMANTIC_DUPLICATE_PHOTO)}
    assert set(flags) == {a, b, c, d, e}
    assert {str(flags[x].keeper_id) for x in (a, b, c)} == {b} and {str(flags[x].keeper_id) for x in (d, e)} == {e}
    assert flags[a].group_key == flags[c].group_key != flags[d].group_key
    ev = flags[c].evidence
    assert ev["model"] == identity and ev["threshold"] == settings.CURATION_SEMANTIC["THRESHOLD"]
    assert ev["similarity"] >= 0.95 and flags[c].score == ev["similarity"] and flags[c].detector == "semantic"
    # Idempotent: a second pass changes nothing.
    again = step.finish(run)
    assert again["flags_created"] == 0 and again["flags_unchanged"] == 5


@pytest.mark.django_db
def test_semantic_duplicates_without_weights_or_vectors_say_why(source, settings, tmp_path):
    settings.CURATION_EMBED = {**settings.CURATION_EMBED, "CHECKPOINT": str(tmp_path / "gone.pt")}
    reason = E.SemanticDuplicates().unavailable(Run())
    assert "gone.pt" in reason and "semantic duplicates" in reason


@pytest.mark.once
def test_the_platform_worker_runs_curation_without_torch(tmp_path):
    """requirements.txt has no torch: curation imports, and the embedding steps say why they are off."""
    from pathlib import Path

    from tests.conftest import fresh_python

    root = Path(__file__).resolve().parent.parent
    out = fresh_python(f"""
        import json, os, sys
        sys.path.insert(0, {str(root)!r})
        for name in ("torch", "open_clip", "torchvision"):
            sys.modules[name] = None  # as if not installed
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
        import django
        django.setup()
        from django.utils import translation
        translation.activate("en")
        from curation import embedding, vectors
        import numpy as np
        x = vectors.normalise(np.eye(3))
        print(json.dumps({{"reason": embedding.weights_problem(), "pairs": len(vectors.exact_pairs(x, 0.9)),
                          "steps": [s.name for s in embedding.STEPS]}}))
    """, tmp_path, tmp_path, env={"PLATFORM_VAR_DIR": str(tmp_path / "var")})
    assert "torch and open_clip are not installed" in out["reason"] and "semantic duplicates" in out["reason"]
    assert out["steps"] == ["embed_images", "embed_comments", "semantic"] and out["pairs"] == 0


@pytest.mark.django_db
def test_a_run_embeds_the_photos_then_groups_a_copy_with_its_original(source, configured, settings):
    """Through the runner (curation.runs, in this process): embed_images then semantic."""
    from PIL import Image as PILImage

    from curation import runs
    from curation.models import RunStep

    rows = photos_with_files(source, 4, start=40)
    original = rows[0]
    big = PILImage.open(default_storage.open(Image.objects.get(pk=original.pk).file.name)).resize((192, 144))
    buf = __import__("io").BytesIO()
    big.save(buf, "JPEG", quality=80)
    copy = fake_images(source, 1, start=77)[0]
    name = default_storage.save(f"images/t/{copy.pk}.jpg", ContentFile(buf.getvalue()))
    Image.objects.filter(pk=copy.pk).update(file=name, original_width=192, original_height=144)
    E._LOADED.clear()
    loaded = E.load_model()
    vec, _ = E.embed_images(loaded, [Image.objects.get(pk=pk).file.name for pk in (original.pk, copy.pk, rows[1].pk)])
    same, other = float(vec[0] @ vec[1]), float(vec[0] @ vec[2])
    settings.CURATION_SEMANTIC = {**settings.CURATION_SEMANTIC, "THRESHOLD": round((same + max(other, 0.5)) / 2, 4)}
    assert same > other  # the tiny random model still sees a copy as closer than another photo

    run = runs.run_here(runs.start_run(None, ["semantic"], enqueue=False))
    steps = {s.name: s for s in RunStep.objects.filter(run=run)}
    assert set(steps) == {"embed_images", "semantic"} and run.status == "done", [(s.name, s.state, s.reason) for s in steps.values()]
    assert steps["embed_images"].counts["embedded"] == 5
    flag = Flag.objects.get(kind=FlagKind.SEMANTIC_DUPLICATE_PHOTO, image_id=original.pk)
    assert str(flag.keeper_id) == str(copy.pk)  # the larger photo is the suggested keeper
    # Again: nothing left to embed, the same flags.
    again = runs.run_here(runs.start_run(None, ["semantic"], enqueue=False))
    assert RunStep.objects.get(run=again, name="embed_images").counts.get("embedded", 0) == 0


@pytest.mark.django_db
def test_storing_vectors_twice_or_badly_writes_nothing_more(source):
    from django.core.exceptions import ValidationError

    from curation.services import store_embeddings

    a, b = (str(r.pk) for r in fake_images(source, 2))
    vec = np.random.default_rng(0).standard_normal((2, 8))
    assert store_embeddings("image", "m", [a, b], vec) == 2
    assert store_embeddings("image", "m", [a, b], vec) == 0  # a chunk delivered twice
    assert EmbeddingSegment.objects.count() == 1
    assert len(default_storage.listdir("curation/embeddings/image")[1]) == 1
    for kind, ids, vectors in (("image", [a], vec), ("image", [a, b], vec[:, :0]),
                               ("image", [a, b], np.full((2, 8), np.nan)), ("video", [a, b], vec)):
        with pytest.raises(ValidationError):
            store_embeddings(kind, "m2", ids, vectors)
    assert EmbeddingSegment.objects.count() == 1 and Embedding.objects.count() == 2


@pytest.mark.once
def test_a_retrieval_trainer_model_folder_loads_by_its_model_name(tmp_path):
    """trainers/retrieval.py save_model: <name>.json and open_clip_model.pt in one folder."""
    import open_clip
    import torch

    name = "test-trained-tiny"
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / f"{name}.json").write_text(json.dumps(TINY_CONFIG))
    open_clip.add_model_config(folder / f"{name}.json")
    model = open_clip.create_model(name, pretrained=None)
    open_clip.factory._MODEL_CONFIGS.pop(name)  # a fresh worker knows nothing of it
    torch.save(model.state_dict(), folder / "open_clip_model.pt")
    loaded = E.build_model(E.EmbedSpec(model=name, checkpoint=str(folder / "open_clip_model.pt"), device="cpu"))
    assert loaded.dim == 16 and loaded.identity.startswith(f"open_clip:{name}|sha256:")
