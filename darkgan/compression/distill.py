"""Knowledge distillation of a trained DarkGAN generator into a smaller student (issue 6, item 2).

After the DrumGAN compression study (generator knowledge distillation; its Table 5 ablates the
losses below). The teacher ``G_t`` and the student ``G_s`` get the *same* inputs
``(z, pitch, attributes)``: ``z ~ N(0, I)`` from the prior and ``(pitch, attributes)`` drawn from
the real joint distribution of the dataset (:mod:`darkgan.compression.conditioning`). Losses
(``--losses``, comma-separated):

``output``
    ``MSE(logmag_s, logmag_t) + if_weight * IF error`` on the normalised MAG-IF outputs
    ``[B, 2, 1024, 32]`` (channel 0 = log magnitude, channel 1 = IF). The issue specifies the
    log magnitude; the IF term (``if_weight``, default 1.0, 0 disables it) is added because
    without it nothing but the adversarial term constrains the student's phase.
    With ``if_weighting="magnitude"`` (default) the errors are weighted by the teacher's linear
    magnitude relative to each note's loudest bin, ``w = exp(logmag_t - max logmag_t)``:
    the IF error is ``sum w (IF_s - IF_t)^2 / sum w``, and the same weighted error of the log
    magnitude is added to its plain MSE. Plain MSEs (``"uniform"``) are dominated by the
    near-silent bins (>99 % of a note's bins lie 20 dB below its loudest partial): their IF is
    noise that no student can predict, the minimiser is the mean IF, and the partials' levels
    barely count. Measured on the shipped generator, pruned by 25 % and recovered for 500 steps
    with plain MSEs: notes ~38 dB quieter than the teacher's, pitch accuracy 0.0 %
    (docs/compression.md).
``features``
    mean over scales s of ``MSE(A_s(h_s^student), h_s^teacher)``, ``h_s`` the output of scale
    block s (after leaky ReLU + pixel norm), ``A_s`` a learnt 1x1 convolution where the widths
    differ (identity otherwise). The adapters are trained with the student and discarded.
``adversarial``
    ``-mean(D_t(G_s(...)))``: the teacher's (frozen) critic scores the student's output
    (Wasserstein generator term); needs a training checkpoint (``critic.safetensors``).
``f0`` (ours)
    the training stage's waveform pitch loss
    (:func:`darkgan.training.losses.f0_autocorrelation_loss`) on the student's de-normalised
    output inverted to a waveform ``[B, 16000]``, at the asked pitch. The MAG-IF losses reach pitch
    only through the level of a few harmonic bins; a student can match most of the teacher's
    spectrogram a semitone off. Measured: a student distilled from the word-control default for
    6,372 steps with ``output,features`` had 34 % of notes within 50 cents (its teacher: 93 %);
    1,979 more steps with ``f0`` added took it to 76.5 % (docs/compression.md, section 3).

``consistency`` (ours, issue 21)
    the training stage's timbre consistency across pitch
    (:func:`darkgan.training.losses.timbre_consistency_loss`) on the student: the first
    ``ceil(consistency_fraction * B)`` notes are generated again by the student with the same
    ``(z, attributes)`` at a neighbouring pitch ``p +- k`` (``k`` in ``1..consistency_max_offset``,
    :func:`darkgan.training.losses.neighbour_pitches`), both inverted, and the cosine distance of
    their tagger embeddings (the checkpoint's tagger, EfficientAT mn04 by default) is penalised in
    units of unrelated notes: the mean distance between the *teacher generator's* notes of
    independent ``(z, pitch, attributes)`` (:func:`generated_unrelated_distance`; no dataset
    needed). An exported instrument's distance between neighbouring keys comes from two roots a
    few semitones apart (docs/instrument.md); the output loss copies the teacher's drift across
    pitch and adds the student's own errors, which this term penalises directly.

``tagger`` (ours, issue 21)
    perceptual distillation through the tagger: the first ``ceil(tagger_fraction * B)`` notes of
    the student and of the teacher generator (same ``(z, pitch, attributes)``) are inverted to
    waveforms and the cosine distance of their tagger embeddings is penalised, in the same units
    of unrelated notes as ``consistency`` (:func:`darkgan.training.losses.timbre_consistency_loss`
    applied to the pair student/teacher instead of the pair pitch/neighbour). The MAG-IF losses
    weigh every bin alike; the instrument benchmark, FAD and the attribute correlations judge the
    notes through this embedding, where the student's small errors add up differently at each
    pitch (docs/compression.md). A student whose every note embeds like its teacher's also copies
    the teacher's consistency across neighbouring keys, without the pull towards one timbre on
    every key that ``consistency`` exerts. The idea: the perceptual loss of Johnson et al. (ECCV
    2016) with a fixed audio tagger as the feature network.

Total: ``w_out * output + w_feat * features + w_adv * adversarial + w_f0 * f0 + w_cons *
consistency + w_tagger * tagger``. The student is written as a normal DarkGAN checkpoint (``save_checkpoint``; the
teacher's vocabulary, pitch range, normaliser, teacher id and attribute bank are kept) so
``darkgan generate``, the API and ``darkgan evaluate`` accept it. Optimiser state, adapters and
progress are saved with it: an interrupted run resumes where it stopped (``distill(...)`` on the
same ``out``).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from darkgan.errors import CheckpointError, DarkGANError
from darkgan.paths import provenance
from darkgan.utils.config import config_to_dict

LOSSES = ("output", "features", "adversarial", "f0", "consistency", "tagger")
IF_WEIGHTINGS = ("magnitude", "uniform")
STATE_KIND = "darkgan-distill"


# ------------------------------------------------------------------------------ features

def generator_features(gen: nn.Module, z: torch.Tensor, pitch_index: torch.Tensor,
                       attributes: torch.Tensor | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Final-scale forward pass that also returns every scale block's output.

    Same computation as ``Generator.forward(z, pitch_index, attributes)`` (final scale,
    ``alpha = 1``; checked in the tests).

    Returns:
        ``(out [B, 2, 1024, 32], [h_0 [B, C_0, H_0, W_0], ..., h_{S-1} [B, C_{S-1}, 1024, 32]])``.
    """
    feats = gen.features(z, pitch_index, attributes)
    return gen.to_magif[gen.n_scales - 1](feats[-1]), feats


