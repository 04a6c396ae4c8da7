"""SING training in the paper's three stages (Sec. 4.3), in one run folder.

1. ``ae``: encoder + decoder as an autoencoder on the training loss (spectral, Eq. 3.3, or the
   waveform MSE, Eq. 3.1), on random crops of ``train.crop_frames`` encoder frames (0 = whole
   notes; the networks are convolutional, so a crop trains the same maps).
2. ``lstm``: the encoder is frozen; the LSTM is fitted by MSE to its embeddings ``e(x)`` of the
   training notes with truncated back-propagation through time (windows of ``train.tbptt``
   steps, one Adam update per window, the LSTM state carried across windows).
   One step = one batch of whole sequences (ceil(N / tbptt) updates).
3. ``e2e``: LSTM + decoder end to end on the training loss, full back-propagation through time.

A step's batch depends only on ``(seed, step)``, so ``--resume`` continues exactly. The run
folder holds ``checkpoint-<step>`` folders (:mod:`darkgan.sing.checkpoint`), ``LATEST``,
``split.json`` (the pitch-completion split) and ``tb/`` (TensorBoard: losses, held-out test
loss, audio). ``--init-ae RUN`` starts from another run's autoencoder (the Table 1 variants share
stage 1).
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from darkgan.errors import DarkGANError
from darkgan.sing import checkpoint as ckpt
from darkgan.sing.config import SingConfig, get_config
from darkgan.sing.data import SingNotes, load_notes
from darkgan.sing.losses import note_loss, spectral_loss
from darkgan.sing.model import Sing, pad_note
from darkgan.utils.config import apply_overrides

STAGES = ("ae", "lstm", "e2e")


def stage_plan(cfg: SingConfig) -> list[tuple[str, int, int]]:
    """``[(stage, first_step, n_steps)]`` of the run's global step counter."""
    t, out, start = cfg.train, [], 0
    for name, n in zip(STAGES, (t.ae_steps, t.lstm_steps, t.e2e_steps)):
        out.append((name, start, n))
        start += n
    return out


def stage_at(cfg: SingConfig, step: int) -> str:
    """The stage that global step ``step`` belongs to (``"done"`` past the end)."""
    for name, start, n in stage_plan(cfg):
        if step < start + n:
            return name
    return "done"


def stage_costs(cfg: SingConfig) -> list[float]:
    """Relative cost of one step of each stage (GMACs of forward + backward, ~3x the forward),
    for the ETA of :class:`darkgan.training.progress.RemainingTime`."""
    m, t = cfg.model, cfg.train

    def dec(frames: int) -> float:
        return frames * (m.context_size * m.dimension * m.channels + m.rewrite_layers * m.channels ** 2
                         + m.channels * m.kernel_size)

    def enc(frames: int) -> float:
        return frames * (m.kernel_size * m.channels + m.rewrite_layers * m.channels ** 2 + m.channels * m.dimension)

    n_in = m.velocity_dim + m.instrument_dim + m.pitch_dim + m.time_dim
    lstm = m.n_frames * 4 * m.lstm_hidden * (m.lstm_hidden * m.lstm_layers + n_in + m.lstm_hidden * (m.lstm_layers - 1))
    crop = t.crop_frames or m.n_frames
    return [3 * t.batch_size * (enc(crop) + dec(crop)) / 1e9 + 0.05,
            3 * t.lstm_batch_size * lstm / 1e9 + 0.05,
            3 * t.batch_size * (lstm + dec(m.n_frames)) / 1e9 + 0.05]


@dataclass
class _Run:
    cfg: SingConfig
    model: Sing
    notes: SingNotes
    out: Path
    step: int
    extra: dict
    opt: torch.optim.Optimizer | None = None
    opt_stage: str = ""
    targets: torch.Tensor | None = None  # stage 2: e(x) of the training notes [n_train, D, N]
    writer: object = None


def _params(model: Sing, stage: str) -> list[torch.nn.Parameter]:
    mods = {"ae": (model.encoder, model.decoder), "lstm": (model.generator,), "e2e": (model.generator, model.decoder)}
    return [p for mod in mods[stage] for p in mod.parameters()]


def _optimizer(run: _Run, stage: str) -> torch.optim.Optimizer:
    """The stage's Adam (a new one when the stage changes; only its parameters train)."""
    if run.opt is None or run.opt_stage != stage:
        run.opt = torch.optim.Adam(_params(run.model, stage), lr=run.cfg.train.lr)
        run.opt_stage = stage
    return run.opt


