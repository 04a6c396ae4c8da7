"""``darkgan evaluate`` end to end on a real rendered, prepared, teacher-labelled dataset, with an
"oracle" generator (returns the real validation note whose attribute vector it is asked for)
and a "random" one (returns random real notes), plus the bad-input errors."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from darkgan.errors import DarkGANError, DataError
from darkgan.evaluation.runner import EvalModel, check_compatible, evaluate, resolve_protocol

PROGRAMS = (0, 16, 24, 40, 56, 73)
PITCHES = tuple(range(48, 72))


@pytest.fixture(scope="module")
def labelled_dataset(tmp_path_factory, fluidr3, timgm):
    """~280 real notes (6 GM programs x 2 fonts x 24 pitches), prepared, labelled, with a vocabulary."""
    from darkgan.data.prepare import prepare
    from darkgan.data.render import render_dataset
    from darkgan.teacher.labels import label_dataset
    from darkgan.teacher.vocabulary import build_vocabulary

    out = tmp_path_factory.mktemp("evalds") / "ds"
    render_dataset(out, soundfonts=[fluidr3, timgm], programs=PROGRAMS, banks=[0], pitches=PITCHES,
                   velocities=(100,), split="instrument", seed=0, jobs=1, progress=False, verbose=False)
    prepare(out, progress=False)
    label_dataset(out, progress=False)
    build_vocabulary(out, n=16)
    return out


class _RealNotes(EvalModel):
    """Shared plumbing: a 'generator' that returns real validation notes of the dataset."""

    def __init__(self, data_dir, name):
        from darkgan.data.cache import NoteCache
        from darkgan.evaluation.data import real_waves
        from darkgan.teacher.labels import load_labels
        from darkgan.teacher.vocabulary import load_vocabulary

        cache = NoteCache(data_dir)
        voc = load_vocabulary(data_dir)
        labels = load_labels(data_dir, voc.teacher)
        row = {s: i for i, s in enumerate(labels.note_str.tolist())}
        rows = cache.rows("valid")
        self.waves = real_waves(cache, rows)
        self.pitch = cache.pitch[rows]
        self.temperature = 2.0
        logits = labels.logits[[row[s] for s in cache.note_str[rows].tolist()]][:, voc.indices]
        self.alpha = (1 / (1 + np.exp(-logits.astype(np.float64) / self.temperature))).astype(np.float32)
        self.name = name
        self.key = name
        self.attributes = list(voc.names)
        self.class_indices = [int(i) for i in voc.indices]
        self.pitch_range = cache.pitch_range
        self.latent_dim = 4
        self.teacher_id = voc.teacher
        self.info = {"name": name, "path": None, "key": name, "temperature": self.temperature,
                     "attributes": len(self.attributes)}


class Oracle(_RealNotes):
    def generate(self, z, pitch, attributes):
        d = ((np.asarray(attributes, np.float64)[:, None, :] - self.alpha[None]) ** 2).sum(-1)
        d += 1e6 * (np.asarray(pitch)[:, None] != self.pitch[None])  # same pitch first
        return self.waves[d.argmin(1)]


class RandomNotes(_RealNotes):
    def generate(self, z, pitch, attributes):
        seed = int(abs(float(np.asarray(z).sum())) * 1e6) % (2 ** 32)
        return self.waves[np.random.default_rng(seed).integers(0, len(self.waves), len(z))]


SMALL = dict(ood_n=12, ood_attributes=2, ood_levels=3, ic_n=12, ic_attributes=2, ic_steps=3, pitch_n=8,
             kid_subsets=5, example_attributes=1, listening_attributes=1, n_boot=50)


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


@pytest.fixture(scope="module")
def oracle_report(labelled_dataset, tmp_path_factory):
    models = [Oracle(labelled_dataset, "oracle"), RandomNotes(labelled_dataset, "random")]
    out = tmp_path_factory.mktemp("report") / "report"
    m = evaluate(None, labelled_dataset, out, n=60, protocol="cpu", models=models, progress=False,
                 protocol_overrides=SMALL, inception_epochs=1)
    return out, m, models


@pytest.mark.slow
def test_evaluate_oracle_vs_random_report(oracle_report, labelled_dataset):
    out, m, models = oracle_report
    for f in ("metrics.json", "report.md", "report.html", "fig2_ood.png", "fig3_increment.png", "fig_rho.png"):
        assert (out / f).is_file(), f
    data = json.loads((out / "metrics.json").read_text())
    assert data["sizes"]["generated"] == 60 and data["seed"] == 0
    assert data["embedding_models"]["teacher"]["weights_sha256"]
    corr = data["results"]["correlation"]
    rho_o, rho_r = _arr(corr["oracle"]["teacher"]["rho"]), _arr(corr["random"]["teacher"]["rho"])
    self_c = _arr(corr["real valid"]["teacher"]["rho"])
    # the oracle reaches the teacher's self-consistency on real notes; random audio does not
    assert np.nanmean(rho_o) > 0.8 and np.nanmean(rho_o) > np.nanmean(self_c) - 0.15, (rho_o, self_c)
    assert abs(np.nanmean(rho_r)) < 0.25, rho_r
    assert "yamnet" in corr["oracle"]
    # bootstrap intervals bracket the estimate; training conditioning is a second column
    o = corr["oracle"]["teacher"]
    assert o["mean_rho_low"] <= o["mean_rho"] <= o["mean_rho_high"] and o["n_boot"] == 50
    # training conditioning: real training notes against their labels are as self-consistent as
    # validation ones; the oracle only holds validation notes, so it follows training vectors less
    tr = data["results"]["correlation_train"]
    assert np.nanmean(_arr(tr["real train"]["teacher"]["rho"])) > 0.7
    assert np.nanmean(_arr(tr["oracle"]["teacher"]["rho"])) < np.nanmean(rho_o)
    # FAD with 60 notes < 384 dimensions: reported as missing with the reason; KAD is there
    rows = data["results"]["rows"]
    assert "pis" in rows["oracle"] and "kid" in rows["random"] and "kid_low_x1e4" in rows["random"]["kid"]
    assert any(x["what"] == "fad_teacher" and "n > 384" in x["reason"] for x in data["missing"])
    kad = {r: rows[r]["kad_teacher"] for r in ("real valid", "oracle", "random")}
    assert all(k["kad_low"] <= k["kad"] <= k["kad_high"] for k in kad.values())
    html = (out / "report.html").read_text()
    assert "<audio" in html and "Table 1" in html and "Missing results" in html and "Listening page" in html
    assert list((out / "examples").rglob("*.wav"))
    # listening page: 1 attribute x 3 pitches x 3 user values, each a WAV and a PNG
    lst = data["results"]["listening"]["oracle"]
    assert len(lst) == 9 and {e["value"] for e in lst} == {0.0, 0.5, 1.0}
    assert all((out / e["wav"]).is_file() and (out / e["png"]).is_file() for e in lst)


@pytest.mark.slow
def test_report_curves_are_the_tested_drivers_and_have_known_values(oracle_report, labelled_dataset):
    """Fig. 2 / Fig. 3 of the report are run_ood_correlation / run_increment_consistency on the
    context's callables; known values: a generator whose output does not change with the
    increment has increment consistency exactly 0 at every delta: the random one (same z, same
    notes) and the oracle here (the dataset has one validation instrument, so one validation note
    per pitch: the oracle returns it whatever the attribute values)."""
    from darkgan.evaluation.context import EvalContext, load_eval_data
    from darkgan.evaluation.metrics import correlation as C
    from darkgan.evaluation.protocol import resolve_protocol

    out, m, models = oracle_report
    inc = m["results"]["increment"]
    assert np.allclose(_arr(inc["random"]["teacher"]["mean_ic"]), 0.0, atol=1e-9)
    assert np.allclose(_arr(inc["oracle"]["teacher"]["mean_ic"]), 0.0, atol=1e-9)
    assert len(inc["oracle"]["teacher"]["mean_ic"]) == 3 and inc["oracle"]["n"] == 12
    ctx = EvalContext(load_eval_data(labelled_dataset, models), models, resolve_protocol("cpu", 60, **SMALL), out,
                      progress=False)
    oracle = models[0]
    att = m["results"]["ood"]["oracle"]["teacher"]["attributes"]
    pitch, alpha = ctx.cond(oracle)
    again = C.run_ood_correlation(ctx.generate_fn(oracle, "ood"), ctx.predict_fn("teacher"), pitch[:12], alpha[:12],
                                  att, C.ood_deltas(C.ood_levels(3)), seed=0)
    assert again["mean_rho"] == m["results"]["ood"]["oracle"]["teacher"]["mean_rho"]
    assert ctx.fc.misses == 0  # everything came from the report's cache


@pytest.mark.slow
def test_rerun_is_served_from_the_cache(oracle_report, labelled_dataset):
    out, m, models = oracle_report
    m2 = evaluate(None, labelled_dataset, out, n=60, protocol="cpu", models=models, progress=False,
                  protocol_overrides=SMALL, skip=("examples", "listening"))
    assert m2["cache"]["computed"] == 0
    assert m2["results"]["rows"]["oracle"]["pis"] == m["results"]["rows"]["oracle"]["pis"]


def test_metric_selection_by_name():
    from darkgan.evaluation.suite import list_report_metrics, select_metrics

    assert select_metrics("kid,fad") == ["kid", "fad"]
    assert select_metrics(None, skip=("ood", "increment", "yamnet")) == [
        n for n in list_report_metrics() if n not in ("ood", "increment")]
    with pytest.raises(DarkGANError, match="unknown metric.*fid"):
        select_metrics("fid,kid")
    assert resolve_protocol("demo").metrics and "fad" not in resolve_protocol("demo").metrics
    with pytest.raises(DarkGANError, match="unknown protocol field"):
        resolve_protocol("cpu", ood_notes=3)


class _Fake(EvalModel):
    def __init__(self, name, attrs, pr, teacher="efficientat-mn04"):
        self.name, self.key, self.attributes, self.pitch_range, self.teacher_id = name, name, attrs, pr, teacher
        self.class_indices, self.temperature, self.latent_dim, self.info = list(range(len(attrs))), 2.0, 4, {}

    def generate(self, z, pitch, attributes):  # the refusals below happen before any generation
        raise AssertionError("an incompatible model must be refused before it generates")


def test_incompatible_checkpoints_are_refused():
    check_compatible([_Fake("a", ["Guitar"], (44, 70)), _Fake("base", [], (44, 70))])
    with pytest.raises(DarkGANError, match="different pitch ranges"):
        check_compatible([_Fake("a", ["Guitar"], (44, 70)), _Fake("b", ["Guitar"], (40, 70))])
    with pytest.raises(DarkGANError, match="different attribute vocabularies"):
        check_compatible([_Fake("a", ["Guitar"], (44, 70)), _Fake("b", ["Piano"], (44, 70))])


def test_protocols():
    assert resolve_protocol("paper").n == 10_000 and resolve_protocol("paper").ood_levels == 51
    assert resolve_protocol("cpu", n=500).n == 500 and resolve_protocol("cpu").n >= 2000
    with pytest.raises(DarkGANError, match="unknown protocol"):
        resolve_protocol("fast")
    with pytest.raises(DarkGANError, match="at least 2"):
        resolve_protocol("cpu", n=1)


def test_dataset_without_cache_or_labels_is_a_clear_error(rendered_dataset, tmp_path):
    from darkgan.cli import main

    ds = tmp_path / "ds"
    shutil.copytree(rendered_dataset, ds)
    with pytest.raises(DataError, match="darkgan data prepare"):
        evaluate(None, ds, tmp_path / "r", models=[_Fake("a", [], (48, 67))])
    from darkgan.data.prepare import prepare

    prepare(ds, progress=False)
    with pytest.raises(DataError, match="vocabulary"):
        evaluate(None, ds, tmp_path / "r", models=[_Fake("a", [], (48, 67))])
    assert main(["evaluate", "--data", str(ds), "--out", str(tmp_path / "r"), "--checkpoint", str(tmp_path / "none")]) == 2


@pytest.mark.slow
def test_inception_classifier_trains_saves_and_is_reused(labelled_dataset, tmp_path, capsys):
    from darkgan.cli import main
    from darkgan.evaluation import inception

    ds = tmp_path / "ds"
    shutil.copytree(labelled_dataset, ds, ignore=shutil.ignore_patterns("inception"))
    clf = inception.train(ds, epochs=2, progress=False)
    folder = ds / "inception"
    assert (folder / "model.safetensors").is_file() and (folder / "model.json").is_file()
    v = clf.meta["valid"]
    assert v["n"] > 0 and 0 <= v["pitch_accuracy"] <= 1 and 0 <= v["family_accuracy"] <= 1
    assert len(clf.meta["attributes"]) == 16
    again = inception.load_or_train(ds, progress=False)
    assert again.meta["sha256"] == clf.meta["sha256"]  # reused, not retrained
    from darkgan.data.cache import NoteCache
    from darkgan.evaluation.data import real_waves

    cache = NoteCache(ds)
    rows = cache.rows("valid")[:5]
    out = again.outputs_wave(real_waves(cache, rows))
    assert out.embedding.shape == (5, inception.EMBEDDING_DIM)
    assert np.allclose(out.pitch_probs.sum(1), 1, atol=1e-5) and out.family_probs.shape == (5, 11)
    # wave -> MAG-IF path agrees with the cached MAG-IF the classifier was trained on
    ref = again.outputs_magif(cache.load(rows))
    assert np.allclose(ref.pitch_probs, out.pitch_probs, atol=0.05)
    assert main(["inception", "train", "--data", str(ds), "--no-progress"]) == 0
    assert "validation pitch accuracy" in capsys.readouterr().out


@pytest.mark.slow
def test_sweep_trains_baseline_and_temperatures_into_one_report(labelled_dataset, tmp_path):
    """`darkgan sweep --preset tiny --temperatures 1,3`: a budget line first, the baseline (K = 0)
    and one DarkGAN per T trained to the end of the schedule, all in one report; a second call
    resumes the finished runs (no retraining) and rebuilds the report from the cache."""
    from darkgan.evaluation.sweep import sweep
    from darkgan.models.checkpoint import read_checkpoint_config

    small = dict(ood_n=8, ood_attributes=2, ood_levels=3, ic_n=8, ic_attributes=2, ic_steps=3, pitch_n=8,
                 kid_subsets=5, example_attributes=1, listening_attributes=1, n_boot=50)
    lines: list[str] = []
    out = tmp_path / "sweep"
    m = sweep(labelled_dataset, [1.0, 3.0], out, preset="tiny", n=48, protocol="cpu", progress=False,
              log=lines.append, protocol_overrides=small)
    assert lines[0].startswith("sweep: 3 runs (baseline, T=1, T=3), preset tiny")
    for folder, temp, k in (("baseline", None, 0), ("T1", 1.0, 16), ("T3", 3.0, 16)):
        cc = read_checkpoint_config(out / "runs" / folder)
        assert cc.step == cc.config.train.total_steps and len(cc.attributes) == k
        if temp is not None:
            assert cc.temperature == temp
    assert [r["name"] for r in m["models"]] == ["baseline", "T=1", "T=3"]
    corr = m["results"]["correlation"]
    assert "T=1" in corr and "T=3" in corr and "baseline" not in corr  # no attributes, no rho
    assert (out / "report" / "report.html").is_file()
    lines.clear()
    sweep(labelled_dataset, [1.0, 3.0], out, preset="tiny", n=48, protocol="cpu", progress=False,
          log=lines.append, protocol_overrides=small)
    assert sum("(resuming)" in line for line in lines) == 3


def test_a_checkpoints_cache_key_covers_its_synthesis(tmp_path):
    """The evaluation cache keys a DarkGAN's notes by its weights *and* its synthesis: a copy of the
    shipped student keeps the key wherever it lies; the same weights synthesised with another fade
    (``model.synthesis_fade`` 1,536 samples instead of its 512) get another key, and their notes
    differ only where the fades do (the last 1,536 samples)."""
    from darkgan.evaluation.models import DarkGANModel
    from darkgan.generation.api import DarkGAN

    src = DarkGAN.load("student").config.path
    same, faded = tmp_path / "same", tmp_path / "faded"
    shutil.copytree(src, same)
    shutil.copytree(src, faded)
    cfg = json.loads((faded / "config.json").read_text())
    cfg["model"]["synthesis_fade"] = 1536
    (faded / "config.json").write_text(json.dumps(cfg))
    a, b, c = DarkGANModel(src), DarkGANModel(same), DarkGANModel(faded)
    assert a.key == b.key and a.key != c.key
    rng = np.random.default_rng(0)
    z, pitch = rng.standard_normal((2, a.latent_dim)).astype(np.float32), np.array([52, 64])
    alpha = a.g.validation_attributes()[:2]
    wa, wc = a.generate(z, pitch, alpha), c.generate(z, pitch, alpha)
    assert np.array_equal(wa[:, :-1536], wc[:, :-1536]) and not np.allclose(wa[:, -1536:], wc[:, -1536:])
