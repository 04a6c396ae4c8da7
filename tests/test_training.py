"""Training: losses, EMA, schedule, data order, exact resume, CLI errors (real prepared dataset)."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from darkgan.errors import CheckpointError, DarkGANError, DataError
from darkgan.models.checkpoint import load_generator, load_training_state
from darkgan.models.config import apply_overrides, get_preset
from darkgan.training.data import load_training_data, real_at_scale, sample_rows
from darkgan.training.losses import (F0_OFFSETS, critic_wasserstein_loss, distillation_loss, drift_loss,
                                     f0_autocorrelation_loss, gradient_penalty, interpolate, pitch_loss,
                                     teacher_soft_labels, update_ema)
from darkgan.training.loop import Schedule, extend_on_resume, step_generator, train
from darkgan.training.progress import RemainingTime, format_seconds, step_costs

# a short tiny schedule: all 6 scales, fade-ins included, 9 steps
SHORT = ["train.iterations=[2,2,2,1,1,1]"]


@pytest.fixture(scope="module")
def prepared(prepared_dataset) -> Path:
    """The suite's real prepared dataset (``tests/conftest.py``: rendered notes -> MAG-IF cache ->
    EfficientAT labels -> vocabulary)."""
    return Path(prepared_dataset)


# ----------------------------------------------------------------------------------- losses

def test_gradient_penalty_on_known_functions():
    # D(x) = <w, x>: grad = w everywhere, penalty (|w| - 1)^2
    w = torch.tensor([3.0, 4.0, 0.0, 0.0]).view(1, 4)
    real, fake = torch.randn(5, 4), torch.randn(5, 4)
    x = interpolate(real, fake, torch.rand(5))
    gp, norms = gradient_penalty((x * w).sum(1), x)
    torch.testing.assert_close(norms, torch.full((5,), 5.0))
    assert gp.item() == pytest.approx(16.0)
    # D(x) = |x|^2 / 2: grad = x, penalty mean (|x| - 1)^2; differentiable w.r.t. D's parameters
    scale = torch.tensor(1.0, requires_grad=True)
    x = interpolate(real, fake, torch.full((5,), 0.5))
    gp, norms = gradient_penalty(scale * 0.5 * x.square().sum(1), x)
    want = (x.detach().norm(dim=1) - 1).square().mean()
    torch.testing.assert_close(gp, want)
    gp.backward()  # d/dscale of (scale |x| - 1)^2 at scale 1
    torch.testing.assert_close(scale.grad, (2 * (x.detach().norm(dim=1) - 1) * x.detach().norm(dim=1)).mean())
    torch.testing.assert_close(x.detach(), 0.5 * real + 0.5 * fake)


def test_wasserstein_drift_and_pitch_losses():
    r, f = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert critic_wasserstein_loss(r, f).item() == pytest.approx(-0.5 - 2.0)
    assert drift_loss(r, 0.001).item() == pytest.approx(0.001 * 5.0)
    logits, idx = torch.randn(4, 6), torch.tensor([0, 5, 2, 2])
    torch.testing.assert_close(pitch_loss(logits, idx), -F.log_softmax(logits, 1)[torch.arange(4), idx].mean())


def test_distillation_loss_is_manual_bce():
    """Eq. 1-2: q = sigmoid(z_student / T), p = sigmoid(z_teacher / T), mean BCE over attributes."""
    torch.manual_seed(0)
    zs, zt, T = torch.randn(3, 8) * 4, torch.randn(3, 8) * 4, 2.0
    p = teacher_soft_labels(zt, T)
    torch.testing.assert_close(p, 1 / (1 + torch.exp(-zt / T)))
    q = 1 / (1 + torch.exp(-zs / T))
    manual = -(p * torch.log(q) + (1 - p) * torch.log(1 - q)).mean()
    torch.testing.assert_close(distillation_loss(zs, p, T), manual, rtol=1e-5, atol=1e-6)
    assert distillation_loss(torch.zeros(3, 0), torch.zeros(3, 0), T).item() == 0.0  # baseline: K = 0


def test_f0_loss_prefers_the_rendered_notes_own_pitch(rendered_notes):
    """On 30 real notes (piano, guitar, violin, trumpet, flute at MIDI 48/60/67), the waveform f0
    loss is lowest at the note's own pitch: asking for a semitone or two away costs far more, and
    every note's candidate score peaks at its own period."""
    wave, midi = rendered_notes
    own = torch.stack([f0_autocorrelation_loss(wave[i:i + 1], midi[i:i + 1]) for i in range(len(midi))])
    assert float(own.median()) < 0.3 and float(own.max()) < 1.5, own
    for shift in (-2, -1, 1, 2):
        off = torch.stack([f0_autocorrelation_loss(wave[i:i + 1], midi[i:i + 1] + shift) for i in range(len(midi))])
        assert bool((off > own + 1.0).float().mean() >= 0.9), (shift, off - own)
    silent = f0_autocorrelation_loss(torch.zeros(2, 16000), torch.tensor([48, 67]))
    assert math.isclose(float(silent), math.log(len(F0_OFFSETS)), rel_tol=1e-4)
    with pytest.raises(ValueError, match="does not fit"):
        f0_autocorrelation_loss(wave[:1, :30], midi[:1])
    with pytest.raises(ValueError, match="expected wave"):
        f0_autocorrelation_loss(wave, midi[:3])