def _update(run: _Run, loss: torch.Tensor, stage: str) -> None:
    opt = _optimizer(run, stage)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if run.cfg.train.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(_params(run.model, stage), run.cfg.train.grad_clip)
    opt.step()


def _batch_idx(run: _Run, n: int) -> tuple[np.ndarray, np.random.Generator]:
    rng = np.random.default_rng([run.cfg.train.seed, run.step])
    train = run.notes.indices("train")
    return train[rng.integers(0, len(train), n)], rng


def step_ae(run: _Run) -> dict[str, float]:
    """One autoencoder update on random crops (or whole notes) of training notes."""
    m, t = run.cfg.model, run.cfg.train
    idx, rng = _batch_idx(run, t.batch_size)
    wave = run.notes.batch(idx)[0]
    x = pad_note(wave * m.gain, m)  # the model's level (model.gain)
    if t.crop_frames:
        length = (t.crop_frames - 1) * m.stride + m.kernel_size
        starts = rng.integers(0, x.shape[1] - length + 1, len(idx))
        x = torch.stack([x[i, s:s + length] for i, s in enumerate(starts)])
    y = run.model.decoder(run.model.encoder(x))
    target = x[:, m.left_pad:m.left_pad + y.shape[1]]
    loss = note_loss(t.loss, y, target, t)
    _update(run, loss, "ae")
    return {"ae/loss": float(loss.detach())}


@torch.no_grad()
def encode_targets(model: Sing, notes: SingNotes, idx: np.ndarray, batch: int = 32, progress: bool = False) -> torch.Tensor:
    """``e(x)`` of the notes ``idx``: ``[len(idx), D, N]`` (stage 2's targets)."""
    from tqdm import tqdm

    out = []
    for i in tqdm(range(0, len(idx), batch), desc="encode", unit="batch", disable=not progress, leave=False):
        out.append(model.encoder(pad_note(notes.batch(idx[i:i + batch])[0] * model.m.gain, model.m)))
    return torch.cat(out)


def step_lstm(run: _Run) -> dict[str, float]:
    """One batch of whole sequences through the LSTM by truncated BPTT (an update per window)."""
    m, t = run.cfg.model, run.cfg.train
    if run.targets is None:
        run.model.encoder.eval()
        run.targets = encode_targets(run.model, run.notes, run.notes.indices("train"), progress=True)
    train = run.notes.indices("train")
    rng = np.random.default_rng([t.seed, run.step])
    pos = rng.integers(0, len(train), t.lstm_batch_size)
    _, v, i, p = run.notes.batch(train[pos])
    target, state, total = run.targets[pos], None, 0.0
    for start in range(0, m.n_frames, t.tbptt):
        length = min(t.tbptt, m.n_frames - start)
        s, state = run.model.generator(v, i, p, start, length, state)
        state = tuple(h.detach() for h in state)
        loss = F.mse_loss(s, target[:, :, start:start + length])
        _update(run, loss, "lstm")
        total += float(loss.detach()) * length
    return {"lstm/mse": total / m.n_frames}


def step_e2e(run: _Run) -> dict[str, float]:
    """One end-to-end update of LSTM + decoder on whole notes."""
    t = run.cfg.train
    idx, _ = _batch_idx(run, t.batch_size)
    wave, v, i, p = run.notes.batch(idx)
    g = run.cfg.model.gain
    loss = note_loss(t.loss, g * run.model(v, i, p), g * wave, t)
    _update(run, loss, "e2e")
    return {"e2e/loss": float(loss.detach())}


