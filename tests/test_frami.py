"""FRAMI (issue 19): model inversion, contrastive term, distillation runs, bad teachers, resume.

On real rendered notes (the session's ``prepared_dataset``: 30 notes, 5 families, with cache) with a
tiny teacher trained on them in the module fixture.
"""
from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from darkgan.errors import DarkGANError
from darkgan.frami.config import get_preset
from darkgan.frami.inversion import BNStatsHook, chunk_embeddings, invert_batch, t_finv
from darkgan.frami.models import SoundClassifier, check_invertible
from darkgan.frami.run import distill_tagger, load_teacher, synthesize, train_teacher
from darkgan.utils.config import apply_overrides


def _cfg(*overrides):
    return apply_overrides(get_preset("tiny"), ["data.per_class=0", *overrides])


@pytest.fixture(scope="module")
def notes(prepared_dataset):
    """The session's rendered notes with their cache (read-only here)."""
    return prepared_dataset


@pytest.fixture(scope="module")
def teacher_dir(notes, tmp_path_factory):
    out = tmp_path_factory.mktemp("frami-teacher")
    res = train_teacher(notes, out, _cfg("train.epochs=80", "train.batch_size=8", "train.lr=5e-3"))
    assert res["done"] and (out / "teacher.safetensors").exists()
    return out


def _probs(teacher, x, y):
    with torch.no_grad():
        return torch.softmax(teacher(x), 1)[torch.arange(len(y)), y]


def _bn_loss(teacher, x):
    hooks = [BNStatsHook(bn) for bn in check_invertible(teacher)]
    with torch.no_grad():
        teacher(x)
    loss = float(sum(h.loss for h in hooks))
    for h in hooks:
        h.remove()
    return loss


def test_adi_inversion_raises_target_probability_and_matches_bn_statistics(teacher_dir):
    teacher, cfg, _ = load_teacher(teacher_dir)
    y = torch.tensor([3, 4, 6, 8, 3, 4, 6, 8])  # families of the rendered notes
    shape = (cfg.data.n_mels, 32)
    x0 = torch.randn((len(y), 1, *shape), generator=torch.Generator().manual_seed(1))
    ic = apply_overrides(cfg.inversion, ["steps=40"])
    batch = invert_batch(teacher, y, shape, ic, "adi", torch.zeros(0), torch.Generator().manual_seed(1))
    assert torch.equal(batch.y, y)
    assert _probs(teacher, batch.x, y).mean() > _probs(teacher, x0, y).mean() + 0.2
    assert _bn_loss(teacher, batch.x) < 0.7 * _bn_loss(teacher, x0)


def test_first_bn_multiplier_and_time_jitter(teacher_dir):
    """DeepInversion's first-BN multiplier lowers the first layer's statistics gap; time jitter
    still reaches the targets, and its samples are not the unjittered ones."""
    teacher, cfg, _ = load_teacher(teacher_dir)
    y = torch.tensor([3, 4, 6, 8, 3, 4, 6, 8])
    shape = (cfg.data.n_mels, 32)
    first = check_invertible(teacher)[0]
    out = {}
    for name, sets in {"plain": [], "first10": ["first_bn_mult=10"], "jitter": ["jitter=3"],
                       "cosine": ["cosine=true"]}.items():
        ic = apply_overrides(cfg.inversion, ["steps=40", *sets])
        out[name] = invert_batch(teacher, y, shape, ic, "adi", torch.zeros(0), torch.Generator().manual_seed(1)).x
    gaps = {}
    for name, x in out.items():
        hook = BNStatsHook(first)
        with torch.no_grad():
            teacher(x)
        gaps[name] = float(hook.loss)
        hook.remove()
    assert gaps["first10"] < 0.8 * gaps["plain"], gaps
    x0 = torch.randn((len(y), 1, *shape), generator=torch.Generator().manual_seed(1))
    assert _probs(teacher, out["jitter"], y).mean() > _probs(teacher, x0, y).mean() + 0.2
    assert (out["jitter"] - out["plain"]).abs().mean() > 0.01
    assert (out["cosine"] - out["plain"]).abs().mean() > 0.01
    with pytest.raises(DarkGANError, match="jitter"):
        apply_overrides(cfg.inversion, ["jitter=-1"]).validate()