def test_f0_loss_gradient_moves_a_note_through_magif(rendered_notes):
    """The loss is differentiable through the MAG-IF inverse: gradient steps on the MAG-IF of a
    real note asked a semitone higher than it is lower the loss."""
    from darkgan.data.magif import magif_to_wave, wave_to_magif

    wave, midi = rendered_notes
    i = int(torch.nonzero(midi == 60)[0])
    x = wave_to_magif(wave[i:i + 1]).requires_grad_(True)
    target = midi[i:i + 1] + 1
    opt = torch.optim.Adam([x], lr=0.02)
    losses = []
    for _ in range(30):
        loss = f0_autocorrelation_loss(magif_to_wave(x), target)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0], losses


def test_ema_update():
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in a.parameters()]
    update_ema(a, b, 0.9)
    for pa, pb, p0 in zip(a.parameters(), b.parameters(), before):
        torch.testing.assert_close(pa, 0.9 * p0 + 0.1 * pb.detach())


# --------------------------------------------------------------------------- schedule, data

def test_schedule_alpha_and_offsets():
    tc = apply_overrides(get_preset("tiny"), ["train.iterations=[3,8,0,2,1,1]", "train.fade_in_jumps=[0,4,1,1,0,1]",
                                              "train.alpha_jump_size=2", "train.batch_size=[4,2,2,6,2,2]"]).train
    s = Schedule(tc)
    assert s.total == 15
    assert [s.scale_at(i) for i in range(15)] == [0] * 3 + [1] * 8 + [3] * 2 + [4] + [5]
    # scale 1: 4 jumps of 2 steps -> alpha 0, 0, .25, .25, .5, .5, .75, .75
    assert [s.alpha_at(i) for i in range(3, 11)] == [0, 0, .25, .25, .5, .5, .75, .75]
    assert s.alpha_at(0) == 1.0 and s.alpha_at(11) == 0.0 and s.alpha_at(13) == 1.0  # no fade at scale 4
    assert [s.offset_at(i) for i in (0, 3, 4, 11, 12, 13)] == [0, 12, 14, 28, 34, 40]
    assert [s.is_scale_start(i) for i in (0, 3, 11, 13)] == [False, True, True, True]


