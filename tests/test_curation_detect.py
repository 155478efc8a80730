"""The curation detectors on generated photos and texts with known answers (no database)."""
from __future__ import annotations

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from curation import perceptual as P
from curation import quality as Q
from curation import synthetic as S
from curation import textdup as T
from datasets import imaging

pytestmark = pytest.mark.once


@pytest.fixture(scope="module")
def originals():
    return [S.photo(seed) for seed in range(12)]


def stored(img: Image.Image) -> Image.Image:
    """As the catalogue holds a photo: a JPEG of quality 90."""
    return S.from_jpeg(S.jpeg(img, 90))


def test_signature_hash_is_the_stored_phash():
    """The whole-photo hash of a signature is the hash the ingest stores on Image.phash."""
    data = S.jpeg(S.photo(5, 900, 600))
    processed = imaging.process(data, imaging.Limits())
    thumb = S.from_jpeg(processed.thumbnail)
    assert P.signature(thumb).phash == processed.phash
    # ... and the batched DCT is imagehash's pHash, bit for bit.
    small = P._thumbnail(thumb).resize((32, 32), Image.Resampling.BOX)
    assert P.signature(thumb).phash == P.to_signed(int(str(imagehash.phash(small)), 16))


def test_every_transform_is_found_and_distinct_photos_are_not(originals):
    transforms = S.transforms(np.random.default_rng(7))
    ids, sigs, truth = [], [], set()
    for n, img in enumerate(originals):
        ids.append(f"o{n}")
        sigs.append(P.signature(stored(img)))
        for name, fn in transforms.items():
            ids.append(f"o{n}:{name}")
            sigs.append(P.signature(stored(fn(img))))
            truth.add((f"o{n}", f"o{n}:{name}"))
    for n in range(20):  # distinct photos: negatives
        ids.append(f"x{n}")
        sigs.append(P.signature(stored(S.photo(1000 + n))))
    index = P.PerceptualIndex.from_signatures(ids, sigs)
    pairs = index.find_pairs()
    found = {(p.a, p.b) if p.a < p.b else (p.b, p.a) for p in pairs}
    missed = {name for (a, b) in truth if (min(a, b), max(a, b)) not in found for name in [b.split(":")[1]]}
    assert not missed, f"transforms not found: {missed}"
    # No pair joins two different originals (copies of one photo are pairs among themselves too).
    assert all(p.a.split(":")[0] == p.b.split(":")[0] for p in pairs), [p for p in pairs if p.a.split(":")[0] != p.b.split(":")[0]]
    # The crop copies need the window hashes: the whole-photo hashes alone miss some of them.
    full_only = P.PerceptualIndex(ids, [s.phash for s in sigs]).find_pairs()
    full_found = {(min(p.a, p.b), max(p.a, p.b)) for p in full_only}
    assert any(":crop" in b and (a, b) not in full_found for a, b in truth)
    # Groups: each original with its 8 copies, nothing else.
    groups = P.group_pairs(pairs)
    assert sorted(len(g.members) for g in groups) == [9] * len(originals)


def test_query_chunk_finds_what_the_whole_run_finds(originals):
    ids = [f"o{n}" for n in range(len(originals))] + [f"c{n}" for n in range(len(originals))]
    crop = S.transforms(np.random.default_rng(3))["crop 10%"]
    sigs = [P.signature(stored(img)) for img in originals] + [P.signature(stored(crop(img))) for img in originals]
    index = P.PerceptualIndex.from_signatures(ids, sigs)
    whole = {(p.a, p.b) for p in index.find_pairs()}
    chunked = set()
    for chunk in (ids[:7], ids[7:15], ids[15:]):
        chunked |= {(p.a, p.b) for p in index.find_pairs(chunk)}
    normal = {tuple(sorted(x)) for x in whole}
    assert {tuple(sorted(x)) for x in chunked} == normal
    assert normal == {(f"c{n}", f"o{n}") for n in range(len(originals))}


def test_multi_index_search_equals_brute_force():
    rng = np.random.default_rng(11)
    hashes = rng.integers(0, 2**64 - 1, 50_000, dtype=np.uint64, endpoint=True)
    # Plant neighbours at every distance 0..10 (the radius is 8: 9 and 10 must not come back).
    queries = []
    for d in range(11):
        for _ in range(20):
            base = hashes[int(rng.integers(0, len(hashes)))]
            bits = rng.choice(64, size=d, replace=False)
            queries.append(base ^ np.uint64(sum(1 << int(b) for b in bits)))
    queries = np.asarray(queries + list(rng.integers(0, 2**64 - 1, 200, dtype=np.uint64, endpoint=True)), dtype=np.uint64)
    index = P.HammingIndex(hashes)
    got = index.search(queries, radius=8, chunk=97)
    want = P.brute_force_search(hashes, queries, radius=8)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert len(got[0]) >= 9 * 20  # the planted ones within 8 at least
    # Signed input (as the BigIntegerField holds it) gives the same answer.
    signed = P.HammingIndex(hashes.view(np.int64)).search(queries.view(np.int64), radius=8)
    np.testing.assert_array_equal(signed[1], want[1])