def test_spectral_envelope_prior_starts_and_stays_in_the_samples(teacher_dir):
    """``init_envelope``: the initial per-band means spread as asked (plain noise: ~0), and after
    the inversion the samples keep more band structure than inversions from plain noise."""
    from darkgan.frami.inversion import initial_spectrograms

    teacher, cfg, _ = load_teacher(teacher_dir)
    shape = (cfg.data.n_mels, 32)
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    assert torch.equal(initial_spectrograms(6, shape, 0.0, g()), torch.randn((6, 1, *shape), generator=g()))
    spread = lambda x: x.mean(-1).squeeze(1).std(1)  # noqa: E731  # [B]: std over bands of per-band means
    x = initial_spectrograms(6, shape, 0.4, g())
    assert torch.allclose(spread(x), torch.full((6,), 0.4), atol=0.08)
    y = torch.tensor([3, 4, 6, 8, 3, 4])
    out = {e: invert_batch(teacher, y, shape, apply_overrides(cfg.inversion, ["steps=40", f"init_envelope={e}"]),
                           "adi", torch.zeros(0), g()).x for e in (0.0, 0.4)}
    assert spread(out[0.4]).mean() > 2 * spread(out[0.0]).mean()
    assert _probs(teacher, out[0.4], y).mean() > 0.5
    with pytest.raises(DarkGANError, match="init_envelope"):
        apply_overrides(cfg.inversion, ["init_envelope=-1"]).validate()


def test_feature_invariant_term_makes_chunk_embeddings_agree(teacher_dir):
    teacher, cfg, _ = load_teacher(teacher_dir)
    y = torch.arange(8) % 11
    shape = (cfg.data.n_mels, 32)
    ic = apply_overrides(cfg.inversion, ["steps=40", "w_fic=2.0"])
    agree = {}
    for method in ("adi", "frami"):
        x = invert_batch(teacher, y, shape, ic, method, torch.randn(8, 1, *shape), torch.Generator().manual_seed(2)).x
        with torch.no_grad():
            agree[method] = float(t_finv(chunk_embeddings(teacher, x, ic.chunks)).mean())
    # disagreement 1 - T_finv falls by a third or more
    assert 1 - agree["frami"] < 0.67 * (1 - agree["adi"]), agree


def test_teachers_without_batch_norm_or_pooling_are_clear_errors(teacher_dir):
    no_bn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(11))
    with pytest.raises(DarkGANError, match="no BatchNorm"):
        check_invertible(no_bn)
    no_pool = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 11))
    assert len(check_invertible(no_pool, need_pooling=False)) == 1
    with pytest.raises(DarkGANError, match="statistics-pooling"):
        invert_batch(no_pool, torch.tensor([0, 1]), (16, 32), _cfg().inversion, "frami", torch.zeros(0), torch.Generator())
    from darkgan.cli import main

    assert main(["distill-tagger", "--teacher", str(teacher_dir / "missing"), "--method", "adi",
                 "--out", str(teacher_dir / "x"), "--preset", "tiny"]) == 2


def test_synthesis_resumes_to_the_same_memory(teacher_dir, tmp_path):
    teacher, cfg, _ = load_teacher(teacher_dir)
    cfg = apply_overrides(cfg, ["inversion.n_samples=16", "inversion.batch_size=8", "inversion.steps=5"])
    _, whole = synthesize(teacher, tmp_path / "a", cfg, "frami", (cfg.data.n_mels, 32))
    (tmp_path / "b").mkdir()
    synthesize(teacher, tmp_path / "b", apply_overrides(cfg, ["inversion.n_samples=8"]), "frami", (cfg.data.n_mels, 32))
    _, resumed = synthesize(teacher, tmp_path / "b", cfg, "frami", (cfg.data.n_mels, 32))
    assert torch.equal(whole["x"], resumed["x"]) and torch.equal(whole["y"], resumed["y"])