def test_resume_may_lengthen_the_schedule_but_not_move_the_run():
    """`darkgan train --resume --set train.iterations=[...]`: a run at step 9 (scale 4 of the tiny
    preset, 2 steps per scale) may train scale 4 and 5 longer; it may not change finished scales,
    cut scale 4 before step 9, or change any setting but the schedule, loss weights (also per
    attribute) and the step's speed (precision, memory format, lazy penalty)."""
    cfg = get_preset("tiny")
    new = extend_on_resume(cfg, ["train.iterations=[2,2,2,2,2,10]", "train.checkpoint_every=3"], 9)
    assert new.train.iterations == (2, 2, 2, 2, 2, 10) and new.train.checkpoint_every == 3
    assert Schedule(new.train).total == 20 and Schedule(new.train).scale_at(9) == 4
    assert extend_on_resume(cfg, ["train.iterations=[2,2,2,2,5,2]"], 9).train.iterations[4] == 5
    tuned = extend_on_resume(cfg, ["train.loss_weights.g_f0=0.5"], 9)  # fine-tuning a run's loss weights
    assert tuned.train.loss_weights["g_f0"] == 0.5 and tuned.overrides[-1] == "train.loss_weights.g_f0=0.5"
    weighed = extend_on_resume(cfg, ['train.teacher_attribute_weights={"Percussion": 10}'], 9)  # per attribute too
    assert weighed.train.teacher_attribute_weights == {"Percussion": 10.0} and cfg.train.teacher_attribute_weights == {}
    whitened = extend_on_resume(cfg, ["train.teacher_loss=white_mse", "train.teacher_white_eps=2"], 9)  # its form too
    assert (whitened.train.teacher_loss, whitened.train.teacher_white_eps) == ("white_mse", 2.0)
    assert cfg.train.teacher_loss == "std_mse"
    fast = extend_on_resume(cfg, ["train.precision=bf16", "train.memory_format=channels_last", "train.gp_every=4"], 9)
    assert (fast.train.precision, fast.train.memory_format, fast.train.gp_every) == ("bf16", "channels_last", 4)
    for bad in ("train.iterations=[2,2,3,2,2,2]", "train.iterations=[2,2,2,2,1,2]", "train.lr=0.1",
                "model.channels=[8,8,8,8,8,8]"):
        with pytest.raises(DarkGANError, match="--resume"):
            extend_on_resume(cfg, [bad], 9)
    assert cfg.train.iterations == (2, 2, 2, 2, 2, 2)  # the saved configuration is not mutated


def test_ema_decay_warms_up_at_every_scale():
    tc = apply_overrides(get_preset("small"), ["train.iterations=[100,20000,0,1,1,1]"]).train
    s = Schedule(tc)
    assert s.ema_decay_at(0) == 0.1 and s.ema_decay_at(100) == 0.1  # first step of scales 0 and 1
    assert s.ema_decay_at(99) == pytest.approx(100 / 109)
    assert s.ema_decay_at(100 + 1500) < 0.999 and s.ema_decay_at(100 + 10000) == 0.999  # capped
    # a new scale's layers keep < 1 % of their random initialisation after 900 steps
    keep = np.prod([s.ema_decay_at(100 + t) for t in range(900)])
    assert keep < 0.01
    tc.ema_warmup = False
    assert Schedule(tc).ema_decay_at(100) == 0.999


def test_remaining_time_prices_the_scales_to_come():
    costs = step_costs(get_preset("small"))
    assert all(b > a for a, b in zip(costs, costs[1:])) and costs[-1] / costs[0] > 15
    eta = RemainingTime([0, 10], [10, 10], [1.0, 10.0])
    assert eta.seconds_left(0) is None
    for step, t in enumerate(range(6)):  # the clock starts at t=0; steps 1..5 take 1 s each
        eta.tick(step, now=float(t))
    assert eta.seconds_left(6) == pytest.approx(4 * 1.0 + 10 * 10.0)  # 4 cheap steps + 10 steps 10x dearer
    eta.pause()
    eta.tick(10, now=100.0)  # after a pause the first tick only restarts the clock
    eta.tick(11, now=120.0)  # a scale-1 step took 20 s -> 2 s per unit of cost
    assert eta.seconds_left(12) == pytest.approx(8 * 10.0 * 2.0)
    assert format_seconds(3723.4) == "1:02:03" and format_seconds(None) == "?"


def test_sample_rows_are_epoch_permutations():
    pool = np.arange(100, 110)
    rows = np.concatenate([sample_rows(o, 4, pool, seed=1) for o in range(0, 40, 4)])
    for e in range(4):
        assert sorted(rows[10 * e:10 * (e + 1)]) == list(range(100, 110))
    np.testing.assert_array_equal(sample_rows(7, 9, pool, 1), rows[7:16])
    assert not np.array_equal(sample_rows(0, 10, pool, 2), rows[:10])