class FeatureAdapters(nn.Module):
    """One 1x1 convolution per scale mapping student widths to teacher widths (identity where
    they are equal). Shapes: ``[B, C_s^student, H, W] -> [B, C_s^teacher, H, W]``."""

    def __init__(self, student_channels, teacher_channels):
        super().__init__()
        self.maps = nn.ModuleList(
            nn.Identity() if cs == ct else nn.Conv2d(cs, ct, 1, bias=False)
            for cs, ct in zip(student_channels, teacher_channels))
        for m in self.maps:
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=1.0 / math.sqrt(m.in_channels))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [m(f) for m, f in zip(self.maps, feats)]


def block_channels(gen: nn.Module) -> list[int]:
    """Output channels of each scale block (works for pruned generators too)."""
    return [int(convs[-1].weight.shape[0]) for convs in gen.blocks]


# ------------------------------------------------------------------------------- config

@dataclass
class DistillConfig:
    """Settings of a distillation run (saved in the student's ``train_state.json``).

    Attributes:
        losses: subset of ``("output", "features", "adversarial", "f0", "consistency", "tagger")``.
        steps: optimisation steps; batch_size: notes per step.
        lr, betas: Adam (student and adapters).
        w_output, w_features, w_adversarial, w_f0, w_consistency, w_tagger: loss weights;
            if_weight: IF term of the output loss.
        consistency_fraction: share of each batch generated again at a neighbouring pitch, in (0, 1].
        consistency_max_offset: the neighbour is ``1..consistency_max_offset`` semitones away.
        tagger_fraction: share of each batch whose student and teacher notes are compared by the
            tagger (``tagger``), in (0, 1].
        if_weighting: ``magnitude`` (IF error, and an extra log-magnitude error, weighted by the
            teacher's linear magnitude) or ``uniform`` (plain MSEs).
        seed: student initialisation, z and conditioning streams.
        conditioning: ``auto``/``dataset``/``bank``/``uniform`` (see conditioning.py).
        checkpoint_every: steps between checkpoints (also written at the end).
    """

    losses: tuple[str, ...] = ("output", "features", "adversarial")
    steps: int = 2000
    batch_size: int = 16
    lr: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.99)
    w_output: float = 1.0
    if_weight: float = 1.0
    if_weighting: str = "magnitude"
    w_features: float = 1.0
    w_adversarial: float = 0.01
    w_f0: float = 1.0
    w_consistency: float = 1.0
    consistency_fraction: float = 0.5
    consistency_max_offset: int = 3
    w_tagger: float = 1.0
    tagger_fraction: float = 0.5
    seed: int = 0
    conditioning: str = "auto"
    checkpoint_every: int = 500
    log_every: int = 25

    def validate(self) -> "DistillConfig":
        bad = [x for x in self.losses if x not in LOSSES]
        if bad or not self.losses:
            raise DarkGANError(f"--losses {','.join(self.losses)}: choose from {','.join(LOSSES)}")
        if self.if_weighting not in IF_WEIGHTINGS:
            raise DarkGANError(f"--if-weighting {self.if_weighting!r}: choose {' or '.join(IF_WEIGHTINGS)}")
        if min(self.w_output, self.w_features, self.w_adversarial, self.w_f0, self.w_consistency, self.w_tagger,
               self.if_weight) < 0:
            raise DarkGANError("loss weights (--w-features, --w-adversarial, --w-f0, --w-consistency, --w-tagger, "
                               "--if-weight) must be >= 0")
        for name in ("consistency_fraction", "tagger_fraction"):
            if not 0 < getattr(self, name) <= 1:
                raise DarkGANError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.consistency_max_offset < 1:
            raise DarkGANError(f"consistency_max_offset must be >= 1 semitone, got {self.consistency_max_offset}")
        if self.steps < 0 or self.batch_size < 1 or self.lr <= 0:
            raise DarkGANError("--steps must be >= 0, --batch-size >= 1, --lr > 0")
        return self


