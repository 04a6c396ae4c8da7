"""Attribute vocabulary: skip list sanity, packaged class tables, quantile setting, ranking (issue 3, item 7)."""
from __future__ import annotations

import csv

import numpy as np
import pytest

import darkgan.paths
from darkgan.errors import DataError
from darkgan.teacher.classes import audioset_classes, cnn14_ap_by_mid, yamnet_classes
from darkgan.teacher.vocabulary import class_ap, rank_classes, reference_dirs, skip_classes


def _shared(*parts):
    p = darkgan.paths.REPO_ROOT.parent.joinpath("shared", *parts)
    if not p.is_file():
        pytest.fail(f"{p} missing (the shared reference/model folders sit beside the checkout)")
    return p


def test_every_skipped_name_is_a_real_audioset_class():
    names = set(audioset_classes()[0])
    skip = skip_classes()
    assert len(skip) == len(set(skip)) >= 70
    missing = [s for s in skip if s not in names]
    assert not missing, f"not AudioSet class names (typo or merged by a missing comma?): {missing}"
    for kept in ("Speech", "Cat", "Brass instrument", "Plucked string instrument", "Guitar", "Percussion"):
        assert kept not in skip


def test_packaged_tables_equal_the_shared_files():
    with open(_shared("reference", "cnn14_per_class_ap.csv"), newline="") as f:
        ref = list(csv.DictReader(f))
    names, mids = audioset_classes()
    assert names == [r["display_name"] for r in ref] and mids == [r["mid"] for r in ref]
    assert cnn14_ap_by_mid() == {r["mid"]: float(r["ap"]) for r in ref}
    with open(_shared("models", "efficientat-mn04-as", "class_labels_indices.csv"), newline="") as f:
        assert [r["mid"] for r in csv.DictReader(f)] == mids
    with open(_shared("models", "yamnet", "yamnet_class_map.csv"), newline="") as f:
        y = list(csv.DictReader(f))
    assert yamnet_classes() == ([r["display_name"] for r in y], [r["mid"] for r in y])
    ap, source = class_ap()
    assert source.endswith("cnn14_per_class_ap.csv") and ap == cnn14_ap_by_mid()


def test_ap_falls_back_to_the_packaged_copy(monkeypatch, tmp_path):
    monkeypatch.setattr(darkgan.paths, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.setenv("DARKGAN_REFERENCE_DIR", str(tmp_path))
    assert reference_dirs()[0] == tmp_path
    ap, source = class_ap()
    assert source.startswith("packaged") and len(ap) == 527


def _fake_logits(seed=0, n=400):
    rng = np.random.default_rng(seed)
    # per class a different spread so that the 0.8 and 0.9 quantiles rank differently
    return (rng.standard_normal((n, 527)) * rng.uniform(0.2, 4, 527) + rng.uniform(-6, 0, 527)).astype(np.float32)


def test_quantile_setting_matches_numpy_and_changes_the_ranking():
    names, mids = audioset_classes()
    ap = cnn14_ap_by_mid()
    logits = _fake_logits()
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    r9 = rank_classes(logits, names, mids, ap, quantile=0.9, n=128, skip=skip_classes())
    r8 = rank_classes(logits, names, mids, ap, quantile=0.8, n=128, skip=skip_classes())
    for r, q in ((r9, 0.9), (r8, 0.8)):
        for a in r[:20]:
            assert a["p_q"] == pytest.approx(np.quantile(p[:, a["index"]], q), abs=1e-12)
            assert a["score"] == pytest.approx(np.sqrt(a["p_q"] * ap[a["mid"]]))
    assert [a["name"] for a in r9] != [a["name"] for a in r8]
    assert all(a9["p_q"] >= 0 for a9 in r9) and len(r9) == 128
    assert not {a["name"] for a in r9} & set(skip_classes())
    # the best score really is the maximum of sqrt(p_q x AP) over the classes not skipped
    keep = [i for i, n in enumerate(names) if n not in set(skip_classes())]
    scores = np.sqrt(np.quantile(p, 0.9, axis=0) * np.array([ap[m] for m in mids]))
    assert r9[0]["index"] == keep[int(np.argmax(scores[keep]))]


def test_bad_settings_are_clear_errors():
    names, mids = audioset_classes()
    with pytest.raises(DataError, match="quantile"):
        rank_classes(_fake_logits(n=5), names, mids, cnn14_ap_by_mid(), quantile=90)
    with pytest.raises(DataError, match="no notes"):
        rank_classes(np.zeros((0, 527), np.float32), names, mids, cnn14_ap_by_mid())