def test_real_batches_fade_like_the_generator():
    cfg = get_preset("paper").model
    x = torch.randn(2, 2, 1024, 32)
    for s in (0, 3, 5):
        assert real_at_scale(x, cfg, s, 1.0).shape == (2, 2, *cfg.scale_shape(s))
    s = 4
    low = real_at_scale(x, cfg, s - 1, 1.0)
    torch.testing.assert_close(real_at_scale(x, cfg, s, 0.0), F.interpolate(low, size=cfg.scale_shape(s)))


def test_step_generator_is_a_pure_function():
    a = torch.randn(5, generator=step_generator(0, 7))
    assert torch.equal(a, torch.randn(5, generator=step_generator(0, 7)))
    assert not torch.equal(a, torch.randn(5, generator=step_generator(0, 8)))
    assert not torch.equal(a, torch.randn(5, generator=step_generator(1, 7)))


# ------------------------------------------------------------------------ real training runs

def test_training_data_joins_cache_labels_vocabulary(prepared):
    data = load_training_data(prepared)
    vocab = json.loads((prepared / "vocabulary.json").read_text())
    assert data.attributes == [a["name"] for a in vocab["attributes"]]
    assert data.logits.shape == (len(data.cache), len(vocab["attributes"]))
    from darkgan.teacher.labels import load_labels

    labels = load_labels(prepared, vocab["teacher"])
    row = {s: i for i, s in enumerate(labels.note_str.tolist())}
    for i in data.train_rows[:3]:
        want = labels.logits[row[data.cache.note_str[i]]][[a["index"] for a in vocab["attributes"]]]
        np.testing.assert_array_equal(data.logits[i], want)
    assert data.pitch_range == (48, 67) and data.teacher["id"] == vocab["teacher"]
    assert data.teacher["weights_sha256"]


def test_resume_equals_uninterrupted_run(prepared, tmp_path):
    """tiny, CPU, same seed: stop after 4 steps (mid fade-in), resume, compare bit for bit."""
    a = train(prepared, tmp_path / "a", preset="tiny", overrides=SHORT, progress=False, threads=1)
    assert a.finished and a.step == 9
    b = train(prepared, tmp_path / "b", preset="tiny", overrides=SHORT, progress=False, threads=1, stop_at_step=4)
    assert not b.finished and b.reason == "stop-at-step"
    b = train(prepared, tmp_path / "b", resume=True, progress=False, threads=1)
    assert b.finished and b.step == 9
    A, B = load_training_state(a.checkpoint), load_training_state(b.checkpoint)
    for part in ("generator", "ema", "critic"):
        for name, t in A[part].items():
            assert torch.equal(t, B[part][name]), (part, name)
    for key in ("g", "d"):
        for pid, s in A["optim"][key]["state"].items():
            assert torch.equal(s["exp_avg_sq"], B["optim"][key]["state"][pid]["exp_avg_sq"])
    g, cfg = load_generator(tmp_path / "b")
    assert cfg.step == 9 and cfg.scale == 5 and cfg.attributes_enabled and cfg.pitch_range == (48, 67)
    x = g(torch.randn(2, g.cfg.latent_dim), torch.tensor([0, 19]), torch.rand(2, cfg.n_attributes))
    assert x.shape == (2, 2, 1024, 32) and torch.isfinite(x).all()
    assert cfg.teacher["weights_sha256"] and cfg.normalizer == load_training_data(prepared).normalizer.to_dict()