def parse_losses(text: str) -> tuple[str, ...]:
    """``"output,features"`` -> ``("output", "features")`` (validated, order kept)."""
    items = tuple(t.strip() for t in str(text).split(",") if t.strip())
    DistillConfig(losses=items).validate()
    return items


@dataclass
class DistillResult:
    path: Path
    step: int
    seconds: float
    history: list[dict] = field(default_factory=list)


# --------------------------------------------------------------------------------- losses

def magnitude_weighted_mse(pred: torch.Tensor, target: torch.Tensor, logmag: torch.Tensor) -> torch.Tensor:
    """``sum w (pred - target)^2 / sum w`` with ``w = exp(logmag - max_note logmag)``.

    Args:
        pred, target: ``[B, F, T]`` (e.g. normalised IF).
        logmag: ``[B, F, T]`` natural-log magnitude up to a per-note constant (the weights are
            each note's linear magnitude relative to its loudest bin, in (0, 1]).

    Returns:
        a scalar tensor.

    Source: ours, not the DrumGAN compression study (whose output loss is a plain distance); why
    it is needed is in the module docstring.
    """
    w = torch.exp(logmag - logmag.amax(dim=(1, 2), keepdim=True)).detach()
    return (w * (pred - target).square()).sum() / w.sum().clamp_min(1e-12)


