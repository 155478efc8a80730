"""trainers.metrics against the reference implementations and against cases checked by hand.

The references: pycocoevalcap 1.2's scorers called directly, sacrebleu's corpus BLEU, Meteor 1.5's
jar (the one pycocoevalcap ships; run with `-m exact -lower`, needs Java: the values it gave are
also written here, from `meteor-1.5.jar test ref -l en -lower -m exact`, so the check runs without
Java too), and clip_benchmark's recall formula (LAION-AI/CLIP_benchmark, zeroshot_retrieval.py,
transcribed below with torch.topk).
"""
from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from trainers import metrics

pytestmark = pytest.mark.once

# A fixed example, already cut into morphemes (the whitespace tokenizer leaves it as it is), so
# the reference scorers see exactly what ours see.
REPLIES = {
    "p1": "빨갛 ᆫ 동그라미 가 있 네요",
    "p2": "고양이 가 귀엽 다",
    "p3": "맛있 겠 다",
}
REFERENCES = {
    "p1": ["빨갛 ᆫ 동그라미 가 있 어요", "노랗 ᆫ 동그라미"],
    "p2": ["고양이 너무 귀엽 다", "귀엽 다 고양이", "고양이 가 자 고 있 네"],
    "p3": ["족발 맛있 겠 다", "와 맛있 어 보이 ᆫ다"],
}