def test_f0_loss_trains_at_the_last_scale(prepared, tmp_path):
    """``train.loss_weights.g_f0 > 0`` adds the waveform f0 loss at the last scale only (logged
    as ``g_f0``), and a resumed run may switch it on."""
    res = train(prepared, tmp_path / "f0", preset="tiny", progress=False, threads=1,
                overrides=["train.iterations=[1,1,1,1,1,2]", "train.log_every=1", "train.loss_weights.g_f0=1"])
    assert res.finished and math.isfinite(res.last_metrics["g_f0"]) and res.last_metrics["g_f0"] > 0
    early = train(prepared, tmp_path / "early", preset="tiny", progress=False, threads=1, stop_at_step=2,
                  overrides=["train.iterations=[1,1,1,1,1,2]", "train.log_every=1", "train.loss_weights.g_f0=1"])
    assert "g_f0" not in early.last_metrics and "g_pitch" in early.last_metrics
    off = train(prepared, tmp_path / "off", preset="tiny", progress=False, threads=1, stop_at_step=6,
                overrides=["train.iterations=[1,1,1,1,1,2]", "train.log_every=1"])
    assert "g_f0" not in off.last_metrics
    on = train(prepared, tmp_path / "off", resume=True, progress=False, threads=1,
               overrides=["train.loss_weights.g_f0=2"])
    assert on.finished and "g_f0" in on.last_metrics
    assert load_training_state(on.checkpoint)["config"].config.train.loss_weights["g_f0"] == 2


def test_baseline_without_attributes(prepared, tmp_path):
    res = train(prepared, tmp_path / "base", preset="tiny", overrides=["train.iterations=[1,1,0,0,0,0]"],
                attributes=False, progress=False, threads=1)
    g, cfg = load_generator(res.checkpoint)
    assert not cfg.attributes_enabled and cfg.attributes == [] and g.n_attributes == 0
    assert cfg.scale == 1 and g(torch.randn(1, g.cfg.latent_dim), torch.tensor([3]), scale=1).shape == (1, 2, 64, 8)


def _cli(capsys, *args):
    """Run ``darkgan ARGS`` in-process (the real entry point); returns (status, stdout, stderr)."""
    from darkgan.cli import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out.out, out.err)


