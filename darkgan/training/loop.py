"""The training loop: progressive schedule, D/G steps, checkpoints, resume, logging, DDP.

One *step* = one critic update (:func:`train_step_d`) then one generator update
(:func:`train_step_g`), as the reference (n_critic = 1). Steps are numbered globally over all
scales; :class:`Schedule` maps a step to its scale, fade-in alpha, batch size and data offset.

Exact resume: every random draw of step ``k`` (noise z, gradient-penalty mixing weights) comes
from a generator seeded by ``(seed, k)`` (each rank keeps its slice of the global batch's draws,
so N ranks compute what one process would on the whole batch), and the data of step ``k`` is a pure function of
the sample offset (:func:`darkgan.training.data.sample_rows`); the checkpoint stores the raw and
EMA generator, the critic and both Adam states (plus the global RNG states, for completeness).
A resumed run therefore computes bit-for-bit what an uninterrupted one computes on the same
device (tested on CPU with the ``tiny`` preset).

Distributed: under torchrun, G and the critic are wrapped in
:class:`~torch.nn.parallel.DistributedDataParallel` (``find_unused_parameters``: only the
current scales' layers take part). The critic's three passes of a D step (real, fake and the
gradient-penalty interpolates) run inside *one* DDP forward (:class:`CriticPasses`) so that the
double-backward of the penalty and the gradient all-reduce happen in a single backward.
"""
from __future__ import annotations

import contextlib
import copy
import fnmatch
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn as nn

from darkgan.errors import CheckpointError, DarkGANError
from darkgan.models.checkpoint import (CRITIC_FILE, LATEST, MARKER, CheckpointConfig, clean_interrupted_writes,
                                       load_critic, load_generator, load_into, load_training_state,
                                       save_run_checkpoint)
from darkgan.models.config import Config, TrainConfig, apply_overrides, get_preset
from darkgan.models.critic import Critic
from darkgan.models.generator import Generator
from darkgan.paths import provenance
from darkgan.training import distributed as dist_utils
from darkgan.training.losses import (critic_wasserstein_loss, drift_loss,
                                     generator_wasserstein_loss, gradient_penalty,
                                     interpolate, pitch_loss, teacher_attribute_loss,
                                     teacher_soft_labels, update_ema)
from darkgan.training.terms import WaveTerms, attribute_stats, attribute_whitening
from darkgan.training.progress import RemainingTime, format_seconds, step_costs
from darkgan.training.memory import check_memory
from darkgan.utils.io import folder_lock


# ----------------------------------------------------------------------------------- schedule