def test_keeper_is_largest_then_licence_then_labeled_then_oldest():
    pairs = [P.PerceptualPair("a", "b", 3, "full"), P.PerceptualPair("b", "c", 5, "window"),
             P.PerceptualPair("x", "y", 0, "full")]
    rank = {"cc0": 0, "cc-by": 1, "cc-by-nc": 2}
    facts = {
        "a": P.PhotoFacts("a", 1000, "cc-by-nc", labeled=True, created=1),
        "b": P.PhotoFacts("b", 2000, "cc-by-nc", labeled=False, created=3),
        "c": P.PhotoFacts("c", 2000, "cc-by", labeled=False, created=5),
        "x": P.PhotoFacts("x", 500, "cc0", labeled=False, created=2),
        "y": P.PhotoFacts("y", 500, "cc0", labeled=True, created=9),
    }
    groups = P.group_pairs(pairs, facts, rank)
    assert [g.members for g in groups] == [["c", "b", "a"], ["y", "x"]]
    assert groups[0].keeper == "c"  # b and c are as large; c's licence ranks better
    assert groups[1].keeper == "y"  # same size and licence: the labeled one
    facts["y"] = P.PhotoFacts("y", 500, "cc0", labeled=False, created=9)
    assert P.group_pairs(pairs, facts, rank)[1].keeper == "x"  # then the oldest
    assert groups[0].evidence()["pairs"][0] == {"a": "a", "b": "b", "distance": 3, "via": "full", "confirmation": None}
    assert groups[1].score == 1.0


# ------------------------------------------------------------------------------------ quality

def test_quality_flags_known_images():
    photo = stored(S.photo(2))
    clean = Q.assess(photo)
    assert clean.flags == {}, clean.values
    cases = {
        "dark": ImageEnhance.Brightness(photo).enhance(0.15),
        "light": Image.blend(photo, Image.new("RGB", photo.size, "white"), 0.97),
        "blurry": photo.filter(ImageFilter.GaussianBlur(8)),
        "grayscale": stored(photo.convert("L").convert("RGB")),
        "low_information": Image.new("RGB", (400, 300), (120, 130, 140)),
    }
    for flag, img in cases.items():
        report = Q.assess(img)
        assert flag in report.flags, (flag, report.values)
        value, threshold = report.flags[flag]
        assert value < threshold == Q.DEFAULT_THRESHOLDS[flag]
    assert set(Q.assess(cases["grayscale"]).flags) == {"grayscale"}
    # A grey photo with a little channel noise (a scan) is grey; a dark colour photo is not.
    noisy = np.asarray(cases["grayscale"], dtype=np.float32) + np.random.default_rng(0).normal(0, 1.5, (360, 480, 3))
    assert "grayscale" in Q.assess(Image.fromarray(noisy.clip(0, 255).astype(np.uint8))).flags
    assert "grayscale" not in Q.assess(cases["dark"]).flags
    tiny = Q.assess(photo.resize((100, 75)))
    assert set(tiny.flags) == {"tiny"} and tiny.flags["tiny"] == (75.0, 128.0)
    # A thumbnail judged with the original's size: the size comes from the caller.
    assert "tiny" not in Q.assess(photo.resize((100, 75)), width=1000, height=750).flags
    odd = Q.assess(photo.resize((400, 100)))
    assert odd.flags["odd_aspect"] == (0.25, 0.35)
    # Thresholds from a dict: off with None, changed by value, refused when unknown.
    assert "tiny" not in Q.assess(photo.resize((100, 75)), thresholds={"tiny": None}).flags
    assert "tiny" in Q.assess(photo, thresholds={"tiny": 1000}).flags
    with pytest.raises(ValueError):
        Q.assess(photo, thresholds={"blury": 0.1})


# ------------------------------------------------------------------------------------ comments

def test_normalisation():
    assert T.normalise("  와!!!  정말ㅋㅋㅋㅋ   ㅠㅠㅠ...") == "와! 정말ㅋㅋ ㅠㅠ."
    assert T.exact_key("맛있 겠다ㅋㅋㅋㅋ") == T.exact_key("맛있겠다 ㅋㅋ") == "맛있겠다ㅋㅋ"
    assert T.exact_key("\u1106\u1161\u11ba있겠다") == T.exact_key("맛있겠다")  # NFD jamo -> NFC
    assert T.exact_key("맛있겠다") != T.exact_key("맛없겠다")