def test_cli_errors(prepared, tmp_path, capsys):
    # a dataset with a cache but without labels / vocabulary
    bare = tmp_path / "bare"
    shutil.copytree(prepared, bare, ignore=shutil.ignore_patterns("labels", "vocabulary.json"))
    with pytest.raises(DataError, match="vocabulary"):
        train(bare, tmp_path / "r0", preset="tiny", progress=False)
    (bare / "vocabulary.json").write_text((prepared / "vocabulary.json").read_text())
    with pytest.raises(DataError, match="labels"):
        train(bare, tmp_path / "r0", preset="tiny", progress=False)
    with pytest.raises(DataError, match="cache"):
        train(tmp_path, tmp_path / "r0", preset="tiny", progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        train(prepared, tmp_path / "r1", resume=True, progress=False)
    run = tmp_path / "r2"
    train(prepared, run, preset="tiny", overrides=["train.iterations=[1,0,0,0,0,0]"], progress=False, threads=1)
    with pytest.raises(DarkGANError, match="already holds a training run; pass --resume"):
        train(prepared, run, preset="tiny", progress=False)

    r = _cli(capsys, "train", "--data", bare, "--out", tmp_path / "r3", "--preset", "tiny", "--teacher", "nope")
    assert r.returncode == 2 and r.stderr.startswith("darkgan: error: ") and "unknown teacher 'nope'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = _cli(capsys, "train", "--data", prepared, "--out", run, "--preset", "tiny")
    assert r.returncode == 2 and "pass --resume" in r.stderr
    r = _cli(capsys, "train", "--preset", "tiny", "--set", "train.bogus=1", "--print-config")
    assert r.returncode == 2 and "unknown key 'train.bogus'" in r.stderr
    r = _cli(capsys, "train", "--preset", "small", "--temperature", "1.5", "--set", "train.lr=2e-4", "--print-config")
    assert r.returncode == 0 and "train.temperature = 1.5" in r.stdout and "train.lr = 0.0002" in r.stdout
    r = _cli(capsys, "train", "--out", run, "--resume", "--print-config")
    assert r.returncode == 0 and "# preset: tiny" in r.stdout


def test_max_minutes_stops_with_a_checkpoint(prepared, tmp_path):
    res = train(prepared, tmp_path / "mm", preset="tiny", max_minutes=1e-6, progress=False, threads=1)
    assert res.reason == "max-minutes" and res.step == 1 and res.checkpoint is not None
    assert load_training_state(tmp_path / "mm")["train_state"]["step"] == 1
    assert math.isfinite(res.last_metrics.get("d_loss", 0.0))


# ------------------------------------------------------------------------------ distributed

DDP_OVERRIDES = ["train.iterations=[2,2,1,1,0,0]", "model.minibatch_std_group=0"]

DDP_WORKER = textwrap.dedent("""
    import os, sys
    from safetensors.torch import save_file
    from darkgan.training.loop import train
    data, out, dump = sys.argv[1:4]
    res = train(data, out, preset="tiny", overrides={overrides!r}, progress=False, threads=1, device="cpu")
    st = res.state
    tensors = {{f"G.{{k}}": v.contiguous() for k, v in st.G.state_dict().items()}}
    tensors.update({{f"D.{{k}}": v.contiguous() for k, v in st.D.state_dict().items()}})
    tensors.update({{f"E.{{k}}": v.contiguous() for k, v in st.G_ema.state_dict().items()}})
    save_file(tensors, os.path.join(dump, f"rank{{os.environ['RANK']}}.safetensors"))
    # one write per rank: two ranks printing word by word interleave on the shared stdout
    sys.stdout.write(f"consistent {{res.ranks_consistent}} step {{res.step}}\\n")
    sys.stdout.flush()
""").format(overrides=DDP_OVERRIDES)


@pytest.mark.slow
def test_ddp_two_cpu_processes(prepared, tmp_path):
    """torchrun, 2 CPU processes (gloo), 6 tiny steps: both ranks end with identical weights, rank
    0's checkpoint holds exactly those weights, and DDP on 2 x 2 notes (gradient penalty through
    the DDP-wrapped critic) matches one process on the same 4 notes (mini-batch std-dev off: it
    pools over each rank's own batch)."""
    from safetensors.torch import load_file

    script = tmp_path / "worker.py"
    script.write_text(DDP_WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(script), str(prepared), str(tmp_path / "run"), str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("consistent True step 6") == 2, r.stdout
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    ck = load_training_state(tmp_path / "run")
    assert ck["train_state"]["step"] == 6 and ck["train_state"]["world_size"] == 2
    for prefix, part in (("G.", "generator"), ("D.", "critic"), ("E.", "ema")):
        for k, v in ck[part].items():
            assert torch.equal(v, w0[prefix + k]), (part, k)
    single = train(prepared, tmp_path / "single", preset="tiny", overrides=DDP_OVERRIDES, progress=False,
                   threads=1, device="cpu")
    # Adam moves every weight by about lr per step whatever its gradient's size, so a gradient
    # within rounding of zero (the all-reduce sums in another order) may flip sign and move that
    # one weight by up to 2 * lr * steps. Everything else must agree to float tolerance.
    lr, steps = get_preset("tiny").train.lr, 6
    for prefix, module in (("G.", single.state.G), ("D.", single.state.D)):
        for k, v in module.state_dict().items():
            diff = (v - w0[prefix + k]).abs()
            tight = diff <= 1e-4 + 1e-3 * w0[prefix + k].abs()
            assert tight.float().mean() >= 0.99, (k, tight.float().mean().item())
            assert diff.max() <= 2 * lr * steps, (k, diff.max().item())


def test_sigint_writes_a_checkpoint_and_resumes(prepared, tmp_path):
    """Ctrl-C during `darkgan train`: the current step finishes, a checkpoint is written, exit 130;
    --resume continues from it."""
    import signal
    import time

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "darkgan", "train", "--data", str(prepared), "--out", str(out), "--preset", "tiny",
           "--set", "train.iterations=[100000,0,0,0,0,0]", "--set", "train.checkpoint_every=3",
           "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "LATEST").is_file() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (out / "LATEST").is_file(), proc.communicate(timeout=60)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "signal at step" in stdout
    state = load_training_state(out)
    step = state["train_state"]["step"]
    assert step >= 3 and f"checkpoint-{step:08d}" in stdout
    res = train(prepared, out, resume=True, stop_at_step=step + 2, progress=False, threads=1)
    assert res.step == step + 2 and res.reason == "stop-at-step"