def jar_meteor(tests: list[str], references: list[list[str]]) -> tuple[float, list[float]]:
    """Meteor 1.5 through its stdio protocol (as pycocoevalcap drives it), exact module only."""
    from pycocoevalcap.meteor import meteor

    jar = Path(meteor.__file__).parent / "meteor-1.5.jar"
    proc = subprocess.Popen(["java", "-Xmx256M", "-jar", str(jar), "-", "-", "-stdio", "-l", "en", "-lower", "-m", "exact"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        stats = []
        for test, refs in zip(tests, references):
            proc.stdin.write(" ||| ".join(["SCORE", *refs, test]) + "\n")
            proc.stdin.flush()
            stats.append(proc.stdout.readline().strip())
        proc.stdin.write(" ||| ".join(["EVAL", *stats]) + "\n")
        proc.stdin.flush()
        segments = [float(proc.stdout.readline()) for _ in tests]
        return float(proc.stdout.readline()), segments
    finally:
        proc.kill()
        proc.wait()


def tokens(text: str) -> list[str]:
    return text.split()


# ---------------------------------------------------------------------------------- METEOR

def test_meteor_matches_the_jar_on_the_fixed_example():
    keys = sorted(REPLIES)
    ours, ours_segments = metrics.meteor([tokens(REPLIES[k]) for k in keys], [[tokens(r) for r in REFERENCES[k]] for k in keys])
    # Recorded from the jar (the test below reruns it where Java is installed).
    assert ours_segments == pytest.approx([0.47094350149448555, 0.4254621458199651, 0.4039130360601519], abs=1e-12)
    assert ours == pytest.approx(0.43145383745968197, abs=1e-12)


@pytest.mark.skipif(shutil.which("java") is None, reason="Meteor's jar needs Java")
def test_meteor_matches_the_jar_run_now():
    cases = {
        **{k: (REPLIES[k], REFERENCES[k]) for k in REPLIES},
        # Repeated words: the alignment has to choose among partners.
        "rep": ("너무 너무 귀엽 다 너무", ["귀엽 다 너무 너무", "너무 귀엽 다"]),
        "none": ("하늘", ["바다 가 보이 어요"]),
        "reorder": ("다 귀엽 고양이 가", ["고양이 가 귀엽 다"]),
        "same": ("고양이 가 귀엽 다", ["고양이 가 귀엽 다"]),
    }
    # And 200 random replies over a small vocabulary (many repeated words, 1-4 references).
    rng = np.random.default_rng(1)
    vocab = "가 나 다 라 마 바 사 고양이 귀엽 너무".split()

    def sentence():
        return " ".join(rng.choice(vocab, size=rng.integers(1, 10)))

    for i in range(200):
        cases[f"r{i:03d}"] = (sentence(), [sentence() for _ in range(rng.integers(1, 5))])
    keys = sorted(cases)
    jar_score, jar_segments = jar_meteor([cases[k][0] for k in keys], [cases[k][1] for k in keys])
    ours, ours_segments = metrics.meteor([tokens(cases[k][0]) for k in keys], [[tokens(r) for r in cases[k][1]] for k in keys])
    assert ours_segments == pytest.approx(jar_segments, abs=1e-9)
    assert ours == pytest.approx(jar_score, abs=1e-9)


def test_meteor_by_hand():
    # Identical: one chunk, no fragmentation penalty.
    assert metrics.meteor([["a", "b", "c"]], [[["a", "b", "c"]]])[0] == 1.0
    # Swapped: P = R = 1, 2 matches in 2 chunks, penalty 0.6 * (2/2)^0.2 = 0.6.
    assert metrics.meteor([["b", "a"]], [[["a", "b"]]])[0] == pytest.approx(0.4)
    # One of two words, in order: P = 1/2, R = 1, Fmean = 1 / (0.15/0.5 + 0.85/1) = 1/1.15;
    # one chunk over one match: penalty 0.6.
    assert metrics.meteor([["a", "x"]], [[["a"]]])[0] == pytest.approx((1 / 1.15) * 0.4)
    # Nothing in common.
    assert metrics.meteor([["x"]], [[["a"]]])[0] == 0.0
    # The best reference counts.
    assert metrics.meteor([["a", "b"]], [[["x"], ["a", "b"]]])[0] == 1.0


# ---------------------------------------------------------------------------------- BLEU, ROUGE-L, CIDEr

def coco_reference():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    res = {k: [v] for k, v in REPLIES.items()}
    gts = {k: list(v) for k, v in REFERENCES.items()}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {
        **{f"BLEU-{n}": 100 * bleu[n - 1] for n in range(1, 5)},
        "ROUGE-L": 100 * Rouge().compute_score(gts, res)[0],
        "CIDEr": 100 * Cider().compute_score(gts, res)[0],
    }


def test_caption_metrics_match_pycocoevalcap_and_sacrebleu():
    report = metrics.caption_metrics(REPLIES, REFERENCES, tokenizer="whitespace")
    reference = coco_reference()
    for name, value in reference.items():
        assert report.scores[name] == pytest.approx(value, abs=1e-9), name
    assert report.scores["METEOR"] == pytest.approx(43.145383745968197, abs=1e-9)

    # sacrebleu's corpus BLEU agrees with coco-caption's (same closest reference length; no
    # smoothing needed: every n-gram order has a match here).
    import sacrebleu

    keys = sorted(REPLIES)
    width = max(len(v) for v in REFERENCES.values())
    streams = [[REFERENCES[k][i] if i < len(REFERENCES[k]) else None for k in keys] for i in range(width)]
    bleu = sacrebleu.BLEU(tokenize="none", smooth_method="none").corpus_score([REPLIES[k] for k in keys], streams)
    assert report.scores["BLEU-4"] == pytest.approx(bleu.score, abs=1e-4)
    assert report.scores["BLEU-1"] == pytest.approx(bleu.precisions[0] * bleu.bp, abs=1e-4)


def test_bleu_and_rouge_by_hand():
    same = metrics.caption_metrics({"a": "a b c d"}, {"a": ["a b c d"]}, tokenizer="whitespace").scores
    assert [same[f"BLEU-{n}"] for n in range(1, 5)] == pytest.approx([100, 100, 100, 100], abs=1e-6)
    assert same["ROUGE-L"] == pytest.approx(100)
    # One wrong word at the end: unigram precision 3/4, bigram 2/3, no 4-gram.
    off = metrics.caption_metrics({"a": "a b c x"}, {"a": ["a b c d"]}, tokenizer="whitespace").scores
    assert off["BLEU-1"] == pytest.approx(75, abs=1e-6)
    assert off["BLEU-2"] == pytest.approx(100 * math.sqrt(0.75 * 2 / 3), abs=1e-6)
    assert off["BLEU-4"] < 0.1  # coco-caption's 1e-15 in place of a zero count
    # ROUGE-L: LCS 2 of a 3-word reply and a 4-word comment; F with beta 1.2.
    lcs = metrics.caption_metrics({"a": "a b c"}, {"a": ["a x b y"]}, tokenizer="whitespace").scores
    p, r = 2 / 3, 2 / 4
    assert lcs["ROUGE-L"] == pytest.approx(100 * (1 + 1.44) * p * r / (r + 1.44 * p))


def test_cider_by_hand():
    # Two photos, each reply equal to its only comment, nothing shared between photos: every
    # n-gram's IDF is log 2, the 1- and 2-gram cosines are 1, there are no 3- or 4-grams:
    # CIDEr-D = 10 x mean(1, 1, 0, 0) = 5, reported x100.
    scores = metrics.caption_metrics({"x": "a b", "y": "c d"}, {"x": ["a b"], "y": ["c d"]}, tokenizer="whitespace").scores
    assert scores["CIDEr"] == pytest.approx(500)


def test_perplexity_by_hand():
    assert metrics.perplexity([math.log(2), math.log(2)]) == pytest.approx(2)
    assert metrics.perplexity([0.0, math.log(4)]) == pytest.approx(2)
    with pytest.raises(ValueError):
        metrics.perplexity([])


# ---------------------------------------------------------------------------------- tokenizers and signatures

def test_kiwi_cuts_korean_into_morphemes_and_drops_punctuation():
    kiwi = metrics.get_tokenizer("kiwi")
    assert kiwi is metrics.get_tokenizer("kiwi")  # one model a process
    [cat] = kiwi(["고양이가 귀여웠어요!!"])
    assert cat[:2] == ["고양이", "가"]
    assert "귀엽" in cat and "!!" not in cat
    # The tokenizer changes the score: a reply and a comment that share stems but not words.
    reply, refs = {"a": "고양이가 귀여워요"}, {"a": ["고양이가 귀엽다"]}
    by_kiwi = metrics.caption_metrics(reply, refs, tokenizer="kiwi").scores["BLEU-1"]
    by_space = metrics.caption_metrics(reply, refs, tokenizer="whitespace").scores["BLEU-1"]
    assert by_kiwi > by_space


def test_mecab_tokenizer_when_installed():
    pytest.importorskip("mecab_ko")
    [cat] = metrics.get_tokenizer("mecab")(["고양이가 귀엽다!"])
    assert "고양이" in cat and "!" not in cat
    assert metrics.get_tokenizer("mecab").signature.startswith("mecab-ko-")


def test_signature_names_the_tokenizer_and_every_setting():
    report = metrics.caption_metrics(REPLIES, REFERENCES, tokenizer="kiwi")
    sig = report.signature.as_dict()
    from importlib.metadata import version

    assert sig["tokenizer"] == f"kiwi-{version('kiwipiepy')}+model-{version('kiwipiepy_model')}"
    assert sig["nrefs"] == "var"
    assert sig["meteor"] == "1.5-exact-0.85_0.2_0.6_0.75-beam40"
    assert sig["bleu"] == "pycocoevalcap-1.2-n4-closest"
    assert sig["cider"].startswith("pycocoevalcap-1.2-D-")
    assert sig["scale"] == 100 and sig["photos"] == 3
    assert sig["text"] == str(report.signature)
    assert str(report.signature).startswith(f"tok:kiwi-{version('kiwipiepy')}+")
    assert "|nrefs:var|" in str(report.signature)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown tokenizer"):
        metrics.get_tokenizer("spaces")
    with pytest.raises(ValueError, match="same photos"):
        metrics.caption_metrics({"a": "x"}, {"b": ["x"]}, tokenizer="whitespace")
    with pytest.raises(ValueError, match="no reference"):
        metrics.caption_metrics({"a": "x"}, {"a": []}, tokenizer="whitespace")


# ---------------------------------------------------------------------------------- retrieval

def test_recall_counts_every_comment_of_a_photo_as_a_hit():
    # Photo 0 has 3 comments, photos 1 and 2 one each; embeddings on the unit circle by angle.
    def unit(deg):
        return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]

    images = np.array([unit(0), unit(90), unit(180)])
    texts = np.array([
        unit(50),   # photo 0's first comment: photo 1 is nearer (40 vs 50 degrees): rank 2
        unit(170),  # photo 0's second: photo 2, then photo 1, then photo 0: rank 3
        unit(5),    # photo 0's third: photo 0 first
        unit(80),   # photo 1's: photo 1 first
        unit(60),   # photo 2's: photo 1, photo 0, then photo 2: rank 3
    ])
    scores = metrics.retrieval_recall(images, texts, [0, 0, 0, 1, 2], ks=(1, 2, 3)).scores
    # text -> image, one query per comment.
    assert [scores[f"text_to_image_R@{k}"] for k in (1, 2, 3)] == pytest.approx([2 / 5, 3 / 5, 1])
    # image -> text, one query per photo: photo 0 is a hit at 1 through its third comment although
    # its other two are far; photo 1's own comment is nearest; photo 2's comes after photo 0's
    # second (10 degrees away) and photo 1's (100 degrees): third.
    assert [scores[f"image_to_text_R@{k}"] for k in (1, 2, 3)] == pytest.approx([2 / 3, 2 / 3, 1])
    assert metrics.retrieval_recall(images, texts, [0, 0, 0, 1, 2]).signature.as_dict()["protocol"] == "flickr30k"


def test_all_alike_embeddings_score_no_better_than_chance():
    images = np.ones((4, 3)) / math.sqrt(3)
    texts = np.ones((8, 3)) / math.sqrt(3)
    scores = metrics.retrieval_recall(images, texts, [0, 0, 1, 1, 2, 2, 3, 3], ks=(1,)).scores
    assert scores["text_to_image_R@1"] == 0.0 and scores["image_to_text_R@1"] == 0.0


def test_recall_matches_clip_benchmark_on_random_embeddings():
    import torch

    rng = np.random.default_rng(0)
    owner = np.repeat(np.arange(30), rng.integers(1, 5, size=30))
    images = rng.normal(size=(30, 16)).astype(np.float32)
    texts = images[owner] + rng.normal(scale=1.5, size=(len(owner), 16)).astype(np.float32)
    images /= np.linalg.norm(images, axis=1, keepdims=True)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    ours = metrics.retrieval_recall(images, texts, owner, chunk=7).scores  # chunks cut across photos

    # clip_benchmark's recall_at_k: share of queries with any positive in the top k.
    scores = torch.from_numpy(texts @ images.T)
    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[torch.arange(len(owner)), torch.from_numpy(owner)] = True

    def recall_at_k(s, pos, k):
        top = torch.topk(s, k, dim=1)[1]
        onehot = torch.nn.functional.one_hot(top, num_classes=s.shape[1])
        return ((onehot * pos.view(s.shape[0], 1, s.shape[1])).sum(dim=(1, 2)) > 0).float().mean().item()

    for k in (1, 5, 10):
        assert ours[f"text_to_image_R@{k}"] == pytest.approx(recall_at_k(scores, positive, k))
        assert ours[f"image_to_text_R@{k}"] == pytest.approx(recall_at_k(scores.T, positive.T, k))
    assert 0 < ours["image_to_text_R@1"] < ours["image_to_text_R@10"] < 1


def test_recall_refuses_a_photo_without_comments():
    with pytest.raises(ValueError, match="every photo"):
        metrics.retrieval_recall(np.eye(3), np.eye(3)[:2], [0, 1])