class Distiller(nn.Module):
    """Computes the distillation losses for one batch (see the module docstring).

    Args:
        teacher: frozen teacher generator; student: the trainable student generator.
        critic: the teacher's critic (``adversarial`` only), frozen.
        cfg: :class:`DistillConfig`.
        logmag_std: the normaliser's standard deviation of the log-magnitude channel (natural
            log of the STFT magnitude), to turn normalised outputs into relative linear-magnitude
            weights for ``if_weighting="magnitude"`` (the mean cancels out); default 1.
        normalizer: the teacher's :class:`darkgan.data.magif.Normalizer` (``f0`` only: the
            waveform is made from the de-normalised output).
        pitch_lo: MIDI pitch of pitch index 0 (``f0`` only).
        tagger: a :class:`darkgan.teacher.base.Teacher` whose embedding judges ``consistency`` and
            ``tagger``; unrelated: their unit (> 0, :func:`generated_unrelated_distance`);
            n_pitches: the generator's pitch count (``consistency`` only).

    Raises:
        ValueError: ``f0``, ``consistency`` or ``tagger`` without a normaliser, ``consistency``
            or ``tagger`` without a tagger or without a positive unit, ``consistency`` with
            ``n_pitches < 2 * consistency_max_offset``.
    """

    def __init__(self, teacher: nn.Module, student: nn.Module, cfg: DistillConfig, critic: nn.Module | None = None,
                 logmag_std: float = 1.0, normalizer=None, pitch_lo: int = 0, tagger=None,
                 unrelated: float | None = None, n_pitches: int = 0):
        super().__init__()
        if {"f0", "consistency", "tagger"} & set(cfg.losses) and normalizer is None:
            raise ValueError("the f0, consistency and tagger distillation losses need the teacher's normalizer")
        if {"consistency", "tagger"} & set(cfg.losses) and (tagger is None or not (unrelated or 0) > 0):
            raise ValueError("the consistency and tagger distillation losses need a tagger and its unrelated distance > 0")
        if "consistency" in cfg.losses:
            if n_pitches < 2 * cfg.consistency_max_offset:
                raise ValueError(f"consistency: {n_pitches} pitches cannot hold neighbours up to "
                                 f"+-{cfg.consistency_max_offset} semitones")
        self.tagger, self.unrelated, self.n_pitches = tagger, unrelated, int(n_pitches)
        self.teacher, self.student, self.critic, self.cfg = teacher, student, critic, cfg
        self.normalizer, self.pitch_lo = normalizer, int(pitch_lo)
        self.logmag_std = float(logmag_std)
        self.teacher.requires_grad_(False).eval()
        if critic is not None:
            critic.requires_grad_(False).eval()
        self.adapters = FeatureAdapters(block_channels(student), block_channels(teacher))

    def trainable(self) -> list[nn.Parameter]:
        return list(self.student.parameters()) + list(self.adapters.parameters())

    def losses(self, z: torch.Tensor, pitch_index: torch.Tensor, attributes: torch.Tensor | None,
               u: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``{"loss", "output", "logmag", "if", ...}`` and one scalar per term of ``cfg.losses``.

        Args:
            z: ``[B, latent_dim]``; pitch_index: ``[B]`` long; attributes: ``[B, K]`` or None.
            u: ``[B]`` uniform draws in [0, 1) picking the ``consistency`` partners' pitches
                (drawn here when None).
        """
        c = self.cfg
        need_feats = "features" in c.losses
        with torch.no_grad():
            t_out, t_feats = generator_features(self.teacher, z, pitch_index, attributes)
        s_out, s_feats = generator_features(self.student, z, pitch_index, attributes)
        logmag = F.mse_loss(s_out[:, 0], t_out[:, 0])
        if c.if_weighting == "magnitude":
            t_log = t_out[:, 0] * self.logmag_std
            logmag = logmag + magnitude_weighted_mse(s_out[:, 0], t_out[:, 0], t_log)
            if_l = magnitude_weighted_mse(s_out[:, 1], t_out[:, 1], t_log)
        else:
            if_l = F.mse_loss(s_out[:, 1], t_out[:, 1])
        out = {"logmag": logmag, "if": if_l, "output": logmag + c.if_weight * if_l}
        total = s_out.new_zeros(())
        if "output" in c.losses:
            total = total + c.w_output * out["output"]
        if need_feats:
            mapped = self.adapters(s_feats)
            out["features"] = torch.stack([F.mse_loss(m, t) for m, t in zip(mapped, t_feats)]).mean()
            total = total + c.w_features * out["features"]
        if "adversarial" in c.losses:
            score, _, _ = self.critic(s_out, None, 1.0, attributes)
            out["adversarial"] = -score.mean()
            total = total + c.w_adversarial * out["adversarial"]
        judged = {"f0", "consistency", "tagger"} & set(c.losses)
        wave = self._wave(s_out) if judged else None  # [B, 16000]: inverted once for every term
        if "f0" in c.losses:
            from darkgan.training.losses import f0_autocorrelation_loss

            out["f0"] = f0_autocorrelation_loss(wave, (pitch_index + self.pitch_lo).float())
            total = total + c.w_f0 * out["f0"]
        m_c, m_t = (self._share(f, len(z)) if x in c.losses else 0
                    for f, x in ((c.consistency_fraction, "consistency"), (c.tagger_fraction, "tagger")))
        # the student's tagger embeddings [max(m_c, m_t), D], shared by both terms
        s_emb = self.tagger.embedding(wave[:max(m_c, m_t)], grad=True) if m_c or m_t else None
        if m_c:
            out["consistency"] = self._consistency(s_emb[:m_c], z, pitch_index, attributes, u)
            total = total + c.w_consistency * out["consistency"]
        if m_t:
            out["tagger"] = self._tagger(s_emb[:m_t], t_out[:m_t])
            total = total + c.w_tagger * out["tagger"]
        out["loss"] = total
        return out

    @staticmethod
    def _share(fraction: float, b: int) -> int:
        """The first ``ceil(fraction * b)`` notes of a batch of ``b`` (at most ``b``)."""
        return min(b, math.ceil(fraction * b))

    def _wave(self, out: torch.Tensor) -> torch.Tensor:
        """Normalised MAG-IF ``[n, 2, 1024, 32]`` -> waveforms ``[n, 16000]`` (differentiable)."""
        from darkgan.data.magif import magif_to_note

        return magif_to_note(self.normalizer.denormalize(out.float()), self.student.cfg.synthesis_fade)

    def _consistency(self, s_emb: torch.Tensor, z: torch.Tensor, pitch_index: torch.Tensor,
                     attributes: torch.Tensor | None, u: torch.Tensor | None) -> torch.Tensor:
        """The ``consistency`` term: the student's tagger embeddings ``s_emb [m, D]`` of the batch's
        first ``m`` notes against those of the same notes generated again at a neighbouring pitch."""
        from darkgan.training.losses import neighbour_pitches, timbre_consistency_loss

        m = int(s_emb.shape[0])
        u = torch.rand(int(z.shape[0])) if u is None else u
        near = neighbour_pitches(pitch_index[:m], self.n_pitches, self.cfg.consistency_max_offset, u[:m])
        partner = self.student(z[:m], near, None if attributes is None else attributes[:m])
        return timbre_consistency_loss(s_emb, self.tagger.embedding(self._wave(partner), grad=True), self.unrelated)

    def _tagger(self, s_emb: torch.Tensor, t_out: torch.Tensor) -> torch.Tensor:
        """The ``tagger`` term: the student's tagger embeddings ``s_emb [m, D]`` against the teacher
        generator's notes ``t_out [m, 2, 1024, 32]`` (normalised MAG-IF) of the same inputs."""
        from darkgan.training.losses import timbre_consistency_loss

        with torch.no_grad():
            target = self.tagger.embedding(self._wave(t_out))
        return timbre_consistency_loss(s_emb, target, self.unrelated)


@torch.no_grad()
def generated_unrelated_distance(gen: nn.Module, normalizer, tagger, pool, seed: int, n: int = 64) -> float:
    """The unit of the ``consistency`` distillation loss: the mean tagger-embedding cosine distance
    between ``n`` notes of ``gen`` (the teacher generator) drawn independently (z from the prior,
    ``(pitch, attributes)`` from ``pool``, seeded), every pair of them. The training stage uses
    real notes for this unit (:func:`darkgan.training.terms.unrelated_distance`); a distillation
    may run without a dataset, so it uses what the student learns to imitate.

    Returns:
        a float > 0. Raises: DarkGANError: the notes all sound alike to the tagger.
    """
    from darkgan.data.magif import magif_to_note
    from darkgan.training.losses import mean_pairwise_cosine_distance

    p_idx, alpha = pool.sample(n, np.random.default_rng([int(seed), 0xC0]))
    zz = torch.randn(n, gen.cfg.latent_dim, generator=torch.Generator().manual_seed(int(seed) + 0xC0))
    dev = next(gen.parameters()).device
    out = gen(zz.to(dev), p_idx.to(dev), alpha.to(dev) if gen.n_attributes else None)
    wave = magif_to_note(normalizer.denormalize(out.float()), gen.cfg.synthesis_fade)
    d = mean_pairwise_cosine_distance(tagger.embedding(wave).cpu())
    if not d > 1e-6:
        raise DarkGANError(f"consistency: {n} notes of the teacher generator all sound alike to the tagger")
    return d


# ----------------------------------------------------------------------------------- I/O

def load_critic(ckpt_cfg) -> nn.Module:
    """The teacher checkpoint's critic (``critic.safetensors``), eval mode, float32.

    Raises:
        CheckpointError: the checkpoint has no critic (an exported, inference-only checkpoint).
    """
    from darkgan.models.checkpoint import _load_tensors, load_into, verify_checkpoint
    from darkgan.models.critic import Critic

    f = ckpt_cfg.path / "critic.safetensors"
    if not f.is_file():
        raise CheckpointError(f"{ckpt_cfg.path}: no critic.safetensors (not a training checkpoint); "
                              "the adversarial loss needs the teacher's critic: drop it from --losses")
    verify_checkpoint(ckpt_cfg, [f.name])
    critic = Critic(ckpt_cfg.config.model, ckpt_cfg.n_pitches, ckpt_cfg.n_attributes if ckpt_cfg.attributes_enabled else 0)
    load_into(critic, _load_tensors(f), f)
    return critic.eval()


def student_checkpoint_config(teacher_cfg, student_config, step: int, extra: dict):
    """The student's :class:`CheckpointConfig`: the teacher's metadata with the student's model
    (the teacher's own fine-tune source, if any, is kept as ``teacher_fine_tuned_from``: the
    student was not fine-tuned from it)."""
    cfg = dataclasses.replace(teacher_cfg, config=student_config, step=int(step),
                              scale=student_config.model.n_scales - 1, alpha=1.0, path=None,
                              git_commit=None, created="", darkgan_version="")
    cfg.extra = {("teacher_" + k if k == "fine_tuned_from" else k): v
                 for k, v in (teacher_cfg.extra or {}).items() if k != "files"}
    cfg.extra.update(extra)
    return cfg


def copy_bank(teacher_dir: Path, student_dir: Path) -> None:
    """Copy the teacher's attribute bank (if any) into the student checkpoint."""
    from darkgan.generation.bank import BANK_FILE
    from darkgan.utils.io import atomic_write

    src = Path(teacher_dir) / BANK_FILE
    if src.is_file():
        with atomic_write(Path(student_dir) / BANK_FILE, "wb") as f, open(src, "rb") as g:
            shutil.copyfileobj(g, f)


def _read_state(out: Path) -> dict | None:
    f = out / "train_state.json"
    if not f.is_file():
        return None
    try:
        st = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        raise CheckpointError(f"{f}: corrupt distillation state; delete {out} to start over") from None
    return st if st.get("kind") == STATE_KIND else None


# ----------------------------------------------------------------------------------- loop

def _locking_out(fn):
    """Run ``fn(teacher, out, ...)`` holding :func:`darkgan.utils.io.folder_lock` on ``out``,
    after removing what a killed write of ``out`` left beside it."""
    @functools.wraps(fn)
    def locked(teacher, out, *args, **kwargs):
        from darkgan.models.checkpoint import clean_interrupted_writes
        from darkgan.utils.io import folder_lock

        with folder_lock(out):
            clean_interrupted_writes(Path(out).resolve().parent, Path(out).resolve().name)
            return fn(teacher, out, *args, **kwargs)
    return locked


@_locking_out
def distill(teacher: str | Path, out: str | Path, *, student_preset: str | None = "student-s",
            student: nn.Module | None = None, student_overrides: list[str] | tuple[str, ...] = (),
            config: DistillConfig | None = None, data: str | Path | None = None,
            device: str = "cpu", progress: bool = True, extra: dict | None = None) -> DistillResult:
    """Distil ``teacher`` into a student and write it to ``out`` (a checkpoint folder).

    Args:
        teacher: the teacher checkpoint (or run folder).
        out: the student checkpoint folder; if it holds a distillation state of the same teacher,
            the run resumes from it.
        student_preset: a :data:`darkgan.compression.presets.STUDENT_PRESETS` name (ignored when
            ``student`` is given).
        student: an initial student generator (e.g. a pruned copy of the teacher); its ``cfg``
            is the saved configuration, its weights are the starting point.
        student_overrides: ``model.field=value`` refinements of the preset.
        config: :class:`DistillConfig` (defaults: all three losses, 2000 steps of 16 notes).
        data: labelled dataset folder for the conditioning (else the checkpoint's bank).
        device: ``cpu``/``cuda``.
        extra: JSON metadata stored in the student's ``config.json`` ``extra``.

    Returns:
        :class:`DistillResult` (path, final step, wall time, logged loss history).

    Raises:
        CheckpointError: bad teacher checkpoint, missing critic for the adversarial loss, ``out``
            holding something else than a distillation of this teacher.
        DarkGANError: another job is writing into ``out`` (it is locked while distilling).
        DarkGANError / DataError: bad settings or conditioning source.
    """
    from darkgan.compression.conditioning import condition_pool

    cfg = (config or DistillConfig()).validate()
    out, dev = Path(out), torch.device(device)
    t_gen, t_cfg, critic = _load_teacher(teacher, cfg, dev)
    s_gen, s_config = _make_student(t_gen, t_cfg, cfg, dev, student, student_preset, student_overrides)
    norm = t_cfg.get_normalizer()
    pool = condition_pool(t_cfg, data, cfg.conditioning)
    tagger, unrelated = _consistency_judge(t_gen, t_cfg, norm, pool, cfg, dev)
    distiller = Distiller(t_gen, s_gen, cfg, critic, norm.std[0], norm, t_cfg.pitch_range[0], tagger, unrelated,
                          t_cfg.n_pitches).to(dev)
    opt = torch.optim.Adam(distiller.trainable(), lr=cfg.lr, betas=cfg.betas)
    teacher_sha = ((t_cfg.extra or {}).get("files") or {}).get("generator.safetensors")
    start, history = _resume(out, t_cfg, teacher_sha, cfg, distiller, opt, dev)
    meta = {"distillation": {"teacher": provenance(t_cfg.path), "teacher_preset": t_cfg.config.preset,
                             "losses": list(cfg.losses), "conditioning": pool.source,
                             "config": config_to_dict(cfg)}, **(extra or {})}

    def save(step: int) -> Path:
        from darkgan.models.checkpoint import save_checkpoint

        ck = student_checkpoint_config(t_cfg, s_config, step, meta)
        st = {"kind": STATE_KIND, "step": step, "teacher": str(t_cfg.path.resolve()), "teacher_sha256": teacher_sha,
              "config": config_to_dict(cfg), "history": history}
        path = save_checkpoint(out, s_gen, ck, optim_states={"s": opt.state_dict(),
                                                             "adapters": distiller.adapters.state_dict()},
                               train_state=st)
        copy_bank(t_cfg.path, path)
        return path

    t0 = time.perf_counter()
    path = _train(distiller, opt, pool, cfg, start, history, save, dev, bar_name=out.name if progress else None)
    return DistillResult(path, max(cfg.steps, start), time.perf_counter() - t0, history)


def _consistency_judge(t_gen: nn.Module, t_cfg, norm, pool, cfg: DistillConfig, dev: torch.device):
    """``(tagger, unrelated distance)`` for the ``consistency`` and ``tagger`` losses (the
    checkpoint's tagger, EfficientAT mn04 for the baseline), ``(None, None)`` without them.

    Raises:
        DarkGANError: ``consistency`` with fewer than ``2 * consistency_max_offset`` pitches.
        WeightsError: no tagger weights.
    """
    if not {"consistency", "tagger"} & set(cfg.losses):
        return None, None
    from darkgan.teacher import load_teacher

    if "consistency" in cfg.losses and t_cfg.n_pitches < 2 * cfg.consistency_max_offset:
        raise DarkGANError(f"--losses consistency: {t_cfg.path} has {t_cfg.n_pitches} pitches, too few for neighbours "
                           f"up to +-{cfg.consistency_max_offset} semitones")
    tagger = load_teacher((t_cfg.teacher or {}).get("id") or "efficientat-mn04", device=str(dev))
    return tagger, generated_unrelated_distance(t_gen, norm, tagger, pool, cfg.seed)


def _load_teacher(teacher: str | Path, cfg: DistillConfig, dev: torch.device):
    """``(generator, CheckpointConfig, critic or None)`` of a teacher that reached the final scale."""
    from darkgan.models.checkpoint import load_generator

    t_gen, t_cfg = load_generator(teacher, dev)
    if t_gen.cfg.n_scales - 1 != min(int(t_cfg.scale), t_gen.cfg.n_scales - 1) or \
            (int(t_cfg.scale) == t_gen.cfg.n_scales - 1 and float(t_cfg.alpha) < 1.0):
        raise CheckpointError(f"{t_cfg.path}: teacher trained only up to scale {t_cfg.scale} (alpha {t_cfg.alpha}); "
                              "distil a checkpoint that reached the final scale")
    critic = load_critic(t_cfg).to(dev) if "adversarial" in cfg.losses else None
    return t_gen, t_cfg, critic


def _make_student(t_gen: nn.Module, t_cfg, cfg: DistillConfig, dev: torch.device, student: nn.Module | None,
                  student_preset: str | None, student_overrides) -> tuple[nn.Module, Any]:
    """The student generator (given, or a fresh one of the preset with the teacher's
    conditioning and, either way, the teacher's ``model.synthesis_fade``) and its
    :class:`~darkgan.models.config.Config`. Warns (``UserWarning``) when
    the student has at least as many parameters as the teacher: the presets' widths are absolute,
    made for a ``paper``-shaped teacher, and ``student-s`` is wider than the CPU-trained ``small``
    generator (use ``student-half``, or ``darkgan prune``).

    Raises:
        CheckpointError: the student's attribute input differs from the teacher's."""
    from darkgan.compression.presets import student_config
    from darkgan.models.generator import Generator

    if student is not None:
        # the student copies its teacher's MAG-IF, so its notes end with its teacher's fade (model.synthesis_fade)
        student.cfg = dataclasses.replace(student.cfg, synthesis_fade=t_gen.cfg.synthesis_fade)
        s_config = dataclasses.replace(t_cfg.config, model=student.cfg, preset=getattr(student, "preset", "custom"),
                                       overrides=[])  # the teacher's overrides do not describe the student
        s_gen = student.to(dev).train()
    else:
        s_config = student_config(t_cfg.config, student_preset or "student-s", student_overrides)
        torch.manual_seed(cfg.seed)
        k = t_cfg.n_attributes if t_cfg.attributes_enabled else 0
        s_gen = Generator(s_config.model, t_cfg.n_pitches, k).to(dev).train()
        s_gen.copy_conditioning_from(t_gen)  # the teacher's standardised input and attribute mapping
    if getattr(s_gen.cfg, "attr_input", "prob") != getattr(t_gen.cfg, "attr_input", "prob"):
        raise CheckpointError(f"{t_cfg.path}: the student's attribute input ({s_gen.cfg.attr_input}) differs from "
                              f"the teacher's ({t_gen.cfg.attr_input}); start the student from this teacher")
    n_s, n_t = (sum(p.numel() for p in g.parameters()) for g in (s_gen, t_gen))
    if n_s >= n_t:
        import warnings

        warnings.warn(f"the student ({s_config.preset}: {n_s:,} parameters) is not smaller than the teacher "
                      f"{t_cfg.path} ({n_t:,}): not a compression; use --student-preset student-half or "
                      "`darkgan prune`", UserWarning, stacklevel=3)
    return s_gen, s_config


def _resume(out: Path, t_cfg, teacher_sha: str | None, cfg: DistillConfig, distiller: "Distiller", opt,
            dev: torch.device) -> tuple[int, list]:
    """``(start step, loss history)``: 0 and [] for a new ``out``; else the saved student,
    adapters and optimiser are loaded into ``distiller`` and ``opt``.

    Raises:
        DarkGANError: ``out`` holds something else, another teacher's or loss set's distillation,
            or a student of another architecture.
    """
    from darkgan.models.checkpoint import load_generator, load_into

    state = _read_state(out) if out.exists() else None
    if out.exists() and state is None and any(out.iterdir()):
        raise DarkGANError(f"{out}: exists and is not a distillation run; choose another --out or delete it")
    if state is None:
        return 0, []
    same_teacher = state.get("teacher") == str(t_cfg.path.resolve()) or (
        teacher_sha is not None and state.get("teacher_sha256") == teacher_sha)
    if not same_teacher or state.get("config", {}).get("losses") != list(cfg.losses):
        raise DarkGANError(f"{out}: holds a distillation of {state.get('teacher')} with losses "
                           f"{state.get('config', {}).get('losses')}; use another --out or delete it")
    s_gen = distiller.student
    s_prev, _ = load_generator(out, dev, "default")
    if [tuple(p.shape) for p in s_prev.parameters()] != [tuple(p.shape) for p in s_gen.parameters()]:
        raise DarkGANError(f"{out}: the saved student has another architecture; use another --out or delete it")
    s_gen.load_state_dict(s_prev.state_dict())
    extra_files = {f.stem[len("optim_"):]: f for f in out.glob("optim_*.pt")}
    if "adapters" in extra_files:
        load_into(distiller.adapters, torch.load(extra_files["adapters"], map_location=dev, weights_only=True),
                  extra_files["adapters"])
    if "s" in extra_files:
        opt.load_state_dict(torch.load(extra_files["s"], map_location=dev, weights_only=True))
    return int(state["step"]), list(state.get("history", []))


def _train(distiller: "Distiller", opt, pool, cfg: DistillConfig, start: int, history: list, save,
           dev: torch.device, bar_name: str | None) -> Path:
    """Steps ``start..cfg.steps`` (seeded by step: a resumed run draws what it would have),
    logging into ``history`` and saving every ``checkpoint_every`` steps, at the end and on
    Ctrl-C; returns the final checkpoint's path."""
    bar = None
    if bar_name is not None and cfg.steps > start:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, initial=start, desc=f"distill {bar_name}", unit="step")
    done, k = start, distiller.student.n_attributes
    try:
        for step in range(start, cfg.steps):
            rng = np.random.default_rng([cfg.seed, step, 1])
            p_idx, alpha = pool.sample(cfg.batch_size, rng)
            gz = torch.Generator().manual_seed(int(cfg.seed) * 1_000_003 + step)
            z = torch.randn(cfg.batch_size, distiller.student.cfg.latent_dim, generator=gz)
            u = torch.from_numpy(rng.random(cfg.batch_size)).float()  # consistency partners' pitches
            losses = distiller.losses(z.to(dev), p_idx.to(dev), alpha.to(dev) if k else None, u.to(dev))
            opt.zero_grad(set_to_none=True)
            losses["loss"].backward()
            opt.step()
            done = step + 1
            if not torch.isfinite(losses["loss"]):
                raise DarkGANError(f"distillation diverged at step {step} (loss {float(losses['loss'])}); lower --lr")
            if step % cfg.log_every == 0 or step == cfg.steps - 1:
                history.append({"step": step, **{k2: round(float(v.detach()), 6) for k2, v in losses.items()}})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{losses['loss'].item():.4f}", out=f"{losses['output'].item():.4f}")
            if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
                save(step + 1)
        return save(max(cfg.steps, start))
    except KeyboardInterrupt:
        if done > start:
            save(done)
        raise
    finally:
        if bar is not None:
            bar.close()