def test_interrupted_distillation_resumes_to_the_same_student(notes, teacher_dir, tmp_path):
    from darkgan.frami.checkpoint import load_tensors

    cfg = _cfg("inversion.n_samples=16", "inversion.steps=5", "train.epochs=3")
    t0 = time.process_time()
    full = distill_tagger(teacher_dir, notes, tmp_path / "full", "frami", cfg)
    total = time.process_time() - t0
    assert full["done"] and 0 <= full["agreement"] <= 1 and (tmp_path / "full" / "synth.png").stat().st_size > 1000
    # the student's training CPU and the inversion's are apart: together no more than the call's
    assert 0 < full["train_cpu_s"] and 0 < full["inversion_cpu_s"]
    assert full["train_cpu_s"] + full["inversion_cpu_s"] <= total + 0.05
    assert "student test acc" in (tmp_path / "full" / "results.md").read_text()
    from darkgan.utils.io import read_json

    assert read_json(tmp_path / "full" / "results.json")["agreement"] == full["agreement"]
    cut = distill_tagger(teacher_dir, notes, tmp_path / "cut", "frami", apply_overrides(cfg, ["train.max_minutes=1e-9"]))
    assert not cut["done"] and not (tmp_path / "cut" / "student.safetensors").exists()
    with pytest.raises(DarkGANError, match="--resume"):
        distill_tagger(teacher_dir, notes, tmp_path / "cut", "frami", cfg)
    done = distill_tagger(teacher_dir, notes, tmp_path / "cut", "frami", cfg, resume=True)
    assert done["done"] and done["student_test_acc"] == full["student_test_acc"]
    a, b = load_tensors(tmp_path / "full" / "student.safetensors"), load_tensors(tmp_path / "cut" / "student.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_table_runner_fills_table2_and_the_ablation_table3(notes, tmp_path, load_benchmark):
    from darkgan.frami.checkpoint import load_tensors
    from darkgan.utils.io import read_json

    runner = load_benchmark("frami_table")
    md = runner.main(["run", "--out", str(tmp_path), "--seeds", "0", "--preset", "tiny", "--data", str(notes),
                      "--set", "data.per_class=0", "--synth-set", "inversion.n_samples=8", "--synth-set", "inversion.steps=3"])
    t = read_json(tmp_path / "table.json")
    assert list(t["table2"]) == list(runner.TABLE2) and list(t["table3"]) == list(runner.ABLATIONS)
    assert t["table3"]["frami"]["delta_vs_full"] == 0 and "w/o T_finv" in md
    assert md == (tmp_path / "table.md").read_text().strip()
    cfgs = {n: read_json(tmp_path / f"{n}-s0" / "config.json")["config"] for n in runner.ABLATIONS}
    assert [c["inversion"]["use_finv"] for c in cfgs.values()] == [True, False, True, False]
    assert [c["train"]["w_hidden"] for c in cfgs.values()] == [1.0, 1.0, 0.0, 0.0]
    # without reuse: FRAMI's own samples (copied); without T_finv: samples synthesized without it
    mem = {n: load_tensors(tmp_path / f"{n}-s0" / "memory.safetensors")["x"] for n in runner.ABLATIONS}
    assert torch.equal(mem["frami"], mem["frami-noreuse"]) and torch.equal(mem["frami-nofinv"], mem["frami-noboth"])
    assert not torch.equal(mem["frami"], mem["frami-nofinv"])


def test_competition_term_seeks_samples_the_student_gets_wrong(teacher_dir):
    from darkgan.frami.inversion import competition

    teacher, cfg, _ = load_teacher(teacher_dir)
    torch.manual_seed(0)
    student = SoundClassifier(cfg.student).eval()
    y, shape = torch.arange(8) % 11, (cfg.data.n_mels, 32)
    js = {}
    for w in (0.0, 5.0):
        ic = apply_overrides(cfg.inversion, ["steps=20", f"w_adv={w}", "rounds=2"])
        x = invert_batch(teacher, y, shape, ic, "adi", torch.zeros(0), torch.Generator().manual_seed(4), student=student).x
        with torch.no_grad():
            js[w] = 1 - float(competition(teacher(x), student(x)))
    assert js[5.0] > js[0.0] + 0.02, js
    assert all(p.requires_grad for p in student.parameters())


def test_interleaved_rounds_with_competition_resume_to_the_same_student(notes, teacher_dir, tmp_path):
    from darkgan.frami.checkpoint import load_tensors

    cfg = _cfg("inversion.n_samples=16", "inversion.steps=4", "inversion.rounds=2", "inversion.w_adv=1.0", "train.epochs=4")
    full = distill_tagger(teacher_dir, notes, tmp_path / "full", "adi", cfg)
    assert full["done"] and full["n_synth"] == 16 and [h["epoch"] for h in full["history"]] == [1, 2, 3, 4]
    cut = distill_tagger(teacher_dir, notes, tmp_path / "cut", "adi", apply_overrides(cfg, ["train.max_minutes=1e-9"]))
    assert not cut["done"] and cut["n_synth"] == 8  # stopped in round 1, after its half of the samples
    done = distill_tagger(teacher_dir, notes, tmp_path / "cut", "adi", cfg, resume=True)
    a, b = (load_tensors(tmp_path / d / "student.safetensors") for d in ("full", "cut"))
    assert done["done"] and all(torch.equal(a[k], b[k]) for k in a)
    m = [load_tensors(tmp_path / d / "memory.safetensors")["x"] for d in ("full", "cut")]
    assert torch.equal(m[0], m[1])
    with pytest.raises(DarkGANError, match="rounds >= 2"):
        _cfg("inversion.w_adv=1.0").validate()


def test_generator_synthesizer_reaches_targets_learns_across_batches_and_resumes_exactly(teacher_dir, tmp_path):
    """``inversion.synthesizer=generator`` (contrastive model inversion's generator, kept across
    batches): its samples reach the target classes better than its untrained output, a later batch
    starts from what the earlier ones taught it, and a cut synthesis resumes to the same memory."""
    from darkgan.frami.checkpoint import load_tensors
    from darkgan.frami.inversion import SpectrogramGenerator

    teacher, cfg, _ = load_teacher(teacher_dir)
    shape = (cfg.data.n_mels, 32)
    cfg = apply_overrides(cfg, ["inversion.synthesizer=generator", "inversion.n_samples=16", "inversion.batch_size=8",
                                "inversion.steps=25", "inversion.g_channels=16", "inversion.z_dim=32"])
    y = torch.tensor([3, 4, 6, 8, 3, 4, 6, 8])
    net = SpectrogramGenerator(shape, 32, 16).init_weights(torch.Generator().manual_seed(0))
    assert net(torch.randn(2, 32)).shape == (2, 1, *shape)
    assert SpectrogramGenerator((30, 25), 8, 4)(torch.randn(3, 8)).shape == (3, 1, 30, 25)
    with torch.no_grad():
        before = _probs(teacher, net.train()(torch.randn(8, 32, generator=torch.Generator().manual_seed(1))), y).mean()
    batch = invert_batch(teacher, y, shape, cfg.inversion, "frami", torch.zeros(0), torch.Generator().manual_seed(1),
                         generator=net)
    assert _probs(teacher, batch.x, y).mean() > before + 0.2
    # the second batch's first step starts from the trained generator, not from scratch
    learnt = {k: v.clone() for k, v in net.state_dict().items()}
    assert not torch.equal(learnt["body.2.weight"], SpectrogramGenerator(shape, 32, 16).init_weights(
        torch.Generator().manual_seed(0)).state_dict()["body.2.weight"])

    _, whole = synthesize(teacher, tmp_path / "a", cfg, "frami", shape)
    (tmp_path / "b").mkdir()
    synthesize(teacher, tmp_path / "b", apply_overrides(cfg, ["inversion.n_samples=8"]), "frami", shape)
    assert any(k.startswith("generator.") for k in load_tensors(tmp_path / "b" / "memory.safetensors"))
    _, resumed = synthesize(teacher, tmp_path / "b", cfg, "frami", shape)
    assert torch.equal(whole["x"], resumed["x"]) and torch.equal(whole["y"], resumed["y"])
    with pytest.raises(DarkGANError, match=r"memory\.safetensors: .*g_channels"):
        synthesize(teacher, tmp_path / "b", apply_overrides(cfg, ["inversion.g_channels=8", "inversion.n_samples=24"]),
                   "frami", shape)
    from darkgan.frami.inversion import synthesizer_for

    auto = apply_overrides(cfg.inversion, ["synthesizer=auto"])
    assert (synthesizer_for("adi", auto), synthesizer_for("frami", auto)) == ("pixels", "generator")
    assert synthesizer_for("adi", cfg.inversion) == "generator"
    for bad, key in (("synthesizer=gan", "synthesizer"), ("g_lr=0", "g_lr"), ("z_dim=0", "z_dim")):
        with pytest.raises(DarkGANError, match=key):
            apply_overrides(cfg.inversion, [bad]).validate()


def test_memory_bank_negatives_are_cached_embeddings_of_the_samples(teacher_dir, tmp_path):
    """FRAMI's memory keeps the teacher's embeddings of its samples (``emb``): they equal the
    embeddings computed afresh, a memory written without them gets them on resume, and drawing
    negatives from them picks the same rows as drawing from the samples."""
    from darkgan.frami.checkpoint import load_tensors, save_tensors
    from darkgan.frami.inversion import _memory_negatives, memory_embeddings

    teacher, cfg, _ = load_teacher(teacher_dir)
    cfg = apply_overrides(cfg, ["inversion.n_samples=16", "inversion.batch_size=8", "inversion.steps=3",
                                "inversion.synthesizer=pixels"])  # a cut memory below: no generator state to match
    shape = (cfg.data.n_mels, 32)
    _, mem = synthesize(teacher, tmp_path / "a", cfg, "frami", shape)
    with torch.no_grad():
        fresh = teacher.eval().hidden(mem["x"])[2]
    assert mem["emb"].shape == fresh.shape and torch.allclose(mem["emb"], fresh, atol=1e-5)
    a = _memory_negatives(teacher, mem["emb"], 5, torch.Generator().manual_seed(3))
    b = _memory_negatives(teacher, mem["x"], 5, torch.Generator().manual_seed(3))
    assert torch.allclose(a, b, atol=1e-5)
    old = {k: v for k, v in load_tensors(tmp_path / "a" / "memory.safetensors").items() if k != "emb"}
    (tmp_path / "b").mkdir()
    save_tensors(tmp_path / "b" / "memory.safetensors", {**old, "x": old["x"][:8], "y": old["y"][:8]})
    _, resumed = synthesize(teacher, tmp_path / "b", cfg, "frami", shape)
    assert torch.allclose(resumed["emb"], memory_embeddings(teacher, resumed["x"]), atol=1e-5)
    assert torch.allclose(resumed["x"], mem["x"], atol=1e-4)
    _, adi = synthesize(teacher, tmp_path / "c", cfg, "adi", shape)
    assert "emb" not in adi


def test_table_runner_pairs_frami_and_adi_by_seed(load_benchmark):
    """The paired comparison: per-seed differences on common seeds, a one-sided paired t-test
    (a consistent gain is significant although the seeds' means overlap), none with < 2 seeds."""
    runner = load_benchmark("frami_table")
    acc = {"adi": [0.20, 0.30, 0.25, 0.40], "frami": [0.23, 0.32, 0.29, 0.42]}
    runs = {m: [{"seed": s, "student_test_acc": a} for s, a in enumerate(v)] for m, v in acc.items()}
    runs["frami"].append({"seed": 9, "student_test_acc": 0.9})  # no ADI partner: left out
    pr = runner.paired(runs, "frami", "adi")
    assert pr["seeds"] == [0, 1, 2, 3] and [round(d, 6) for d in pr["diff"]] == [3.0, 2.0, 4.0, 2.0]
    assert pr["mean_diff"] == pytest.approx(2.75) and pr["p_one_sided"] < 0.01
    assert runner.paired(runs, "adi", "frami")["p_one_sided"] > 0.99
    assert runner.paired({"adi": runs["adi"][:1], "frami": runs["frami"][:1]}, "frami", "adi") is None
    md = runner.markdown({"table2": {}, "table3": {}, "paired": pr})
    assert "FRAMI - ADI, paired over seeds 0, 1, 2, 3: mean +2.75" in md


def test_augmentations_of_synthesized_samples_are_what_they_claim():
    from darkgan.frami.distill import augment_synthesized

    x = torch.randn(6, 1, 16, 32, generator=torch.Generator().manual_seed(0))
    assert augment_synthesized(x, (), torch.Generator()) is x
    # mixup: every sample a convex combination of itself and one other sample of the batch
    g = torch.Generator().manual_seed(1)
    lam, perm = torch.rand(6, 1, 1, 1, generator=g), torch.randperm(6, generator=g)
    mixed = augment_synthesized(x, ("mixup",), torch.Generator().manual_seed(1))
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm]) and not torch.allclose(mixed, x)
    # shift: a circular roll along time of at most T/4 frames, each sample its own
    rolled = augment_synthesized(x, ("shift",), torch.Generator().manual_seed(2))
    ks = [next(k for k in range(-8, 9) if torch.equal(torch.roll(x[i], k, dims=-1), rolled[i])) for i in range(6)]
    assert len(set(ks)) > 1
    # mask: only whole mel bands and whole frames set to 0, at most M/8 and T/8 of them
    masked = augment_synthesized(x, ("mask",), torch.Generator().manual_seed(3))
    zero = (masked == 0) & (x != 0)
    assert bool(((masked == x) | zero).all()) and bool(zero.any())
    for i in range(6):
        bands = zero[i, 0].all(1).sum()
        frames = zero[i, 0].all(0).sum()
        assert bands <= 2 and frames <= 4 and bool((zero[i, 0] == (zero[i, 0].all(1, keepdim=True)
                                                                    | zero[i, 0].all(0, keepdim=True))).all())
    with pytest.raises(ValueError, match="unknown"):
        augment_synthesized(x, ("flip",), torch.Generator())
    with pytest.raises(DarkGANError, match="train.augment"):
        _cfg('train.augment=["flip"]').validate()