def rows_for_template():
    """Labeler u1 pastes variants of 맛있겠다 on 8 photos; u2 writes distinct comments and once
    the same line; u3 writes one near-copy of their own earlier comment."""
    rows = []
    variants = ["맛있겠다ㅋㅋㅋ", "맛있겠다 ㅋㅋ", "맛있 겠다!!", "맛있겠다ㅋㅋㅋㅋㅋ", "맛있겠다~~", "맛있겠다", "맛있겠다!!!", "맛 있겠다ㅋㅋ"]
    distinct = ["하늘이 맑고 구름이 예쁘네요", "강아지가 공을 물고 뛰어가요", "바닷가 노을이 붉게 물들었어요",
                "골목길에 자전거가 세워져 있어요", "창가에 화분이 세 개 놓여 있네요"]
    cid = 0
    for n, text in enumerate(variants):
        cid += 1
        rows.append((cid, f"img{n}", "u1", text))
        if n < len(distinct):
            cid += 1
            rows.append((cid, f"img{n}", "u2", distinct[n]))
    cid += 1
    rows.append((cid, "img9", "u2", "맛있겠다ㅋㅋ"))
    cid += 1
    rows.append((cid, "img10", "u3", "고양이가 창밖을 보고 있어요"))
    cid += 1
    rows.append((cid, "img11", "u3", "고양이가 창 밖을 보고 있네요"))
    return rows


def test_template_cluster_and_self_copy_share():
    rows = rows_for_template()
    report = T.analyse(rows)
    top = report.clusters[0]
    assert top.count == 9 and top.photos == 9 and top.labelers == 2 and top.is_template
    assert top.text == "맛있겠다ㅋㅋ"
    assert top.share == round(9 / len(rows), 4)
    assert len(top.examples) == 5 and "맛있겠다ㅋㅋㅋ" in top.examples
    assert report.templates == [top]
    cat = next(c for c in report.clusters if "고양이" in c.text)
    assert cat.count == 2 and not cat.is_template and not cat.exact
    # Distinct comments are in no cluster.
    clustered = {cid for c in report.clusters for cid in c.comment_ids}
    assert not clustered & {cid for cid, _, lab, text in rows if lab == "u2" and "맛" not in text}
    by = {e.labeler: e for e in report.labelers}
    assert (by["u1"].comments, by["u1"].self_copies, by["u1"].share) == (8, 7, 0.875)
    assert by["u1"].copies[0] == (rows[2][0], rows[0][0])  # the second paste copies the first
    # u2's one 맛있겠다 copies u1, not themselves.
    assert by["u2"].self_copies == 0 and by["u3"].self_copies == 1 and by["u3"].share == 0.5
    assert report.labelers[0].labeler == "u1"


def test_exact_cluster_needs_no_lsh_luck():
    """500 photos with the same line: one cluster of 500, cheaply (one distinct key)."""
    rows = [(n, f"img{n}", f"u{n % 7}", "맛있겠다" + "ㅋ" * (2 + n % 5)) for n in range(500)]
    rows.append((999, "imgX", "u0", "전혀 다른 이야기를 하는 댓글입니다"))
    report = T.analyse(rows)
    assert [c.count for c in report.clusters] == [500]
    assert report.clusters[0].exact and report.clusters[0].share == round(500 / 501, 4)


def test_signed_hashes_as_stored_are_searched_as_64_bits():
    """Image.phash is signed: -1 (all bits set) is one bit from -2 and 63 bits from 1; the
    sign bit alone (-2**63) is two bits from 1."""
    index = P.PerceptualIndex(["a", "b", "c", "d"], [-1, -2, 1, -(2**63)])
    assert sorted((min(p.a, p.b), max(p.a, p.b), p.distance) for p in index.find_pairs()) == [
        ("a", "b", 1), ("c", "d", 2)]
    assert P.hamming(-1, 2**63 - 1) == 1
    with pytest.raises(ValueError):
        P.HammingIndex(np.array([1.0, 2.0]))


def test_confirmation_separates_copies_from_hash_collisions():
    """Stage 2: a crop and a brightened copy correlate with their original; two different photos
    whose hashes came within 8 bits through a window (found by the benchmark) do not."""
    original = stored(S.photo(3))
    for copy in (S.crop(original, 0.1, np.random.default_rng(0)), S.brightness(original, 1.2), S.resize(original, 0.5)):
        assert P.confirm(stored(copy), original) >= P.CONFIRM_THRESHOLD
    for a, b in ((615, 10_000_149), (10_000_255, 10_000_147)):
        assert P.confirm(stored(S.photo(a)), stored(S.photo(b))) < P.CONFIRM_THRESHOLD
    photos = {"o": original, "c": stored(S.crop(original, 0.05, np.random.default_rng(1))),
              "x": stored(S.photo(615)), "y": stored(S.photo(10_000_149))}
    candidates = [P.PerceptualPair("c", "o", 7, "window"), P.PerceptualPair("x", "y", 8, "window")]
    kept = P.confirm_pairs(candidates, photos.__getitem__)
    assert [(p.a, p.b) for p in kept] == [("c", "o")] and kept[0].confirmation >= P.CONFIRM_THRESHOLD