@torch.no_grad()
def heldout_losses(model: Sing, notes: SingNotes, cfg: SingConfig, split: str = "test", n: int = 16) -> dict:
    """Spectral loss (at the model's level, ``model.gain``) of the autoencoder and of SING on
    ``n`` fixed notes of ``split``."""
    idx = notes.indices(split)[:: max(1, len(notes.indices(split)) // n)][:n]
    wave, v, i, p = notes.batch(idx)
    t, g = cfg.train, cfg.model.gain
    was = model.training
    model.eval()
    out = {f"{split}/ae_spectral": float(spectral_loss(g * model.autoencode(wave), g * wave, t.stft_n_fft, t.stft_hop,
                                                        t.stft_eps)),
           f"{split}/sing_spectral": float(spectral_loss(g * model(v, i, p), g * wave, t.stft_n_fft, t.stft_hop, t.stft_eps))}
    model.train(was)
    return out


STEP_FNS = {"ae": step_ae, "lstm": step_lstm, "e2e": step_e2e}


def _setup(data_dir, out: Path, preset: str, overrides, resume: bool, n_instruments: int, instruments,
           init_ae, progress: bool) -> _Run:
    """Config, notes and model of a new or resumed run."""
    from darkgan.models.checkpoint import clean_interrupted_writes
    from darkgan.training.loop import run_has_checkpoint

    clean_interrupted_writes(out)
    has = out.is_dir() and run_has_checkpoint(out)
    if has and not resume:
        raise DarkGANError(f"{out}: holds a SING run already; pass --resume to continue it or choose another folder")
    if resume and has:
        model, cfg, _, meta = ckpt.load(out)
        if overrides:  # on the run's own configuration (not the preset's current code)
            cfg = apply_overrides(cfg, list(overrides))
            cfg.overrides = tuple(cfg.overrides) + tuple(overrides)
            cfg.validate()
        extra = dict(meta.get("extra") or {})
        notes = load_notes(data_dir or extra["data"], cfg.model.n_samples, instruments=extra["instruments"],
                           fraction=extra["test_fraction"], seed=cfg.train.seed, preset=cfg.preset, progress=progress)
        run = _Run(cfg, model.train(), notes, out, int(meta["step"]), extra)
        opt_state = ckpt.load_optim(Path(meta["path"]))
        stage = stage_at(cfg, run.step)
        if opt_state is not None and opt_state.get("stage") == stage:
            _optimizer(run, stage).load_state_dict(opt_state["adam"])
        return run
    if data_dir is None:
        raise DarkGANError("--data DIR is required to start a SING run")
    cfg = get_config(preset, overrides)
    notes = load_notes(data_dir, cfg.model.n_samples, instruments=instruments, n_instruments=n_instruments,
                       seed=cfg.train.seed, preset=cfg.preset, progress=progress)
    torch.manual_seed(cfg.train.seed)
    model = Sing(cfg.model, len(notes.vocab.velocities), len(notes.vocab.instruments), notes.vocab.n_pitches)
    extra = {"data": str(Path(data_dir).resolve()), "instruments": notes.vocab.instruments, "test_fraction": 0.1,
             "n_train": len(notes.indices("train")), "n_test": len(notes.indices("test"))}
    run = _Run(cfg, model.train(), notes, out, 0, extra)
    if init_ae:
        _init_autoencoder(run, init_ae)
    from darkgan.utils.io import write_json

    write_json(out / "split.json", {"scheme": "pitch-completion", "fraction": 0.1, "seed": cfg.train.seed,
                                    "splits": dict(zip(notes.note_str.tolist(), notes.split.tolist()))})
    return run


def _init_autoencoder(run: _Run, path) -> None:
    """Copy encoder + decoder from another run's checkpoint past stage 1 and skip stage 1.

    Raises:
        DarkGANError: the source has not finished its autoencoder, or other sizes/instruments.
    """
    src, src_cfg, src_vocab, meta = ckpt.load(path)
    if stage_at(src_cfg, int(meta["step"])) == "ae":
        raise DarkGANError(f"{path}: its autoencoder stage is not finished (step {meta['step']} of {src_cfg.train.ae_steps})")
    for k in ("channels", "dimension", "kernel_size", "stride", "context_size", "rewrite_layers", "n_samples"):
        if getattr(src_cfg.model, k) != getattr(run.cfg.model, k):
            raise DarkGANError(f"{path}: model.{k} differs ({getattr(src_cfg.model, k)} vs {getattr(run.cfg.model, k)})")
    if src_vocab.instruments != run.notes.vocab.instruments:
        raise DarkGANError(f"{path}: trained on other instruments; pass the same --instruments/--n-instruments")
    run.model.encoder.load_state_dict(src.encoder.state_dict())
    run.model.decoder.load_state_dict(src.decoder.state_dict())
    run.step = run.cfg.train.ae_steps
    run.extra["init_ae"] = meta["path"]


def _save(run: _Run, last: dict) -> Path:
    stage = stage_at(run.cfg, run.step)
    optim = {"stage": run.opt_stage, "adam": run.opt.state_dict()} if run.opt is not None else None
    return ckpt.save_run(run.out, run.step, run.model, run.cfg, run.notes.vocab, stage=stage, optim=optim,
                         train_state={"step": run.step, "stage": stage, "last": last}, extra=run.extra)


def _log(run: _Run, metrics: dict, heldout: bool) -> dict:
    if heldout:
        metrics = {**metrics, **heldout_losses(run.model, run.notes, run.cfg)}
        if stage_at(run.cfg, run.step) in ("e2e", "done"):
            i = run.notes.indices("test")[:1]
            _, v, ins, p = run.notes.batch(i)
            with torch.no_grad():
                wave = run.model.eval()(v, ins, p)[0].clamp(-1, 1)
            run.model.train()
            run.writer.add_audio(f"test/{run.notes.note_str[i[0]]}", wave[None], run.step, sample_rate=16000)
    for k, v in metrics.items():
        run.writer.add_scalar(k, v, run.step)
    return metrics


def _stop_reason(signal: bool, seconds: float, max_minutes, steps: int, max_steps, step: int, until_step) -> str:
    """Why a run stops after this step (``"finished"`` = it does not)."""
    if signal:
        return "signal"
    if max_minutes is not None and seconds > 60 * max_minutes:
        return "max-minutes"
    if max_steps is not None and steps >= max_steps:
        return "max-steps"
    if until_step is not None and step >= until_step:
        return "until-step"
    return "finished"


def train(data_dir, out_dir, *, preset: str = "cpu", overrides=(), resume: bool = False, n_instruments: int = 32,
          instruments: list[str] | None = None, init_ae=None, max_minutes: float | None = None,
          threads: int | None = None, progress: bool = True, max_steps: int | None = None,
          until_step: int | None = None) -> dict:
    """Train (or continue) a SING run in ``out_dir``; returns ``{"step", "stage", "checkpoint",
    "metrics", "stopped"}``.

    Args:
        data_dir: NSynth-layout dataset (whole 4 s notes); on resume, None = the run's.
        preset, overrides: :func:`darkgan.sing.config.get_config`.
        n_instruments / instruments: the instrument subset (0 = all).
        init_ae: a run/checkpoint whose finished autoencoder replaces stage 1.
        max_minutes: stop with a checkpoint after this wall time (continue with ``resume``).
        threads: torch CPU threads.
        max_steps: stop with a checkpoint after this many steps of this call.
        until_step: stop with a checkpoint once the run's global step reaches this.

    Raises:
        DarkGANError: a run folder already used (without ``resume``), another job writing into
            it, bad data, bad settings, a non-finite loss.
    """
    from darkgan.training.loop import _Signals
    from darkgan.utils.io import folder_lock

    if threads:
        torch.set_num_threads(threads)
    out = Path(out_dir)
    with folder_lock(out), _Signals() as sigs:
        run = _setup(data_dir, out, preset, overrides, resume, n_instruments, instruments, init_ae, progress)
        from torch.utils.tensorboard import SummaryWriter

        run.writer = SummaryWriter(str(out / "tb"), purge_step=run.step or None)
        last, stopped = _loop(run, lambda steps, seconds: _stop_reason(sigs.flag, seconds, max_minutes, steps, max_steps,
                                                                       run.step, until_step), progress)
        path = _save(run, last)
        run.writer.close()
    return {"step": run.step, "stage": stage_at(run.cfg, run.step), "checkpoint": str(path), "metrics": last,
            "stopped": stopped}


def _loop(run: _Run, stop, progress: bool) -> tuple[dict, str]:
    """Steps until the plan ends or ``stop(steps_done, seconds) != "finished"``; logs, held-out
    losses and checkpoints on the way. Returns ``(last metrics, why it stopped)``."""
    from tqdm import tqdm

    from darkgan.training.progress import RemainingTime, format_seconds

    plan = stage_plan(run.cfg)
    total, t = plan[-1][1] + plan[-1][2], run.cfg.train
    eta = RemainingTime([s for _, s, _ in plan], [n for *_, n in plan], stage_costs(run.cfg))
    t0, last, stopped, first = time.monotonic(), {}, "finished", run.step
    bar = tqdm(total=total, initial=run.step, desc="sing", unit="step", disable=not progress, dynamic_ncols=True)
    with contextlib.closing(bar):
        while run.step < total:
            stage = stage_at(run.cfg, run.step)
            metrics = STEP_FNS[stage](run)
            if not all(math.isfinite(v) for v in metrics.values()):
                _save(run, last)
                raise DarkGANError(f"{run.out}: non-finite loss at step {run.step} ({metrics}); lower train.lr")
            run.step += 1
            eta.tick(run.step)
            last = metrics
            if run.step % t.log_every == 0 or run.step == total:
                heldout = run.step % t.checkpoint_every == 0 or run.step == total
                last = _log(run, metrics, heldout)
                if heldout:
                    eta.pause()
            bar.update(1)
            bar.set_postfix_str(f"{stage} {next(iter(metrics.values())):.4f} eta={format_seconds(eta.seconds_left(run.step))}")
            if run.step % t.checkpoint_every == 0 and run.step < total:
                _save(run, last)
                eta.pause()
            stopped = stop(run.step - first, time.monotonic() - t0)
            if stopped != "finished":
                break
    return last, stopped