def test_augmented_distillation_resumes_to_the_same_student(notes, teacher_dir, tmp_path):
    """Augmentation draws come from the run's saved generator: a cut run resumes bit for bit, and
    the student differs from the one trained on the plain memory."""
    from darkgan.frami.checkpoint import load_tensors

    aug = _cfg("inversion.n_samples=16", "inversion.steps=5", "train.epochs=3")
    assert aug.train.augment == ("mixup", "shift", "mask")  # the default
    plain = distill_tagger(teacher_dir, notes, tmp_path / "plain", "adi", apply_overrides(aug, ["train.augment=[]"]))
    full = distill_tagger(teacher_dir, notes, tmp_path / "full", "adi", aug)
    distill_tagger(teacher_dir, notes, tmp_path / "cut", "adi", apply_overrides(aug, ["train.max_minutes=1e-9"]))
    done = distill_tagger(teacher_dir, notes, tmp_path / "cut", "adi", aug, resume=True)
    assert plain["done"] and full["done"] and done["done"]
    a, b, c = (load_tensors(tmp_path / n / "student.safetensors") for n in ("full", "cut", "plain"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_note_split_holds_out_notes_of_the_training_instruments(notes, tmp_path):
    """``data.split=note``: train and test are disjoint notes of the dataset's train split, the test
    notes chosen by a hash of their names (the same whatever the subset), and a teacher trained on
    it is tested on exactly those notes; an unknown split is a one-line error naming the key."""
    import numpy as np

    from darkgan.data.cache import NoteCache
    from darkgan.frami.features import split_rows

    cache = NoteCache(notes)
    train, test = split_rows(cache, "train", "note"), split_rows(cache, "test", "note")
    pool = np.flatnonzero(cache.split == "train")
    assert len(test) > 0 and len(np.intersect1d(train, test)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), pool)
    assert 0 < len(test) < len(pool) / 2  # about 1 in NOTE_TEST_EVERY (5)
    assert set(cache.instrument_str[test]) & set(cache.instrument_str[train])  # shared instruments
    assert np.array_equal(split_rows(cache, "test", "instrument"), np.flatnonzero(cache.split == "test"))
    with pytest.raises(DarkGANError, match="no split 'valid'"):
        split_rows(cache, "valid", "note")
    with pytest.raises(DarkGANError, match="data.split"):
        _cfg("data.split=pitch").validate()
    res = train_teacher(notes, tmp_path / "t", _cfg("data.split=note", "train.epochs=2", "train.batch_size=8"))
    assert res["done"] and res["n_test"] == len(test)
    assert load_teacher(tmp_path / "t")[1].data.split == "note"