class Schedule:
    """The progressive schedule of a :class:`TrainConfig`.

    Scale s runs for ``iterations[s]`` steps starting at ``start[s]``; its fade-in alpha grows
    linearly from 0 in ``fade_in_jumps[s]`` jumps, one every ``alpha_jump_size`` steps (reference
    "alphaJumpMode: linear"; our alpha is the *new* scale's weight, the reference's is the old
    one's). Scales with 0 iterations are skipped.
    """

    def __init__(self, tc: TrainConfig):
        self.tc = tc
        self.iters = [int(i) for i in tc.iterations]
        self.start = [0]
        for i in self.iters[:-1]:
            self.start.append(self.start[-1] + i)
        self.total = sum(self.iters)
        # global sample offset at the start of each scale
        self.offset0 = [0]
        for i, b in zip(self.iters[:-1], tc.batch_size[:-1]):
            self.offset0.append(self.offset0[-1] + i * int(b))

    def scale_at(self, step: int) -> int:
        step = min(step, self.total - 1)
        for s in range(len(self.iters) - 1, -1, -1):
            if self.iters[s] and step >= self.start[s]:
                return s
        return 0

    def alpha_at(self, step: int) -> float:
        s = self.scale_at(step)
        n = int(self.tc.fade_in_jumps[s])
        if s == 0 or n == 0:
            return 1.0
        i = min(step, self.total - 1) - self.start[s]
        return min(1.0, (i // int(self.tc.alpha_jump_size)) / n)

    def ema_decay_at(self, step: int) -> float:
        """EMA decay of ``step``: ``train.ema_decay``, ramped up from each scale's start when
        ``train.ema_warmup`` (see :class:`~darkgan.models.config.TrainConfig`)."""
        decay = float(self.tc.ema_decay)
        if not self.tc.ema_warmup:
            return decay
        t = min(step, self.total - 1) - self.start[self.scale_at(step)]
        return min(decay, (1.0 + t) / (10.0 + t))

    def batch_size_at(self, step: int) -> int:
        return int(self.tc.batch_size[self.scale_at(step)])

    def offset_at(self, step: int) -> int:
        s = self.scale_at(step)
        return self.offset0[s] + (step - self.start[s]) * int(self.tc.batch_size[s])

    def is_scale_start(self, step: int) -> bool:
        s = self.scale_at(step)
        return step == self.start[s] and step > 0

    def plan(self, start: int, stop: int | None = None) -> Iterator[tuple[int, int, int]]:
        """``(step, global sample offset, global batch size)`` for ``start <= step < stop``."""
        for step in range(start, self.total if stop is None else min(stop, self.total)):
            yield step, self.offset_at(step), self.batch_size_at(step)


def step_generator(seed: int, step: int) -> torch.Generator:
    """The CPU generator of all random draws of ``step`` (exact resume; every rank draws the
    global batch's numbers and keeps its slice)."""
    s = np.random.SeedSequence([int(seed), int(step), 0x6A4B]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(s[0] >> np.uint64(1)))


# -------------------------------------------------------------------------------------- state

class CriticPasses(nn.Module):
    """Runs the critic on several inputs inside one ``forward`` (one DDP forward per D step).

    ``forward(xs, scale, alpha, amp, attributes=None)`` -> list of ``(score, attr_logits,
    pitch_logits)``; ``amp[i]`` enables bf16 autocast for input ``i`` (never for the
    gradient-penalty pass); ``attributes [b, K]``: the conditioning of every input (a projection
    critic scores each input against it).
    """

    def __init__(self, critic: Critic, bf16: bool = False):
        super().__init__()
        self.critic = critic
        self.bf16 = bf16

    def forward(self, xs: list[torch.Tensor], scale: int, alpha: float, amp: list[bool],
                attributes: torch.Tensor | None = None):
        outs = []
        for x, use in zip(xs, amp):
            with torch.autocast(device_type=x.device.type, dtype=torch.bfloat16, enabled=bool(use and self.bf16)):
                outs.append(self.critic(x, scale, alpha, attributes))
        return outs


@dataclass
class State:
    """Everything that evolves during training.

    ``G``/``D`` are the bare modules (weights, checkpoints); ``G_train``/``D_train`` the modules the
    steps call (DDP wrappers under torchrun, else ``G`` and ``CriticPasses(D)``).
    """

    G: Generator
    D: Critic
    G_ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    G_train: nn.Module
    D_train: nn.Module
    step: int = 0
    scale: int = 0
    alpha: float = 1.0
    bf16: bool = False
    channels_last: bool = False
    #: ``[K]`` training std of ``z / T`` per attribute (``train.attr_loss = "std_mse"``)
    attr_std: torch.Tensor | None = None

    def attr_loss(self, logits: torch.Tensor, alpha: torch.Tensor, tc: TrainConfig) -> torch.Tensor:
        """The critic's attribute head ``logits [b, K]`` against ``alpha [b, K]`` in (0, 1)
        (``train.attr_loss``): paper Eq. 2 BCE at T, or the squared error in standardised logit
        units (:func:`teacher_attribute_loss`). Returns a scalar."""
        return teacher_attribute_loss(logits, alpha, tc.temperature, self.attr_std, tc.attr_loss)


def make_optimizers(G: nn.Module, D: nn.Module, tc: TrainConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    kw: dict[str, Any] = dict(lr=tc.lr, betas=tuple(tc.betas), eps=tc.adam_eps)
    if any(p.is_cuda for p in G.parameters()):
        kw["fused"] = True
    else:
        kw["foreach"] = True
    return torch.optim.Adam(G.parameters(), **kw), torch.optim.Adam(D.parameters(), **kw)


def build_state(cfg: Config, n_pitches: int, n_attributes: int, device: torch.device,
                info: dist_utils.DistInfo | None = None) -> State:
    """Fresh models (seeded by ``cfg.train.seed``), optimizers and (DDP) wrappers; bf16 autocast
    and the memory layout by ``cfg.train.precision`` and ``cfg.train.memory_format``."""
    info = info or dist_utils.DistInfo(device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.train.seed)
        G = Generator(cfg.model, n_pitches, n_attributes)
        D = Critic(cfg.model, n_pitches, n_attributes)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False) if cfg.train.ema else None
    cuda = device.type == "cuda"
    tc = cfg.train
    bf16 = tc.precision == "bf16" or (tc.precision == "auto" and cuda)
    nhwc = tc.memory_format == "channels_last" or (tc.memory_format == "auto" and cuda)
    G.to(device), D.to(device)
    if G_ema is not None:
        G_ema.to(device)
    if nhwc:
        for m in (G, D, G_ema):
            if m is not None:
                m.to(memory_format=torch.channels_last)
    opt_g, opt_d = make_optimizers(G, D, cfg.train)
    passes = CriticPasses(D, bf16=bf16)
    if info.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if cuda else None
        G_train = DDP(G, device_ids=ids, find_unused_parameters=True)
        D_train = DDP(passes, device_ids=ids, find_unused_parameters=True)
    else:
        G_train, D_train = G, passes
    return State(G, D, G_ema, opt_g, opt_d, G_train, D_train, bf16=bf16, channels_last=nhwc)


# -------------------------------------------------------------------------------------- steps

def _amp(st: State, device: torch.device):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if st.bf16 else contextlib.nullcontext()


def _draw(gen: torch.Generator, shape: tuple[int, ...], shard: tuple[int, int], kind: str) -> torch.Tensor:
    """Draw the *global* batch's random numbers and keep this rank's slice, so that N ranks of
    b notes use exactly the noise of one process on N * b notes."""
    rank, world = shard
    full = (shape[0] * world, *shape[1:])
    x = torch.randn(full, generator=gen) if kind == "normal" else torch.rand(full, generator=gen)
    return x[rank * shape[0]:(rank + 1) * shape[0]]


def train_step_d(st: State, real: torch.Tensor, pitch_index: torch.Tensor, soft_labels: torch.Tensor,
                 tc: TrainConfig, gen: torch.Generator, shard: tuple[int, int] = (0, 1)) -> dict[str, torch.Tensor]:
    """One critic update (paper Sec. 4.3.2; WGAN-GP + drift + auxiliary losses on real notes).

    Args:
        st: the training state (uses ``st.scale``, ``st.alpha``).
        real: ``[b, 2, H_s, W_s]`` normalised real MAG-IF at the current scale.
        pitch_index: ``[b]`` long; soft_labels: ``[b, K]`` teacher ``sigmoid(z / T)`` (also the
            conditioning of the fakes, as the reference conditions G on the real batch's labels).
        tc: loss weights etc.; gen: the step's CPU random generator; shard: (rank, world size).

    Returns:
        detached scalar tensors: ``d_loss``, ``d_wdist`` (E[D(real)] - E[D(fake)]), ``gp`` and
        ``grad_norm`` (only on steps where the lazy penalty runs), ``drift``, ``d_attr``,
        ``d_pitch``, ``d_pitch_acc_real``, ``d_attr_acc_real``.
    """
    b, dev = real.shape[0], real.device
    z = _draw(gen, (b, st.G.cfg.latent_dim), shard, "normal").to(dev)
    u = _draw(gen, (b,), shard, "uniform").to(dev)
    with torch.no_grad(), _amp(st, dev):
        fake = st.G(z, pitch_index, soft_labels, st.scale, st.alpha)
    fake = fake.float()
    if st.channels_last:
        fake = fake.contiguous(memory_format=torch.channels_last)
    lazy_gp = st.step % tc.gp_every == 0  # lazy regularisation (StyleGAN2 Sec. 3.1)
    xs = [real, fake] + ([interpolate(real, fake, u)] if lazy_gp else [])
    outs = st.D_train(xs, st.scale, st.alpha, [True, True, False][:len(xs)], soft_labels)
    (rs, ra, rp), (fs, fa, fp) = outs[0], outs[1]
    w = tc.loss_weights
    l_w = critic_wasserstein_loss(rs, fs)
    gp, norms = gradient_penalty(outs[2][0], xs[2]) if lazy_gp else (torch.zeros((), device=dev), None)
    drift = drift_loss(rs, tc.drift_epsilon)
    l_attr = st.attr_loss(ra, soft_labels, tc)
    l_pitch = pitch_loss(rp, pitch_index)
    loss = l_w + tc.gp_lambda * tc.gp_every * gp + drift + w["d_attr"] * l_attr + w["d_pitch"] * l_pitch
    if w.get("d_attr_fake"):
        loss = loss + w["d_attr_fake"] * st.attr_loss(fa, soft_labels, tc)
    if w.get("d_pitch_fake"):
        loss = loss + w["d_pitch_fake"] * pitch_loss(fp, pitch_index)
    st.opt_d.zero_grad(set_to_none=True)
    loss.backward()
    st.opt_d.step()
    with torch.no_grad():
        return {
            "d_loss": loss.detach(), "d_wdist": -l_w.detach(),
            **({"gp": gp.detach(), "grad_norm": norms.mean()} if lazy_gp else {}),
            "drift": drift.detach(), "d_attr": l_attr.detach(), "d_pitch": l_pitch.detach(),
            "d_pitch_acc_real": (rp.argmax(-1) == pitch_index).float().mean(),
            "d_attr_acc_real": ((ra > 0) == (soft_labels > 0.5)).float().mean() if ra.shape[-1] else torch.zeros((), device=dev),
        }


#: A map from the generator's output ``[b, 2, H, W]`` (normalised MAG-IF) and its latents ``[b, Z]``
#: to named loss terms (scalars), weighted by ``train.loss_weights[name]``: how the loop adds
#: waveform-level losses.
OutputTerms = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def _with_partners(z: torch.Tensor, pitch_index: torch.Tensor, conditioning: torch.Tensor,
                   partners) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The generator's inputs with the partners of ``g_consistency`` / ``g_increment`` appended
    (:class:`darkgan.training.terms.Partners`: note ``rows[j]``'s z again, at ``pitch[j]`` with
    ``conditioning[j]``); one forward generates all (the generator has no batch statistics).

    Shapes: ``z [b, Z]``, ``pitch_index [b]``, ``conditioning [b, K]`` -> the same with ``b + M``
    rows. Unchanged when ``partners`` is None or empty."""
    if partners is None or partners.rows.numel() == 0:
        return z, pitch_index, conditioning
    return (torch.cat([z, z[partners.rows.to(z.device)]]), torch.cat([pitch_index, partners.pitch.to(pitch_index)]),
            torch.cat([conditioning, partners.conditioning.to(conditioning)]))


def _generate_with_targets(st: State, z: torch.Tensor, pitch_index: torch.Tensor, conditioning: torch.Tensor,
                           n_targets: int) -> torch.Tensor:
    """``G(z, pitch, conditioning)`` at the current scale, ``[N, 2, H, W]``; the last ``n_targets`` rows
    (``g_steer``'s steered partners, targets the loss detaches) in a forward of the bare generator
    without a graph, so the backward pass spends nothing on rows whose gradient is zero. Same values
    as one forward of all rows up to float rounding (the generator has no batch statistics)."""
    if n_targets <= 0:
        return st.G_train(z, pitch_index, conditioning, scale=st.scale, alpha=st.alpha)
    k = z.shape[0] - n_targets
    out = st.G_train(z[:k], pitch_index[:k], conditioning[:k], scale=st.scale, alpha=st.alpha)
    with torch.no_grad():
        target = st.G(z[k:], pitch_index[k:], conditioning[k:], scale=st.scale, alpha=st.alpha)
    return torch.cat([out, target.to(out.dtype)])


def train_step_g(st: State, pitch_index: torch.Tensor, conditioning: torch.Tensor, tc: TrainConfig,
                 gen: torch.Generator, shard: tuple[int, int] = (0, 1),
                 ema_decay: float | None = None, terms: OutputTerms | None = None) -> dict[str, torch.Tensor]:
    """One generator update: ``-E[D(G(z, p, a))]`` + distillation through the critic (targets:
    the conditioning a) + pitch cross-entropy (+ output terms), then the EMA update.

    Args:
        pitch_index: ``[b]`` long; conditioning: ``[b, K]`` attribute values in [0, 1].
        ema_decay: this step's EMA decay (default ``tc.ema_decay``; the loop passes the
            warmed-up value of ``Schedule.ema_decay_at``).
        terms: :data:`OutputTerms` computed on the generated batch, each weighted by
            ``tc.loss_weights[name]`` (the loop passes the waveform f0 loss ``g_f0``, the
            teacher-in-the-loop ``g_teacher`` and the timbre consistency ``g_consistency`` when
            their weights are > 0; ``g_increment`` too). When ``terms`` has ``partners``
            (:class:`darkgan.training.terms.Partners`, M notes: some notes' z again at another
            pitch or with one attribute raised), they are generated in the same forward
            (``g_steer``'s steered targets in one of their own without a graph,
            :func:`_generate_with_targets`) and ``terms`` gets ``[b + M, 2, H, W]``; the critic
            sees only the first b.

    Returns:
        detached scalars ``g_loss``, ``g_adv``, ``g_attr``, ``g_pitch``, ``d_pitch_acc_fake``,
        ``d_attr_acc_fake`` and each output term by name.
    """
    b, dev = pitch_index.shape[0], pitch_index.device
    z = _draw(gen, (b, st.G.cfg.latent_dim), shard, "normal").to(dev)
    critic = tc.uses_critic  # else the output terms alone teach G
    partners = getattr(terms, "partners", None)
    zg, pg, cg = _with_partners(z, pitch_index, conditioning, partners)
    st.D.requires_grad_(False)
    try:
        with _amp(st, dev):
            out = _generate_with_targets(st, zg, pg, cg, partners.n_steer if partners is not None else 0)
            fake = out[:b] if out.shape[0] > b else out
            s, a, p = st.D(fake, st.scale, st.alpha, conditioning) if critic else (None, None, None)
        w = tc.loss_weights
        losses = {"g_adv": generator_wasserstein_loss(s), "g_attr": st.attr_loss(a, conditioning, tc),
                  "g_pitch": pitch_loss(p, pitch_index)} if critic else {}
        if terms is not None:
            losses.update(terms(out.float(), zg))
        loss = sum(v * w[k] for k, v in losses.items())
        st.opt_g.zero_grad(set_to_none=True)
        loss.backward()
    finally:
        st.D.requires_grad_(True)
    st.opt_g.step()
    if st.G_ema is not None:
        update_ema(st.G_ema, st.G, tc.ema_decay if ema_decay is None else ema_decay)
    with torch.no_grad():
        out = {"g_loss": loss.detach(), **{k: v.detach() for k, v in losses.items()}}
        if critic:
            out["d_pitch_acc_fake"] = (p.argmax(-1) == pitch_index).float().mean()
            out["d_attr_acc_fake"] = (((a > 0) == (conditioning > 0.5)).float().mean() if a.shape[-1]
                                      else torch.zeros((), device=dev))
        return out


# ------------------------------------------------------------------------------------ results

@dataclass
class TrainResult:
    step: int
    total_steps: int
    finished: bool
    reason: str  # "finished", "max-minutes", "signal", "stop-at-step"
    checkpoint: Path | None
    seconds: float
    steps_per_second: float
    ranks_consistent: bool = True
    last_metrics: dict = field(default_factory=dict)
    state: Any = None  # the final State (models, optimizers): for tests and benchmarks
    signal: int | None = None  # the signal number that stopped the run (reason "signal")


def run_has_checkpoint(out: Path) -> bool:
    return (out / LATEST).is_file() or any((p / MARKER).is_file() for p in out.glob("checkpoint-*"))


def _rng_snapshot() -> tuple[dict, dict]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    np_state = np.random.get_state()
    py_state = random.getstate()
    js = {"numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
          "python": [py_state[0], list(py_state[1]), py_state[2]]}
    return tensors, js


def _rng_restore(tensors: dict, js: dict) -> None:
    if "torch_cpu" in tensors:
        torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(k for k in tensors if k.startswith("torch_cuda_"))]
        if states and len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    if "numpy" in js:
        a = js["numpy"]
        np.random.set_state((a[0], np.array(a[1], dtype=np.uint32), a[2], a[3], a[4]))
    if "python" in js:
        a = js["python"]
        random.setstate((a[0], tuple(a[1]), a[2]))


class _Signals:
    """SIGINT/SIGTERM set a flag; the loop checkpoints and stops after the current step."""

    def __init__(self):
        self.flag = False
        self.signum: int | None = None  # the first signal received (exit status 128 + signum)
        self.old: dict = {}

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handler)
        return self

    def _handler(self, signum, frame):
        if self.flag:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        self.flag = True
        self.signum = int(signum)

    def __exit__(self, *exc):
        for sig, h in self.old.items():
            signal.signal(sig, h)


def _set_threads(device: torch.device, threads: int | None, local_world: int) -> None:
    if device.type != "cpu":
        return
    n = threads or max(1, (os.cpu_count() or 1) // max(1, local_world))
    torch.set_num_threads(n)


# ----------------------------------------------------------------------------- the main loop

def resolve_config(preset: str = "small", overrides: list[str] | tuple[str, ...] = (),
                   temperature: float | None = None) -> Config:
    """Preset + overrides (+ ``--temperature`` as ``train.temperature``)."""
    cfg = get_preset(preset)
    ov = list(overrides)
    if temperature is not None:
        ov.append(f"train.temperature={float(temperature)}")
    return apply_overrides(cfg, ov) if ov else cfg


#: Settings ``--resume`` may change (``fnmatch`` patterns): the schedule's length, how often to
#: log/checkpoint, and the loss weights (also per attribute), the onset-burst bounds and g_steer's edits (fine-tuning).
RESUME_SAFE_KEYS = ("train.iterations", "train.checkpoint_every", "train.log_every", "train.sample_every",
                    "train.loss_weights.*", "train.envelope_*", "train.precision", "train.memory_format",
                    "train.gp_every", "train.steer_*", "train.partial_*", "train.profile_*", "train.tail_from_s", "train.anchor_*", "train.f0_reference", "train.teacher_attribute_weights", "train.teacher_loss",
                    "train.teacher_white_eps", "train.teacher_gradient")


def extend_on_resume(cfg: Config, overrides: list[str] | tuple[str, ...], step: int) -> Config:
    """Apply ``--set`` overrides to a resumed run's saved configuration (e.g. to train longer).

    Only :data:`RESUME_SAFE_KEYS` may change (``train.loss_weights.*``: any loss weight, to
    fine-tune a run, e.g. switch on ``g_f0``; the new weight applies from the resumed step, and
    the checkpoint's override list records it after the run's own; ``train.envelope_*``,
    the bounds of ``g_envelope``, and ``train.steer_*`` / ``train.partial_*``, the edits of ``g_steer`` / ``g_partial``, ``train.profile_*``, ``train.tail_from_s``, ``train.anchor_*`` and ``train.f0_reference`` (the forms of ``g_profile``, ``g_tail``, ``g_anchor`` / ``g_anchor_body`` and ``g_f0``), ``train.teacher_attribute_weights`` and ``train.teacher_loss`` /
    ``train.teacher_white_eps`` / ``train.teacher_gradient`` (the form of ``g_teacher``), likewise; ``train.precision``,
    ``train.memory_format`` and ``train.gp_every``: the speed of the step, e.g. to switch a
    float32 run to the fast CPU step), and ``train.iterations``
    only so that the run stays where it is: the scales already finished keep their length and
    the current scale (the one holding ``step``) does not end before ``step``. Later scales may
    be lengthened or shortened.

    Raises:
        DarkGANError: another key, or a schedule that would move the run to another scale.
    """
    for item in overrides:
        key = item.split("=", 1)[0].strip()
        if not any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUME_SAFE_KEYS):
            raise DarkGANError(f"--resume with --set {item!r}: only {', '.join(RESUME_SAFE_KEYS)} can change "
                               f"in a run already started (start a new run for other settings)")
    new = apply_overrides(cfg, overrides)
    old_s, new_s = Schedule(cfg.train), Schedule(new.train)
    cur = old_s.scale_at(step)
    if (tuple(new.train.iterations[:cur]) != tuple(cfg.train.iterations[:cur])
            or new_s.scale_at(step) != cur or step > new_s.total):
        raise DarkGANError(f"--resume at step {step} (scale {cur}): train.iterations "
                           f"{list(new.train.iterations)} must keep scales 0..{cur - 1} as "
                           f"{list(cfg.train.iterations[:cur])} and scale {cur} past step {step - old_s.start[cur]} "
                           f"of it")
    return new


def freeze_for_conditioning(G: Generator, G_ema: Generator | None, columns: bool) -> None:
    """Freeze G but for its attribute mapping (``train.trainable = "mapping"``), and with
    ``columns`` the format layer's attribute columns (``"conditioning"``: the other columns' and
    the bias's gradients are masked to zero, so Adam never moves them)."""
    for g in (G, G_ema):
        if g is not None:
            g.requires_grad_(False)
    G.mapping.requires_grad_(True)
    if columns and G.n_attributes:
        mask = torch.zeros_like(G.format.weight)
        mask[:, G.format.in_features - G.n_attributes:] = 1.0
        G.format.weight.requires_grad_(True)
        G.format.weight.register_hook(lambda grad: grad * mask)


def freeze_lower_blocks(G: Generator, G_ema: Generator | None, n: int) -> None:
    """Freeze all of G but its blocks and output heads from scale ``n`` on
    (``train.frozen_blocks``; fine-tuning the top of a trained network, Yosinski et al. 2014): the
    input (format layer, attribute mapping) and the first ``n`` scales keep the fine-tune's
    source's weights, in G and its EMA alike (the EMA never trains)."""
    keep = tuple(f"{part}.{s}." for part in ("blocks", "to_magif") for s in range(n, len(G.blocks)))
    for g in (G, G_ema):
        if g is not None:
            for name, p in g.named_parameters():
                p.requires_grad_(g is G and name.startswith(keep))


def init_from_generator(st: State, path: str | Path, data, white: torch.Tensor | None = None) -> dict:
    """Copy a trained generator's weights into ``st.G`` (and ``st.G_ema``) to fine-tune it.

    The source must have the run's architecture (``model.*`` except ``attr_input``, the
    attribute mapping and the convolutions' conditional modulation, which a fine-tune may add:
    they start as the identity; ``critic_projection``, the critic's; and ``synthesis_fade``), pitch range and
    vocabulary. When the attribute input changes from ``prob`` the format layer's attribute
    columns start at zero: the source generator's response to raw probabilities means nothing
    for standardised inputs, so the new pathway is learnt from zero while the rest of the note
    is kept. From ``std_logit`` to ``white_logit`` (``white [K, K]``, the run's whitening) the
    columns ``A`` become ``A W^-1``: the fine-tune starts from exactly the source's function,
    and only the geometry of the conditioning's gradients changes.

    Raises:
        CheckpointError: unreadable source, or another architecture, pitch range or vocabulary.
    """
    src, scfg = load_generator(path)
    mine, theirs = st.G.cfg.to_dict(), scfg.config.model.to_dict()
    for key in ("attr_input", "mapping_layers", "mapping_width", "attr_film_from_scale",  # what a fine-tune may add
                "critic_projection",  # and the critic's
                "synthesis_fade"):  # and how its notes end (the weights do not change)
        mine.pop(key), theirs.pop(key, None)
    if mine != theirs or src.n_pitches != st.G.n_pitches or list(scfg.attributes) != list(data.attributes):
        raise CheckpointError(f"{path}: --init-generator needs the same architecture, pitch range and "
                              f"vocabulary as this run (use --preset {scfg.config.preset} and the same data)")
    stats = ("attr_mean", "attr_std", "attr_white")
    added = ("mapping.", "film.")  # zero-initialised parts a fine-tune may add: they start as the identity
    if getattr(src, "film", None) is not None and st.G.film is None:
        raise CheckpointError(f"{path}: its generator modulates its convolutions (model.attr_film_from_scale = "
                              f"{src.cfg.attr_film_from_scale}); this run's does not")
    state = {k: v.float() for k, v in src.state_dict().items() if k not in stats and not k.startswith("mapping.")}
    change = (src.cfg.attr_input, st.G.cfg.attr_input)
    if change[0] != change[1] and st.G.n_attributes:
        w, k = state["format.weight"].clone(), st.G.n_attributes
        if change == ("std_logit", "white_logit") and white is not None:
            w[:, -k:] = (w[:, -k:].double() @ torch.linalg.inv(white.double())).float()
        elif change == ("white_logit", "std_logit"):
            w[:, -k:] = w[:, -k:] @ src.attr_white.float()
        else:
            w[:, -k:] = 0.0
        state["format.weight"] = w
    for g in (st.G, st.G_ema):
        if g is not None:
            missing, unexpected = g.load_state_dict(state, strict=False)
            if unexpected or {k for k in missing if not k.startswith(added)} - set(stats):
                raise CheckpointError(f"{path}: weights do not fit ({sorted(unexpected or missing)[:3]})")
    return {"path": provenance(path), "step": int(scfg.step), "preset": scfg.config.preset,
            "created": scfg.created, "git_commit": scfg.git_commit,
            "overrides": list(scfg.config.overrides),
            **({"fine_tuned_from": scfg.extra["fine_tuned_from"]} if "fine_tuned_from" in scfg.extra else {})}


def init_critic_from(st: State, path: str | Path) -> dict:
    """Copy a checkpoint's critic into ``st.D``: a training checkpoint, a run folder (its latest
    checkpoint) or an export with its critic (the shipped ``default``; :func:`export_generator`).

    A fine-tune with ``--init-generator`` otherwise starts from a fresh critic that needs
    ``train.critic_warmup`` critic-only steps; a critic trained against a generator of the same
    architecture and data judges from the first step, and two arms of an experiment can start
    from the same one. Its optimizer state is not taken (the run's optimizer starts fresh).

    A critic without the projection (``model.critic_projection``; Miyato & Koyama 2018, Eq. 3) can
    start one that has it: the projection ``[K -> C]`` starts at zero, so the critic scores as the
    source did until it learns to project. Returns the provenance ``{"path", "step",
    "projection_added"}`` recorded in the checkpoints' ``fine_tuned_from.critic_from``.

    Raises:
        CheckpointError: no critic there (:func:`load_critic`), or a critic of another
            architecture, vocabulary or pitch range (shapes differ).
    """
    tensors, cfg = load_critic(path)
    added = getattr(st.D, "projection", None) is not None and "projection.weight" not in tensors
    if added:  # the run's own statistics (set again by _prepare_state) and a zero projection
        own = st.D.state_dict()
        tensors["attr_mean"], tensors["attr_std"] = own["attr_mean"], own["attr_std"]
        tensors["projection.weight"] = torch.zeros_like(own["projection.weight"])
    load_into(st.D, tensors, cfg.path / CRITIC_FILE)
    return {"path": provenance(cfg.path), "step": int(cfg.step), "projection_added": added}


def train(data_dir: str | Path, out_dir: str | Path, *, config: Config | None = None, preset: str = "small",
          overrides: list[str] | tuple[str, ...] = (), temperature: float | None = None,
          teacher: str | None = None, attributes: bool = True, resume: bool = False,
          max_minutes: float | None = None, device: str | None = None, threads: int | None = None,
          stop_at_step: int | None = None, progress: bool = True, log: Callable[[str], None] | None = None,
          data=None, init_generator: str | Path | None = None, init_critic: str | Path | None = None) -> TrainResult:
    """Train DarkGAN (or the no-attribute baseline) and write checkpoints to ``out_dir``.

    Args:
        data_dir: prepared dataset (cache, vocabulary, teacher labels).
        out_dir: the run folder (``checkpoint-<step>/``, ``LATEST``, ``tb/`` TensorBoard logs).
        config: a full configuration; else ``preset`` + ``overrides`` (+ ``temperature``).
        teacher: teacher id of the labels (default: the vocabulary's).
        attributes: False trains the paper's baseline (K = 0).
        resume: continue the run in ``out_dir`` from its latest checkpoint, with its saved
            configuration (``preset``/``config`` are then ignored; ``overrides`` may only change
            :data:`RESUME_SAFE_KEYS`, see :func:`extend_on_resume`).
        max_minutes: stop cleanly (with a checkpoint) after this wall time.
        device: ``cpu``, ``cuda`` or None/``auto``; under torchrun each rank uses ``cuda:LOCAL_RANK``.
        threads: CPU threads (default: all cores / local ranks).
        stop_at_step: stop (with a checkpoint) once this many steps are done (tests, benchmarks).
        progress: show the tqdm bar (rank 0).
        data: an already loaded :class:`~darkgan.training.data.TrainingData` (tests).
        init_generator: fine-tune: start G (and its EMA) from this generator checkpoint (see
            :func:`init_from_generator`); the critic starts fresh (``train.critic_warmup``)
            unless ``init_critic``.
        init_critic: with ``init_generator``: start the critic from this training checkpoint's
            (:func:`init_critic_from`; recorded in the checkpoints' ``fine_tuned_from``).

    Returns:
        :class:`TrainResult`.

    The main process holds :func:`~darkgan.utils.io.folder_lock` on ``out_dir`` for the whole
    run and first removes what killed checkpoint writes left there
    (:func:`~darkgan.models.checkpoint.clean_interrupted_writes`).

    Raises:
        DarkGANError: dataset without cache/labels/vocabulary, ``out_dir`` already holding a run
            without ``resume`` (or none with it) or locked by another job, ``threads`` < 1, a
            configuration that does not fit the data, the number of ranks or the memory
            (:func:`~darkgan.training.memory.check_memory`, before anything is allocated).
            CheckpointError: unreadable or corrupt checkpoint on resume (checksums verified).
    """
    out = Path(out_dir)
    info = dist_utils.setup(device)
    say = log or (lambda m: print(m, flush=True))
    if not info.is_main:
        say = lambda m: None  # noqa: E731
    lock, clean = contextlib.ExitStack(), False
    try:
        _start_run(out, resume, threads, info.is_main, lock, say)  # locked: one job writes into it
        cfg, ckpt, attributes, teacher = _resolve_config(out, info, resume, config, preset, overrides,
                                                         temperature, attributes, teacher)
        data = _resolve_data(data, data_dir, teacher, attributes, ckpt, out)
        _set_threads(info.device, threads, int(os.environ.get("LOCAL_WORLD_SIZE", info.world_size)))
        st, ts, origin = _prepare_state(cfg, data, info, ckpt, out, init_generator, init_critic)
        run = _Run(out=out, info=info, cfg=cfg, data=data, st=st, sched=Schedule(cfg.train),
                   wave_terms=WaveTerms(cfg.train, data, info.device, cfg.model.synthesis_fade),
                   meta=_checkpoint_meta(cfg, data, data_dir, info, origin),
                   elapsed_before=float(ts.get("elapsed_seconds", 0.0)))
        st.scale, st.alpha = run.sched.scale_at(st.step), run.sched.alpha_at(st.step)
        say(f"darkgan train: {cfg.preset} preset, {info.world_size} process(es) on {info.device}, "
            f"K={data.n_attributes} attributes, {data.n_pitches} pitches {data.pitch_range[0]}..{data.pitch_range[1]}, "
            f"{len(data.train_rows)} training notes, T={cfg.train.temperature}; "
            f"step {st.step}/{run.sched.total}" + (" (resumed)" if ckpt is not None else ""))
        slow = dist_utils.precision_warning(cfg.train.precision, info.device)
        if slow:
            say(slow)
        with _Signals() as sigs:
            reason, last = _loop(run, sigs, max_minutes, stop_at_step, progress)
        consistent = dist_utils.ranks_agree(info, st.G) and dist_utils.ranks_agree(info, st.D)
        if not consistent:
            say("darkgan train: WARNING: distributed ranks ended with different weights")
        secs = time.monotonic() - run.t0
        finished = st.step >= run.sched.total
        reason = "finished" if finished else reason
        say(f"darkgan train: {reason} at step {st.step}/{run.sched.total} "
            f"({run.steps_done / max(secs, 1e-9):.2f} steps/s); checkpoint: {run.ckpt_path}")
        clean = True
        return TrainResult(st.step, run.sched.total, finished, reason, run.ckpt_path, secs,
                           run.steps_done / max(secs, 1e-9), consistent, last, st, sigs.signum)
    finally:
        lock.close()
        dist_utils.teardown(info, clean)


# ------------------------------------------------------------------------- train(): its phases

@dataclass
class _Run:
    """What :func:`train` resolved before its loop, and the loop's own progress."""

    out: Path
    info: Any
    cfg: Config
    data: Any
    st: State
    sched: Schedule
    wave_terms: WaveTerms
    meta: CheckpointConfig
    elapsed_before: float = 0.0
    t0: float = field(default_factory=time.monotonic)
    steps_done: int = 0
    ckpt_path: Path | None = None


def _resolve_config(out: Path, info, resume: bool, config: Config | None, preset: str, overrides, temperature,
                    attributes: bool, teacher: str | None):
    """The run's configuration: a new run's (``config`` or ``preset`` + ``overrides``) or the
    resumed checkpoint's (``overrides`` may extend it, :func:`extend_on_resume`); checks that it
    fits the ranks and the memory. Returns ``(cfg, ckpt or None, attributes, teacher)``."""
    ckpt = None
    if resume:
        if not run_has_checkpoint(out):
            raise CheckpointError(f"{out}: no checkpoint to resume from (start a new run without --resume)")
        ckpt = load_training_state(out)
        ccfg: CheckpointConfig = ckpt["config"]
        cfg = ccfg.config
        if overrides:
            cfg = extend_on_resume(cfg, overrides, int(ckpt["train_state"]["step"]))
        attributes, teacher = ccfg.attributes_enabled, ccfg.teacher.get("id") or teacher
    else:
        if out.exists() and (run_has_checkpoint(out) or (out / "tb").exists()):
            raise DarkGANError(f"{out}: already holds a training run; pass --resume to continue it "
                               f"or choose another --out")
        cfg = config if config is not None else resolve_config(preset, overrides, temperature)
        cfg.validate()
    if any(b % info.world_size for b in cfg.train.batch_size):
        raise DarkGANError(f"train.batch_size {list(cfg.train.batch_size)}: every entry must be a multiple of "
                           f"the {info.world_size} distributed processes")
    check_memory(cfg, info.device, info.world_size)
    return cfg, ckpt, attributes, teacher


def _resolve_data(data, data_dir, teacher: str | None, attributes: bool, ckpt, out: Path):
    """The :class:`~darkgan.training.data.TrainingData` (loaded unless given; K = 0 for the
    baseline), checked against a resumed checkpoint's pitch range and vocabulary."""
    from darkgan.training.data import load_training_data

    if data is None:
        data = load_training_data(data_dir, teacher=teacher, attributes=attributes)
    elif not attributes and data.n_attributes:
        from dataclasses import replace as _replace

        data = _replace(data, logits=data.logits[:, :0], attributes=[], class_indices=[], teacher={})
    if ckpt is not None:
        cc = ckpt["config"]
        if tuple(cc.pitch_range) != tuple(data.pitch_range) or cc.attributes != data.attributes:
            raise CheckpointError(f"{out}: the checkpoint was trained on another pitch range or vocabulary "
                                  f"than {data_dir} has now")
    return data


def _prepare_state(cfg: Config, data, info, ckpt, out: Path, init_generator,
                   init_critic=None) -> tuple[State, dict, dict | None]:
    """Models and optimizers: fresh, restored from ``ckpt`` (exact resume), or G from
    ``init_generator``; then the ``train.trainable`` freeze and the attribute statistics.
    Returns ``(state, train_state dict of the checkpoint or {}, provenance)``: the provenance is
    the fine-tune's source (:func:`init_from_generator`), kept from the checkpoint on resume."""
    if info.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    tc = cfg.train
    st = build_state(cfg, data.n_pitches, data.n_attributes, info.device, info)
    ts: dict = {}
    origin = None
    if ckpt is not None:
        origin = ckpt["config"].extra.get("fine_tuned_from")
        load_into(st.G, ckpt["generator"], out / "generator_raw.safetensors")
        load_into(st.D, ckpt["critic"], out / "critic.safetensors")
        if st.G_ema is not None and ckpt["ema"] is not None:
            load_into(st.G_ema, ckpt["ema"], out / "generator.safetensors")
        try:
            st.opt_g.load_state_dict(ckpt["optim"]["g"])
            st.opt_d.load_state_dict(ckpt["optim"]["d"])
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{out}: optimizer state does not match the model ({e})") from None
        ts = ckpt["train_state"]
        st.step = int(ts["step"])
        _rng_restore(ckpt["rng"], ts.get("rng", {}))
    stats = attribute_stats(data.logits, data.train_rows, tc.temperature) if data.n_attributes else None
    white = (attribute_whitening(data.logits, data.train_rows, tc.temperature, cfg.model.attr_white_eps)
             if ckpt is None and stats and cfg.model.attr_input == "white_logit" else None)
    if init_critic is not None and (ckpt is not None or init_generator is None):
        raise DarkGANError("--init-critic goes with --init-generator in a new run (a resume keeps its own critic)")
    if tc.frozen_blocks and ckpt is None and init_generator is None:
        raise DarkGANError(f"train.frozen_blocks={tc.frozen_blocks} freezes a trained generator's lower "
                           f"blocks: give --init-generator (a new run's would stay random)")
    if ckpt is None and init_generator is not None:
        origin = init_from_generator(st, init_generator, data, white)
        if init_critic is not None:
            origin["critic_from"] = init_critic_from(st, init_critic)
    if tc.trainable != "all":
        freeze_for_conditioning(st.G, st.G_ema, columns=tc.trainable == "conditioning")
    if tc.frozen_blocks:
        freeze_lower_blocks(st.G, st.G_ema, tc.frozen_blocks)
    st.attr_std = stats[1].to(info.device) if stats else None
    if ckpt is None and stats:
        for g in (st.G, st.G_ema):  # the whitening is the generator's input; the critic's projection standardises
            if g is not None and hasattr(g, "attr_mean"):
                g.set_attribute_stats(*stats, white)
        if hasattr(st.D, "attr_mean"):
            st.D.set_attribute_stats(*stats)
    return st, ts, origin


def _checkpoint_meta(cfg: Config, data, data_dir, info, origin: dict | None = None) -> CheckpointConfig:
    """The checkpoint metadata of the run (step, scale and alpha are filled in at each write);
    ``origin``: the generator a fine-tune started from (``extra["fine_tuned_from"]``)."""
    return CheckpointConfig(
        config=cfg, attributes=list(data.attributes), class_indices=list(data.class_indices),
        pitch_range=tuple(data.pitch_range), normalizer=data.normalizer.to_dict(), teacher=dict(data.teacher),
        temperature=cfg.train.temperature, attributes_enabled=data.n_attributes > 0,
        extra={"dataset": str(Path(data_dir).resolve()) if data_dir else None,
               "n_train_notes": int(len(data.train_rows)), "world_size": info.world_size,
               **({"fine_tuned_from": origin} if origin else {})})


def _write_checkpoint(run: _Run) -> Path | None:
    """A run checkpoint of the current state (rank 0 writes, every rank waits)."""
    st, sched, tc, info = run.st, run.sched, run.cfg.train, run.info
    if info.is_main:
        tensors, js = _rng_snapshot()
        train_state = {"step": st.step, "scale": st.scale, "alpha": st.alpha, "seed": tc.seed,
                       "data_offset": sched.offset_at(st.step) if st.step < sched.total else None,
                       "elapsed_seconds": run.elapsed_before + time.monotonic() - run.t0,
                       "world_size": info.world_size, "rng": js}
        m = copy.copy(run.meta)
        prev = max(st.step - 1, 0)
        m.step, m.scale, m.alpha = st.step, sched.scale_at(prev), sched.alpha_at(prev)
        run.ckpt_path = save_run_checkpoint(
            run.out, st.step, st.G, m, keep=tc.keep_checkpoints, critic=st.D, ema=st.G_ema,
            optim_states={"g": st.opt_g.state_dict(), "d": st.opt_d.state_dict()},
            train_state=train_state, rng_tensors=tensors)
    dist_utils.barrier(info)
    return run.ckpt_path


def _train_step(run: _Run, hb) -> dict[str, torch.Tensor]:
    """One D step and one G step on the prefetched batch ``hb`` (the paper's n_critic = 1); the
    critic is skipped when G takes nothing from it (``train.uses_critic``), G during
    ``train.critic_warmup``."""
    from darkgan.training.data import real_at_scale

    st, sched, cfg, tc, info = run.st, run.sched, run.cfg, run.cfg.train, run.info
    step = hb.step
    st.scale, st.alpha = sched.scale_at(step), sched.alpha_at(step)
    if tc.reset_optimizer_per_scale and sched.is_scale_start(step):
        st.opt_g, st.opt_d = make_optimizers(st.G, st.D, tc)
    b = hb.to(info.device)
    real = real_at_scale(run.data.normalizer.normalize(b.magif.float()), cfg.model, st.scale, st.alpha)
    if st.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    soft = teacher_soft_labels(b.logits, tc.temperature)
    gen, shard = step_generator(tc.seed, step), (info.rank, info.world_size)
    critic = tc.uses_critic
    md = train_step_d(st, real, b.pitch_index, soft, tc, gen, shard) if critic else {}
    mg = {}
    if step >= tc.critic_warmup or not critic:
        terms = None
        first = tc.output_terms_from_scale if tc.output_terms_from_scale >= 0 else cfg.model.n_scales - 1
        if run.wave_terms.active and st.scale >= first:
            wt = run.wave_terms
            n = (b.pitch_index.shape[0],)
            u = _draw(gen, n, shard, "uniform") if wt.consistency else None
            v = _draw(gen, n, shard, "uniform") if wt.increment else None
            w = _draw(gen, n + (2,), shard, "uniform") if wt.steer else None
            e = _draw(gen, n + (2,), shard, "uniform") if wt.partial else None
            terms = wt.for_batch(b.pitch_index, soft, gen, u, v, w, e, real=b.magif)
        mg = train_step_g(st, b.pitch_index, soft, tc, gen, shard, sched.ema_decay_at(step), terms)
    st.step = step + 1
    run.steps_done += 1
    return {**md, **mg}


def _loop(run: _Run, sigs: "_Signals", max_minutes: float | None, stop_at_step: int | None,
          progress: bool) -> tuple[str, dict[str, float]]:
    """The training loop: steps, logs, previews, checkpoints, and the stop conditions (signal,
    ``max_minutes``, ``stop_at_step``, the end). Returns ``(reason, last logged metrics)``."""
    from darkgan.training.data import Prefetcher

    st, sched, tc, info = run.st, run.sched, run.cfg.train, run.info
    deadline = run.t0 + max_minutes * 60 if max_minutes else None
    prefetch = Prefetcher(run.data, sched.plan(st.step, stop_at_step), tc.seed, info.rank, info.world_size,
                          depth=3, pin=info.device.type == "cuda")
    mon = _Monitor(run, progress)
    try:
        for hb in prefetch:
            assert hb.step == st.step, (hb.step, st.step)
            mon.add(_train_step(run, hb), hb.step)
            stop_now = dist_utils.any_flag(info, sigs.flag or (deadline is not None and time.monotonic() >= deadline))
            at_limit = stop_at_step is not None and st.step >= stop_at_step
            if stop_now or at_limit or st.step >= sched.total or st.step % tc.checkpoint_every == 0:
                _write_checkpoint(run)
                mon.checkpoint_written()
            if stop_now or at_limit:
                return ("signal" if sigs.flag else ("max-minutes" if stop_now else "stop-at-step")), mon.last
        return "finished", mon.last
    finally:
        prefetch.close()
        mon.close()


class _Monitor:
    """Progress of a run: metric means every ``train.log_every`` steps (non-finite losses stop the
    run), TensorBoard scalars and previews, the tqdm bar with an ETA that prices the scales to come."""

    def __init__(self, run: _Run, progress: bool):
        self.run, self.acc, self.last = run, {}, {}
        st, sched, cfg, info = run.st, run.sched, run.cfg, run.info
        self.writer = None
        if info.is_main:
            run.out.mkdir(parents=True, exist_ok=True)
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(run.out / "tb"), purge_step=st.step if st.step else None)
            if st.step == 0:
                self.writer.add_text("config", "```\n" + cfg.format() + "\n```", 0)
        self.samples = _SampleBank(run.data, cfg, info.device) if (info.is_main and cfg.train.sample_every) else None
        self.quality = None
        if info.is_main and cfg.train.checkpoint_metrics:
            from darkgan.training.checkpoint_metrics import CheckpointMetrics

            self.quality = CheckpointMetrics(run.out, run.data, cfg, st.step, self.writer)
        self.bar = None
        if progress and info.is_main:
            from tqdm import tqdm

            # tqdm's own ETA assumes every step costs the same; eta= prices the scales to come
            self.bar = tqdm(total=sched.total, initial=st.step, dynamic_ncols=True, desc="train", unit="step",
                            smoothing=0.05, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
                                                       "[{elapsed}, {rate_fmt}{postfix}]")
        self.eta = RemainingTime(sched.start, sched.iters, step_costs(cfg))

    def add(self, metrics: dict[str, torch.Tensor], step: int) -> None:
        """Record the metrics of ``step`` (the run's ``st.step`` is already ``step + 1``)."""
        run, tc = self.run, self.run.cfg.train
        n = run.st.step
        self.eta.tick(step)
        for k, v in metrics.items():
            self.acc.setdefault(k, []).append(v)
        if n % tc.log_every == 0 or n == run.sched.total:
            self._log(step)
        if self.samples is not None and (n % tc.sample_every == 0 or n == run.sched.total):
            self.samples.log(self.writer, run.st, run.sched.scale_at(step), run.sched.alpha_at(step), n)
            self.eta.pause()
        if self.bar is not None:
            self.bar.update(1)

    def checkpoint_written(self) -> None:
        """After a checkpoint: the quality metrics of its generator (``metrics.jsonl``, ``best``);
        their time is left out of the ETA."""
        run, st = self.run, self.run.st
        if self.quality is not None and run.ckpt_path is not None:
            prev = max(st.step - 1, 0)
            rec = self.quality.at_checkpoint(st.G_ema if st.G_ema is not None else st.G, run.ckpt_path, st.step,
                                             run.sched.scale_at(prev), run.sched.alpha_at(prev))
            if self.bar is not None:
                self.bar.write(f"step {st.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in rec.items()
                                                               if k in run.cfg.train.checkpoint_metrics))
        self.eta.pause()

    def _log(self, step: int) -> None:
        run, st = self.run, self.run.st
        self.last = {k: float(torch.stack(v).float().mean()) for k, v in self.acc.items()}
        self.acc.clear()
        bad = [k for k, v in self.last.items() if not math.isfinite(v)]
        if bad:
            raise DarkGANError(f"training diverged at step {st.step} (non-finite losses: {', '.join(bad)})")
        if self.writer is not None:
            for k, v in self.last.items():
                self.writer.add_scalar(f"loss/{k}" if "acc" not in k else f"accuracy/{k}", v, st.step)
            self.writer.add_scalar("progress/scale", st.scale, st.step)
            self.writer.add_scalar("progress/alpha", st.alpha, st.step)
            self.writer.add_scalar("progress/batch_size", run.sched.batch_size_at(step), st.step)
            self.writer.add_scalar("progress/steps_per_second",
                                   run.steps_done / max(time.monotonic() - run.t0, 1e-9), st.step)
        if self.bar is not None:
            get = lambda k: f"{self.last.get(k, float('nan')):.2f}"  # noqa: E731
            self.bar.set_postfix(eta=format_seconds(self.eta.seconds_left(st.step)), scale=st.scale,
                                 a=f"{st.alpha:.2f}", D=get("d_loss"), G=get("g_loss"), gp=get("gp"),
                                 pitch=get("d_pitch_acc_real"), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def _start_run(out: Path, resume: bool, threads: int | None, is_main: bool, lock: contextlib.ExitStack,
               say: Callable[[str], None]) -> None:
    """Checks and housekeeping at the start of :func:`train`: ``threads`` >= 1; the main process
    locks ``out`` (:func:`~darkgan.utils.io.folder_lock`, held until ``lock`` closes) and removes
    the temporary folders of checkpoint writes a killed run left behind
    (:func:`~darkgan.models.checkpoint.clean_interrupted_writes`).

    Raises:
        DarkGANError: ``threads`` < 1, or another job holds the lock on ``out``.
        CheckpointError: ``resume`` without a run folder.
    """
    if threads is not None and threads < 1:
        raise DarkGANError(f"--threads must be >= 1, got {threads}")
    if resume and not out.is_dir():
        raise CheckpointError(f"{out}: no checkpoint to resume from (start a new run without --resume)")
    if not is_main:
        return
    lock.enter_context(folder_lock(out))
    removed = clean_interrupted_writes(out)
    if removed:
        say(f"darkgan train: removed {len(removed)} unfinished checkpoint write(s) of an interrupted run: "
            + ", ".join(p.name for p in removed[:3]))


class _SampleBank:
    """Fixed conditioning (4 notes of the validation split, else train) + fixed z for previews."""

    def __init__(self, data, cfg: Config, device: torch.device, n: int = 4):
        cache = data.cache
        try:
            pool = cache.rows("valid")
        except DarkGANError:
            pool = data.train_rows
        rng = np.random.default_rng(cfg.train.seed + 12345)
        rows = np.sort(rng.choice(pool, size=min(n, len(pool)), replace=False))
        self.pitch = torch.from_numpy(data.pitch_index(rows).astype(np.int64)).to(device)
        self.attrs = teacher_soft_labels(torch.from_numpy(data.logits[rows]), cfg.train.temperature).to(device)
        g = torch.Generator().manual_seed(cfg.train.seed + 777)
        self.z = torch.randn(len(rows), cfg.model.latent_dim, generator=g).to(device)
        self.normalizer = data.normalizer
        self.n_scales = cfg.model.n_scales

    @torch.no_grad()
    def log(self, writer, st: State, scale: int, alpha: float, step: int) -> None:
        if writer is None:
            return
        G = st.G_ema if st.G_ema is not None else st.G
        x = G(self.z, self.pitch, self.attrs, scale, alpha).float().cpu()
        mag = x[:, 0].flip(1)  # low frequencies at the bottom
        img = torch.cat(list((mag - mag.min()) / (mag.max() - mag.min() + 1e-8)), dim=1)
        writer.add_image(f"spectrogram/scale{scale}", img[None], step)
        if scale == self.n_scales - 1:
            from darkgan.data.magif import SAMPLE_RATE, magif_to_note

            wave = magif_to_note(self.normalizer.denormalize(x), G.cfg.synthesis_fade).clamp(-1, 1)
            for i, w in enumerate(wave):
                writer.add_audio(f"audio/{i}", w[None], step, sample_rate=SAMPLE_RATE)
