"""Model and training configuration: typed dataclasses, presets and ``key=value`` overrides.

Four presets (``PRESETS``):

``paper``
    The reference configuration (DarkGAN's ``darkgan.json``, paper Sec. 4.3): 6 scales
    32x4 -> 1024x32, feature maps 256-128-128-128-128-64, mini-batch 30-30-20-20-20-10,
    128k-200k-200k-200k-200k-300k iterations, fade-in over 0-600-600-600-600-1200 "alpha jumps"
    of 32 iterations, Adam lr 0.001 betas (0, 0.99), WGAN-GP lambda 10, drift 0.001, condition
    loss weight 10 for G and D, leaky ReLU 0.02.
``small``
    Designed for a 2-core CPU and a few hours (see ``docs/training.md`` for the reasoning and
    the measured step rates): same 6 scales and output size, narrower high-resolution scales,
    most iterations spent at the cheap low-resolution scales.
``small-control``
    ``small`` with the word-control recipe (issue 15): standardised attribute logits in, the
    critic's attribute head in standardised logit units, the teacher in the loop from scale 2
    (128x16), the f0 loss at the last scale. Chosen by ``benchmarks/control_ablation.py`` (``docs/training.md``).
``tiny``
    Seconds; for tests. All 6 scales (full ``[B, 2, 1024, 32]`` output) with 4-8 channels and
    a handful of iterations per scale.

Overrides (``apply_overrides``) take ``section.field=value`` strings, e.g.
``train.batch_size=[8,8,8,8,8,8]``, ``train.lr=5e-4``, ``model.channels=[64,64,32,32,16,16]``,
``train.loss_weights.g_attr=5``. Values are parsed as JSON (``True``/``False``/``None`` and
bare words are accepted too) and checked against the field's type; a scalar given for a
per-scale field is repeated for every scale. Parsing, typing and (de)serialisation are
:mod:`darkgan.utils.config`'s (pydantic-validated), as for every model family; this module keeps
the fields, the presets and each section's semantic ``validate``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field

from darkgan.data.constants import FADE_OUT_SAMPLES
from darkgan.errors import DarkGANError
from darkgan.utils.config import apply_overrides as _apply
from darkgan.utils.config import config_from_dict, config_to_dict, is_list_of

#: Frame-to-frame steps of a note's energy envelope (``darkgan.data.magif.N_FRAMES - 1``; this
#: module imports no torch): the range of ``train.envelope_drop_steps``.
ENVELOPE_STEPS = 31

#: Scale output shapes are ``output_shape / down_factors[s]``.
PAPER_DOWN_FACTORS = ((32, 8), (16, 4), (8, 2), (4, 1), (2, 1), (1, 1))
#: Values of ``model.attr_input`` (see :class:`ModelConfig`).
ATTR_INPUTS = ("prob", "std_logit", "white_logit")
#: Values of ``train.trainable`` (see :class:`TrainConfig`).
TRAINABLE = ("all", "mapping", "conditioning")
#: Values of ``train.teacher_loss`` (see :class:`TrainConfig`).
TEACHER_LOSSES = ("std_mse", "bce", "white_mse", "corr")
#: Values of ``train.teacher_gradient``: what of the generated MAG-IF the teacher terms' gradients reach.
TEACHER_GRADIENTS = ("magif", "magnitude")
#: Values of ``train.attr_loss``, the critic's attribute head (per note: no batch correlation, no whitening).
ATTR_LOSSES = ("bce", "std_mse")
#: Forms of the ``g_steer`` term, ``train.steer_loss`` (:func:`darkgan.training.losses.steer_distillation_loss`).
STEER_LOSSES = ("match", "projection")
#: Values of ``train.f0_reference``: the ``g_f0`` term absolute, or relative to the real notes
#: (:func:`darkgan.training.losses.f0_relative_loss`).
F0_REFERENCES = ("none", "real")
#: Values of ``train.profile_reference``: the envelope ``g_profile`` asks of a generated note, the
#: labels' linear prediction or the envelope of the real note it was asked as.
PROFILE_REFERENCES = ("model", "real")
#: Values of ``train.envelope_match_reference``: the mean onset ``envelope_match_steps`` asks of a
#: batch, the training notes' or that of the real notes the batch is asked as.
ENVELOPE_MATCH_REFERENCES = ("data", "batch")
#: Values of ``train.precision`` (see :class:`TrainConfig`).
PRECISIONS = ("auto", "bf16", "fp32")
#: Values of ``train.memory_format`` (see :class:`TrainConfig`).
MEMORY_FORMATS = ("auto", "channels_last", "contiguous")
#: Values of ``train.teacher_transforms`` (see :func:`darkgan.training.losses.augment_for_teacher`).
TEACHER_TRANSFORMS = ("shift", "noise", "tilt")
#: Values of ``train.checkpoint_metrics`` (see :mod:`darkgan.training.checkpoint_metrics`).
CHECKPOINT_METRICS = ("pitch_accuracy", "teacher_rho")


@dataclass
class ModelConfig:
    """Architecture of the generator and critic (paper Sec. 4.3.2; reference ``model_config``).

    Attributes:
        latent_dim: size of the noise vector z ~ N(0, I).
        channels: feature maps per scale, low to high resolution (``len`` = number of scales).
        critic_channels: the critic's feature maps per scale (``None``: same as ``channels``).
        down_factors: (frequency, time) down-sampling factor of each scale's output relative to
            ``output_shape``; must decrease to (1, 1) and each step must be an integer ratio.
        output_shape: (frequency bins, frames) of the final scale: (1024, 32).
        out_channels: 2 (log magnitude, instantaneous frequency).
        leaky_slope: negative slope of every leaky ReLU.
        convs_per_block: 3x3 convolutions per scale block (reference: 2).
        pixel_norm: pixel-wise feature normalisation after every generator convolution.
        normalize_latent: pixel-normalise z before concatenating the condition (the reference
            normalises the whole input vector, attributes included; normalising z alone keeps
            the attribute values' scale meaningful).
        minibatch_std_group: group size of the critic's mini-batch std-dev (0 disables it).
        attr_input: how the generator sees the attribute vector alpha (probabilities
            ``sigmoid(z / T)``): ``"prob"`` as the paper (raw probabilities, median ~0.035 on
            our data: an almost constant input); ``"std_logit"`` (ours) the per-attribute
            standardised logit ``(logit(alpha) - mu_i) / sigma_i``, with mu, sigma the training
            notes' statistics of ``z / T`` stored in the generator (buffers ``attr_mean``,
            ``attr_std``), so every attribute reaches the network with unit variance;
            ``"white_logit"`` (ours) the standardised logits through a shrinkage whitening
            ``c W`` (``W = V diag(s) V^T``, ``s_k = sqrt(g / (lambda_k + attr_white_eps))``, V and
            lambda the eigenvectors and eigenvalues of the training notes' standardised-logit
            covariance, g keeping the total variance at K; buffer ``attr_white``): the few
            directions that carry most of the soft labels' variance (the top 5 of 128: 61 %) are
            compressed and the minor ones, where attributes such as "Percussion" live (only 36 %
            of its variance in the top 5), are amplified, so the first layer sees every
            direction of the conditioning at a comparable scale (docs/training.md).
        attr_white_eps: the shrinkage of ``"white_logit"`` (> 0; in units of the standardised
            covariance's mean eigenvalue, 1): small = full whitening (noise directions amplified
            without bound), large = ``std_logit`` up to a scale.
        mapping_layers: ours, 0 in every preset: an *attribute mapping* network
            ``z' = pixel_norm(z) + M([pixel_norm(z), c])`` (``c`` the standardised attributes as
            for ``std_logit``; M an MLP of this many layers, the last zero-initialised so that
            ``z' = z`` at first) feeds the generator the latent of a note that has the asked
            attributes: the conditioning reaches G through z, the input G is most sensitive to
            (cf. StyleGAN's mapping network, Karras et al. 2019, Sec. 2).
        mapping_width: hidden width of M.
        critic_projection: ours, off in every preset: the critic also scores whether a note
            matches its conditioning, by projection (Miyato & Koyama 2018, Eq. 3; see
            :mod:`darkgan.models.critic`), on real and generated notes alike.
        attr_film_from_scale: ours, -1 (off) in every preset: the conditioning also modulates
            every generator convolution from this scale on (FiLM, Perez et al. 2018; the
            per-channel scale and shift of BigGAN's conditional batch norm and StyleGAN's style
            modulation): after each convolution's activation ``h <- h * (1 + g(c)) + b(c)``, with
            ``[g, b]`` a linear map of the condition ``c`` (the input's attribute part,
            :meth:`Generator.condition`) zero-initialised, so a generator given FiLM starts as
            the one without it. Without it the attributes reach only the 32x4 format layer, and
            the narrow high-resolution scales, where the harmonics that tell an attribute from
            its correlates are resolved, see them only through up-sampled coarse features.
        synthesis_fade: samples of the raised-cosine fade synthesis puts at the end of every
            note (:func:`darkgan.data.magif.magif_to_note`; every training term that hears a
            note hears it with this fade, so it is part of the model). Default the data's own
            fade, 1,024 samples = 64 ms (every checkpoint before stop 58); one hop, 512, keeps
            the cut of the phase-inconsistent last frames away without fading twice what the
            generator already fades (ours, issue 15 item 7). In [0, 2048]; a fine-tune may change it.
    """

    latent_dim: int = 32
    channels: tuple[int, ...] = (256, 128, 128, 128, 128, 64)
    critic_channels: tuple[int, ...] | None = None
    down_factors: tuple[tuple[int, int], ...] = PAPER_DOWN_FACTORS
    output_shape: tuple[int, int] = (1024, 32)
    out_channels: int = 2
    leaky_slope: float = 0.02
    convs_per_block: int = 2
    pixel_norm: bool = True
    normalize_latent: bool = True
    minibatch_std_group: int = 4
    attr_input: str = "prob"
    attr_white_eps: float = 1.0
    mapping_layers: int = 0
    mapping_width: int = 128
    critic_projection: bool = False
    attr_film_from_scale: int = -1
    synthesis_fade: int = FADE_OUT_SAMPLES

    @property
    def n_scales(self) -> int:
        return len(self.channels)

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """Inverse of :meth:`to_dict`; raises :class:`DarkGANError` on unknown or mistyped keys."""
        return config_from_dict(cls, d, "model")

    @property
    def d_channels(self) -> tuple[int, ...]:
        return tuple(self.critic_channels) if self.critic_channels else tuple(self.channels)

    def scale_shape(self, scale: int) -> tuple[int, int]:
        """(frequency, time) size of scale ``scale``'s output, e.g. scale 0 -> (32, 4)."""
        fh, fw = self.down_factors[scale]
        return self.output_shape[0] // fh, self.output_shape[1] // fw

    def up_factor(self, scale: int) -> tuple[int, int]:
        """(frequency, time) up-sampling factor from scale ``scale - 1`` to ``scale``."""
        (a, b), (c, d) = self.down_factors[scale - 1], self.down_factors[scale]
        return a // c, b // d

    def validate(self) -> None:
        """Raise :class:`DarkGANError` if the fields are inconsistent."""
        n = self.n_scales
        if n < 1 or any(c < 1 for c in self.channels):
            raise DarkGANError(f"model.channels must be positive, got {list(self.channels)}")
        if len(self.d_channels) != n:
            raise DarkGANError(f"model.critic_channels has {len(self.d_channels)} entries, expected {n}")
        if len(self.down_factors) != n:
            raise DarkGANError(f"model.down_factors has {len(self.down_factors)} entries, "
                               f"model.channels has {n}: give one per scale")
        if tuple(self.down_factors[-1]) != (1, 1):
            raise DarkGANError(f"model.down_factors must end with (1, 1), got {list(self.down_factors)}")
        for s, (fh, fw) in enumerate(self.down_factors):
            if self.output_shape[0] % fh or self.output_shape[1] % fw:
                raise DarkGANError(f"model.down_factors[{s}] = {(fh, fw)} does not divide {self.output_shape}")
            if s:
                (a, b) = self.down_factors[s - 1]
                if a % fh or b % fw or (a // fh) * (b // fw) < 2:
                    raise DarkGANError(f"model.down_factors: scale {s} {(fh, fw)} is not an integer "
                                       f"up-sampling of scale {s - 1} {(a, b)}")
        if not 0 <= self.leaky_slope < 1:
            raise DarkGANError(f"model.leaky_slope must be in [0, 1), got {self.leaky_slope}")
        if self.convs_per_block < 1 or self.latent_dim < 1:
            raise DarkGANError("model.convs_per_block and model.latent_dim must be >= 1")
        if self.mapping_layers < 0 or self.mapping_layers == 1 or self.mapping_width < 1:
            raise DarkGANError(f"model.mapping_layers must be 0 or >= 2 and model.mapping_width >= 1, got "
                               f"{self.mapping_layers}, {self.mapping_width}")
        if self.attr_input not in ATTR_INPUTS:
            raise DarkGANError(f"model.attr_input must be one of {', '.join(ATTR_INPUTS)}, got {self.attr_input!r}")
        if not self.attr_white_eps > 0:
            raise DarkGANError(f"model.attr_white_eps must be > 0, got {self.attr_white_eps}")
        if not -1 <= self.attr_film_from_scale < n:
            raise DarkGANError(f"model.attr_film_from_scale must be -1 (off) or a scale in [0, {n}), "
                               f"got {self.attr_film_from_scale}")
        if not 0 <= self.synthesis_fade <= 2048:
            raise DarkGANError(f"model.synthesis_fade must be in [0, 2048] samples, got {self.synthesis_fade}")


def _default_loss_weights() -> dict[str, float]:
    return {
        "g_adv": 1.0,  # G: the Wasserstein term -E[D(G(z))]
        "g_attr": 10.0,  # G: distillation BCE on generated notes vs. their conditioning (Eq. 2)
        "g_pitch": 10.0,  # G: pitch cross-entropy on generated notes
        "d_attr": 10.0,  # D: distillation BCE on real notes vs. teacher soft labels (Eq. 1-2)
        "d_pitch": 10.0,  # D: pitch cross-entropy on real notes
        "d_attr_fake": 0.0,  # D on generated notes (the reference leaves these out)
        "d_pitch_fake": 0.0,
        # G: pitch loss on the generated waveform (autocorrelation at the asked period; last scale
        # only). Ours, not the paper's: 0 in every preset.
        "g_f0": 0.0,
        # G: the teacher itself labels the generated waveform (random transforms first) and is
        # matched to the conditioning (train.teacher_loss; last scale only). Ours: 0 in `paper`.
        "g_teacher": 0.0,
        # G: timbre consistency across pitch: the same (z, alpha) at pitch p and p +- k must sound
        # alike to the teacher (embedding distance; train.consistency_*). Ours: 0 in every preset.
        "g_consistency": 0.0,
        # G: single-attribute control: the same (z, pitch) with one attribute raised by
        # train.increment_delta standard deviations must sound that much more of it to the
        # teacher (train.increment_*). Ours: 0 in every preset.
        "g_increment": 0.0,
        # G: frame-to-frame energy changes within the real notes' range (train.envelope_quantile;
        # last scale only): the onset burst of generated notes. Ours: 0 in every preset.
        "g_envelope": 0.0,
        # G: the temporal energy envelope within the band real notes with the same labels and pitch
        # keep to (train.profile_*; last scale only). Ours: 0 in every preset.
        "g_profile": 0.0,
        # G: timbre transfer as a ranking: the teacher's soft labels of each generated note must
        # lie nearer its own conditioning than other training notes' attributes
        # (train.retrieval_*; last scale only). Ours: 0 in every preset.
        "g_retrieval": 0.0,
        # G: a single-attribute edit must sound like the same edit with the other attributes
        # steered as in the data (the generator's own steered output as the target;
        # train.steer_fraction). Ours: 0 in every preset.
        "g_steer": 0.0,
        # G: a single-attribute edit must change the note as that attribute alone changes the
        # real notes: its partial (own) effect, regressed over the training notes with the other
        # attributes and the pitch held fixed (train.partial_*). Ours: 0 in every preset.
        "g_partial": 0.0,
        # G: the teacher hears the note's tail alone (from train.tail_from_s) and must label it as
        # it labels the tail of the real note whose labels and pitch the note was asked with: the
        # decay, where a struck note's Percussion lives, cannot be met by an onset click. Ours: 0.
        "g_tail": 0.0,
        # G: the teacher's labels of each generated note must stay those of a reference generator's
        # note for the same (z, pitch, alpha), heard with that generator's own synthesis
        # (train.anchor_generator; last scale only): a fine-tune keeps what its source makes the
        # teacher hear while another term changes something else. Ours: 0 in every preset.
        "g_anchor": 0.0,
        # G: the normalised MAG-IF of each generated note must stay the reference generator's
        # (train.anchor_generator, the same request) except its last train.anchor_free_frames
        # frames: an end-of-note fine-tune changes the end and keeps the body. Ours: 0 in every preset.
        "g_anchor_body": 0.0,
    }


@dataclass
class TrainConfig:
    """Optimisation and schedule (reference ``darkgan.json``; paper Sec. 4.3.2).

    Per-scale tuples have one entry per model scale. A "step" is one critic update followed by
    one generator update (n_critic = 1, as the reference).

    Attributes:
        iterations: steps trained at each scale (fade-in included).
        fade_in_jumps: number of alpha jumps when a scale is added (0 for scale 0: none).
        alpha_jump_size: steps between two alpha jumps; alpha (the new scale's weight) grows
            linearly 0 -> 1 over ``fade_in_jumps[s] * alpha_jump_size`` steps.
        batch_size: global mini-batch per scale (split evenly over distributed ranks).
        lr, betas, adam_eps: Adam, the same for G and D.
        reset_optimizer_per_scale: fresh Adam state when a scale starts (as the reference).
        gp_lambda: WGAN-GP weight (Gulrajani et al. 2017).
        drift_epsilon: weight of ``mean(D(real)^2)`` (PGGAN Sec. A.1).
        loss_weights: auxiliary loss weights, one dict (keys ``g_attr``, ``g_pitch``, ``d_attr``,
            ``d_pitch``, ``d_attr_fake``, ``d_pitch_fake``, ``g_f0``, ``g_teacher``,
            ``g_consistency``; ``g_f0`` weights
            :func:`darkgan.training.losses.f0_autocorrelation_loss` at the last scale, ours, 0;
            ``g_consistency`` the timbre consistency across pitch, ours, 0, see
            ``consistency_fraction``; ``g_increment`` single-attribute control, ours, 0, see
            ``increment_fraction``; ``g_envelope`` the onset burst, ours, 0, see
            ``envelope_quantile``; ``g_profile`` the envelope the labels predict, ours, 0, see
            ``profile_ridge``; ``g_retrieval`` the timbre-transfer ranking, ours, 0, see
            ``retrieval_negatives``; ``g_steer`` single edits sound like steered ones, ours, 0,
            see ``steer_fraction``; ``g_tail`` the teacher on the note's tail, ours, 0, see
            ``tail_from_s``).
        temperature: distillation temperature T (Eq. 1); the paper's best is 2 (the reference
            file uses 3).
        ema: keep an exponential moving average of G's weights (shipped and used for samples).
        ema_decay: EMA decay per step (reference 0.999).
        ema_warmup: ramp the EMA decay up at the start of every scale, ``min(ema_decay,
            (1 + t) / (10 + t))`` with ``t`` the steps since the scale began (Tarvainen &
            Valpola 2017; cf. StyleGAN2's ``ema_rampup``). The generator's layers of a new scale
            start from their random initialisation; with a fixed 0.999 decay a 900-step scale
            would still keep 41 % of that initialisation in the EMA weights. Short runs need it.
        seed: seeds weights, data order and noise.
        checkpoint_every: steps between checkpoints (also written at the end, on SIGINT/SIGTERM
            and when ``--max-minutes`` runs out).
        log_every: steps between TensorBoard scalar logs.
        sample_every: steps between TensorBoard spectrogram images / audio (0: never).
        keep_checkpoints: completed checkpoints kept in the run folder (the newest ones).
        gp_every: lazy regularisation (StyleGAN2, Karras et al. 2020, Sec. 3.1): the gradient
            penalty is computed every ``gp_every`` critic steps with weight
            ``gp_lambda * gp_every`` (1 = every step, as the paper).
        teacher_loss: the ``g_teacher`` term: ``"std_mse"`` (ours) the mean squared difference of
            teacher and conditioning logits ``z / T`` divided by each attribute's training std
            (every attribute weighs the same, gradients do not vanish at p ~ 0.03);
            ``"bce"`` paper Eq. 2 between ``sigmoid(z_teacher / T)`` and alpha;
            ``"white_mse"`` (ours) that standardised error through the shrinkage whitening of
            the training notes' logits (:func:`darkgan.training.terms.attribute_whitening`,
            ``teacher_white_eps``): a Mahalanobis-like distance that counts an error along a
            minor direction of the soft labels (where "Percussion" lives) as much as one along
            the few major directions, which ``std_mse`` counts once per correlated attribute;
            ``"corr"`` (ours, stop 52) ``1 - r_k`` averaged over the attributes, ``r_k`` the
            Pearson correlation over the batch between the teacher's ``z_k / T`` and the asked
            ``logit(alpha_k)``: the attribute correlation of paper Sec. 4.4.2 itself, free of scale
            and offset, which a squared error is not (a weakly correlated prediction lowers its
            squared error by shrinking toward the mean note). Also the form of ``g_tail``.
        teacher_gradient: what the gradients of the terms the teacher hears (``g_teacher``,
            ``g_tail``, ``g_retrieval``, ``g_increment``, ``g_consistency``) reach: ``"magif"``
            (default) both channels; ``"magnitude"`` (ours, stop 52) the log magnitude only, the
            instantaneous frequency detached. The phase is the running sum of the IF, so a step on
            one frame's IF moves every later frame's phase: G fitting the teacher alone (300 Adam
            steps, lr 1e-3, ``corr``) lost its pitch (``g_f0`` 0.08 -> 5.6) and lowered its
            correlation, and with the IF detached raised it (docs/training.md, stop 52).
        teacher_white_eps: the shrinkage of ``"white_mse"`` (> 0, in units of the mean eigenvalue).
        teacher_transforms: random transforms of the generated waveform before the teacher
            hears it, so that it cannot be fooled by patterns no ear hears
            (:func:`darkgan.training.losses.augment_for_teacher`).
        teacher_attribute_weights: ``{attribute display name: weight}`` of the ``g_teacher``
            and ``g_tail`` terms (every other attribute weighs 1; the weights are divided by their mean, so the
            term keeps its scale): attributes the generator follows least, or the words a user
            will ask for most, get more of the teacher's judgement. Names must be in the
            dataset's vocabulary (checked when training starts); weights >= 0. Empty (default):
            every attribute alike. Ours.
        anchor_generator: the reference of the ``g_anchor`` term: a generator checkpoint (folder,
            run folder or a shipped name such as ``default``) with the run's pitch range and
            vocabulary; its notes are synthesised with its own ``model.synthesis_fade`` and
            labelled by the teacher without gradients, and the ``"std_mse"`` error of
            :func:`~darkgan.training.losses.teacher_attribute_loss` (weighted by
            ``teacher_attribute_weights``) pulls the run's labels of the same request toward them.
            Recorded in the config, so a resume anchors to the same generator. Needed (only) when
            ``g_anchor > 0``. Ours (stop 62: an end-of-note fine-tune that keeps the source's
            struck-note attributes). Also the reference of ``g_anchor_body``.
        anchor_free_frames: frames at the end of the note (of 32; a frame is 512 samples, 32 ms)
            that ``g_anchor_body`` leaves free; the frames before them are held to the reference
            generator's MAG-IF. In [1, 31]. Ours (stop 63).
        critic_warmup: at the start of a run, this many critic-only steps (a fine-tune from
            ``--init-generator`` starts with a fresh critic).
        trainable: ``"all"`` (G and D, the GAN) or ``"mapping"``: only the generator's
            attribute mapping trains (``model.mapping_layers``), the rest of G is frozen, the
            critic is not used (its losses need weight 0) and the output terms (``g_teacher``,
            ``g_f0``) teach the mapping which latent has the asked attributes;
            ``"conditioning"``: the same, and the format layer's attribute columns train too (the
            attributes' direct path into the first feature map; every convolution stays frozen).
        frozen_blocks: with ``trainable="all"``, the generator's input (format layer, attribute
            mapping) and its first ``frozen_blocks`` scales' blocks and output heads stay as
            the fine-tune's source left them; the finer blocks and the critic train. 0 (default):
            nothing frozen. Fine-tuning only the top of a pre-trained network keeps what its lower
            layers learnt (Yosinski et al. 2014; for GANs, Mo et al. 2020 freeze the critic's
            lower layers). Stop 60 changed the end of a note with the last one or two blocks
            alone (docs/training.md, "The end of the note from the finest blocks"). Ours.
        output_terms_from_scale: the first scale at which the teacher term (``g_teacher``)
            applies; -1 (default): the last scale only. At a coarser scale the output is
            nearest-up-sampled to the full ``[2, 1024, 32]`` before inversion (a blurred note, whose
            spectral envelope the teacher hears): the conditioning is then taught where steps are
            10-20x cheaper. ``g_f0`` always waits for the last scale (pitch is not resolved below
            it: pYIN finds no f0 in up-sampled 128x16 notes).
        consistency_fraction: the ``g_consistency`` term (ours, weight 0 in every preset): the
            first ``ceil(consistency_fraction * b)`` notes of each generator batch are generated a
            second time with the same ``(z, alpha)`` at a neighbouring pitch ``p +- k``, and the
            teacher-embedding distance of each pair is penalised
            (:func:`darkgan.training.losses.timbre_consistency_loss`); in (0, 1].
        consistency_max_offset: ``k`` is drawn uniformly from ``1..consistency_max_offset``
            semitones (the sign at random, flipped at the ends of the pitch range); >= 1, and the
            data must have at least ``2 * consistency_max_offset`` pitches.
        increment_fraction: the ``g_increment`` term (ours, weight 0 in every preset): the first
            ``ceil(increment_fraction * b)`` notes of each generator batch are generated a second
            time with the same ``(z, pitch)`` and one attribute ``i`` (uniform over the K) raised
            by ``increment_delta`` training standard deviations of ``z / T``, and the teacher must
            hear that rise (:func:`darkgan.training.losses.attribute_increment_loss`); in (0, 1].
        increment_delta: that rise, in standard deviations of the attribute's ``z / T`` over the
            training notes (2 ~ a typical note to a 98th-percentile one); > 0.
        envelope_quantile: the ``g_envelope`` term (ours, weight 0 in every preset): each
            frame-to-frame energy change of a generated note outside the ``envelope_quantile`` ..
            ``1 - envelope_quantile`` quantiles of 2,048 real training notes' is penalised
            quadratically (:func:`darkgan.training.losses.envelope_range_loss`); in (0, 0.5).
        envelope_drop_steps: how many leading steps (frame f -> f + 1, from f = 0) the term's
            lower bound (energy drops) applies to; rises are bounded at every step. 31 (every
            step, the default and the recipe of every shipped checkpoint so far) also forbids
            decays faster than 99 % of real notes', which the percussive notes have (stop 43:
            the top 5 % by teacher "Percussion" pay 5x the mean loss at quantile 0.05; freeing
            them in a fine-tune did not raise Percussion's rho, docs/training.md); 2 bounds only
            the onset's thump (frames 0 -> 1 -> 2); in [0, 31].
        envelope_bands_hz: frequencies (Hz, increasing, in (20, 8000)) that split the audible
            spectrum into bands whose energy envelopes ``g_envelope`` bounds each on its own (per
            band and step, from the real notes); ``()`` (default) one band, the whole audible
            energy. A bright click whose total energy stays within the real notes' steps still
            leaves the range of their energy above a few kHz (stop 50: the generators' frame 1
            holds -13 dB of its energy above 4 kHz, real notes' -31 dB).
        envelope_match_steps: ``g_envelope`` also matches the batch mean of the first this many
            steps (per band) to the real notes' mean (:func:`darkgan.training.losses.envelope_mean_loss`):
            a burst every note makes within the real range; 0 (default) off; in [0, 31].
        envelope_match_tail_steps: likewise the release, as levels: the batch mean of the last
            this many frames' energies relative to the frame before them (per band) against the
            real notes'; a release every note begins early (the stop-54 default's last frames
            4-5 dB darker than real crops', issue 15 item 7); 0 (default) off; in [0, 31].
        envelope_match_reference: that mean: ``"data"`` (default) of 2,048 training notes, or
            ``"batch"`` of the real notes whose labels and pitches the batch is asked with, so a
            batch asked for percussive notes is asked for their sharper onsets.
        retrieval_negatives: the ``g_retrieval`` term (ours, weight 0 in every preset): each
            generated note's own conditioning is ranked against this many training notes'
            attributes, drawn anew every step (:func:`darkgan.training.losses.teacher_retrieval_loss`); >= 1.
        retrieval_scale: that term's distance unit, a fraction of the median squared distance
            between two training notes' attribute vectors (alpha); > 0.
        steer_fraction: the ``g_steer`` term (ours, weight 0 in every preset): the first
            ``ceil(steer_fraction * b)`` notes of each generator batch are generated twice more
            with the same ``(z, pitch)``: one attribute (uniform over the K) set alone to a value
            drawn between its training 5th and 99th percentiles of ``z / T``, and the same edit
            with the other attributes steered as in the data; the first is pulled onto the second
            (:func:`darkgan.training.losses.steer_distillation_loss`); in (0, 1].
        steer_loss: that term's form, ``"match"`` (the whole change of the single edit must be the
            steered edit's; cannot reach 0) or ``"projection"`` (only its component along the
            steered change; :data:`STEER_LOSSES`).
        steer_attributes: the attributes (display names) whose single edits ``g_steer`` trains,
            drawn uniformly among them; empty (the default): all K. Fewer attributes, more edits
            of each per step.
        partial_fraction: the ``g_partial`` term (ours, weight 0 in every preset): the first
            ``ceil(partial_fraction * b)`` notes of each generator batch are generated once more
            with the same ``(z, pitch)`` and one attribute set alone to a value drawn between its
            training 5th and 99th percentiles of ``z / T``; the change must be that attribute's
            partial effect in the real notes, ``beta_i * (t - u_i)``
            (:func:`darkgan.training.terms.partial_effect_maps`,
            :func:`darkgan.training.losses.edit_matching_loss`); in (0, 1].
        partial_loss: that term's form, ``"match"`` or ``"projection"`` (:data:`STEER_LOSSES`).
        partial_ridge: the regression's ridge penalty on the standardised attribute coefficients,
            as a fraction of the number of training notes (0: least squares); >= 0.
        partial_gain: the target's scale, ``gain * beta_i * (t - u_i)`` (1: as in the data; above
            1 a stronger control than the data's); > 0.
        partial_attributes: the attributes (display names) whose single edits ``g_partial`` trains,
            drawn uniformly among them; empty (the default): all K.
        f0_reference: the form of ``g_f0``: ``"none"`` (default) every generated note pays its
            whole waveform pitch loss (:func:`darkgan.training.losses.f0_autocorrelation_loss`);
            ``"real"`` (ours, issue 15) it pays only what exceeds the loss of the real note whose
            labels and pitch it was asked with (:func:`darkgan.training.losses.f0_relative_loss`),
            so percussive, bell-like and pure-tone notes, whose real notes have a weak
            autocorrelation at their period, are not pushed to be more periodic than they are.
        profile_ridge: the ``g_profile`` term (ours, weight 0 in every preset): the ridge of the
            regression of the real notes' temporal envelopes on their conditioning and pitch
            (:func:`darkgan.training.terms.envelope_profile_model`); >= 0.
        profile_band: the band around the expected envelope that ``g_profile`` leaves free, in
            real notes' residual standard deviations (:func:`darkgan.training.losses.envelope_profile_loss`); > 0.
        profile_reference: the envelope ``g_profile`` centres its band on: ``"model"`` (default) the
            labels' and pitch's linear prediction (:class:`darkgan.training.terms.ProfileModel`);
            ``"real"`` (ours, issue 15) the envelope of the real note whose labels and pitch the
            generated note was asked with, so that struck notes, whose decay the linear mean
            under-predicts, are asked to decay as theirs do.
        tail_from_s: where the ``g_tail`` term (ours, weight 0 in every preset) starts listening, in
            seconds from the note's start: the teacher labels the generated note's waveform from
            there on against its labels of the same span of the real note the generated note was
            asked as (:meth:`darkgan.training.terms.BatchTerms.tail_term`); in [0.05, 0.75] s.
        attr_loss: the critic's attribute head (``d_attr``, ``d_attr_fake``, ``g_attr``):
            ``"bce"`` paper Eq. 2 at T; ``"std_mse"`` (ours) the squared error of the head's
            logits ``/ T`` against ``logit(alpha)`` in units of each attribute's training std, as
            ``teacher_loss``: at p ~ 0.03 the BCE's gradients are ~ 0.02 and the head learns
            little more than the mean.
        checkpoint_metrics: quality metrics of the EMA generator computed at every checkpoint on
            a fixed set of ``metric_notes`` validation notes, written to ``metrics.jsonl`` and
            TensorBoard (:mod:`darkgan.training.checkpoint_metrics`): ``pitch_accuracy`` (pYIN,
            within 50 cents), ``teacher_rho`` (mean Pearson r of the teacher's probabilities of
            the generated notes with their conditioning). Empty: none (``tiny``).
        metric_notes: size of that fixed set.
        best_metric: one of ``checkpoint_metrics`` (higher is better): the run keeps a copy of
            its best final-scale checkpoint by it in ``best/`` ("": no best copy).
        precision: arithmetic of G's forward passes and the critic's real/fake passes:
            ``"bf16"`` bfloat16 autocast (weights, optimizer and the gradient penalty stay float32;
            on a CPU with AMX or AVX512-BF16 a convolution runs 1.6-3x faster), ``"fp32"``, or
            ``"auto"`` (default): bf16 on CUDA, fp32 on the CPU.
        memory_format: layout of G's and D's weights and activations: ``"channels_last"`` (NHWC,
            oneDNN's preferred layout on the CPU too), ``"contiguous"`` (NCHW), or ``"auto"``
            (default): channels-last on CUDA, NCHW on the CPU.
    """

    iterations: tuple[int, ...] = (128_000, 200_000, 200_000, 200_000, 200_000, 300_000)
    fade_in_jumps: tuple[int, ...] = (0, 600, 600, 600, 600, 1200)
    alpha_jump_size: int = 32
    batch_size: tuple[int, ...] = (30, 30, 20, 20, 20, 10)
    lr: float = 0.001
    betas: tuple[float, float] = (0.0, 0.99)
    adam_eps: float = 1e-8
    reset_optimizer_per_scale: bool = True
    gp_lambda: float = 10.0
    drift_epsilon: float = 0.001
    loss_weights: dict[str, float] = field(default_factory=_default_loss_weights)
    temperature: float = 2.0
    ema: bool = True
    ema_decay: float = 0.999
    ema_warmup: bool = True
    seed: int = 0
    checkpoint_every: int = 5000
    log_every: int = 100
    sample_every: int = 5000
    keep_checkpoints: int = 2
    gp_every: int = 1
    teacher_loss: str = "std_mse"
    teacher_white_eps: float = 1.0
    teacher_gradient: str = "magif"
    teacher_transforms: tuple[str, ...] = ("shift", "noise", "tilt")
    teacher_attribute_weights: dict[str, float] = field(default_factory=dict)
    critic_warmup: int = 0
    trainable: str = "all"
    frozen_blocks: int = 0
    output_terms_from_scale: int = -1
    consistency_fraction: float = 0.5
    consistency_max_offset: int = 3
    increment_fraction: float = 0.5
    increment_delta: float = 2.0
    envelope_quantile: float = 0.005
    envelope_drop_steps: int = ENVELOPE_STEPS
    envelope_bands_hz: tuple[float, ...] = ()
    envelope_match_steps: int = 0
    envelope_match_tail_steps: int = 0
    envelope_match_reference: str = "data"
    retrieval_negatives: int = 255
    retrieval_scale: float = 0.1
    steer_fraction: float = 0.5
    steer_loss: str = "match"
    steer_attributes: tuple[str, ...] = ()
    partial_fraction: float = 0.5
    partial_loss: str = "match"
    partial_ridge: float = 0.0
    partial_gain: float = 1.0
    partial_attributes: tuple[str, ...] = ()
    f0_reference: str = "none"
    profile_ridge: float = 0.01
    profile_band: float = 1.0
    profile_reference: str = "model"
    tail_from_s: float = 0.2
    anchor_generator: str = ""
    anchor_free_frames: int = 4
    attr_loss: str = "bce"
    checkpoint_metrics: tuple[str, ...] = CHECKPOINT_METRICS
    metric_notes: int = 16
    best_metric: str = "pitch_accuracy"
    precision: str = "auto"
    memory_format: str = "auto"

    @property
    def uses_critic(self) -> bool:
        """Whether G learns from the critic: ``trainable == "all"`` and one of the critic's
        generator terms (``g_adv``, ``g_attr``, ``g_pitch``) weighted > 0. Else no critic step
        runs: a critic-free fine-tune, where only the output terms (``g_teacher``, ``g_tail``, ...)
        teach G and the critic is carried to the checkpoint unchanged."""
        from_critic = ("g_adv", "g_attr", "g_pitch")
        return self.trainable == "all" and any(self.loss_weights.get(k, 0.0) > 0 for k in from_critic)

    @property
    def total_steps(self) -> int:
        return int(sum(self.iterations))

    def __post_init__(self) -> None:
        # A saved configuration from before a loss term existed: the term's default weight.
        if isinstance(self.loss_weights, dict):
            self.loss_weights = {**_default_loss_weights(), **self.loss_weights}

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; raises :class:`DarkGANError` on unknown or mistyped keys."""
        return config_from_dict(cls, d, "train")

    def validate(self, n_scales: int) -> None:
        """Raise :class:`DarkGANError` if the fields are inconsistent with ``n_scales``."""
        for name in ("iterations", "fade_in_jumps", "batch_size"):
            v = getattr(self, name)
            if len(v) != n_scales:
                raise DarkGANError(f"train.{name} has {len(v)} entries, the model has {n_scales} scales")
        if any(i < 0 for i in self.iterations) or self.total_steps < 1:
            raise DarkGANError(f"train.iterations must be >= 0 with a positive sum, got {list(self.iterations)}")
        if any(b < 1 for b in self.batch_size):
            raise DarkGANError(f"train.batch_size must be >= 1, got {list(self.batch_size)}")
        if not 0 <= self.frozen_blocks < n_scales:
            raise DarkGANError(f"train.frozen_blocks must be in [0, {n_scales - 1}] (the last block trains), "
                               f"got {self.frozen_blocks}")
        if self.alpha_jump_size < 1 or any(j < 0 for j in self.fade_in_jumps):
            raise DarkGANError("train.alpha_jump_size must be >= 1 and train.fade_in_jumps >= 0")
        _check_number("train.temperature", self.temperature, "> 0", lambda v: v > 0)
        _check_number("train.lr", self.lr, "> 0", lambda v: v > 0)
        _check_number("train.adam_eps", self.adam_eps, "> 0", lambda v: v > 0)
        for i, b in enumerate(self.betas):
            _check_number(f"train.betas[{i}]", b, "in [0, 1)", lambda v: 0 <= v < 1)
        _check_number("train.gp_lambda", self.gp_lambda, ">= 0", lambda v: v >= 0)
        _check_number("train.drift_epsilon", self.drift_epsilon, ">= 0", lambda v: v >= 0)
        _check_number("train.ema_decay", self.ema_decay, "in [0, 1)", lambda v: 0 <= v < 1)
        unknown = sorted(set(self.loss_weights) - set(_default_loss_weights()))
        if unknown:
            raise DarkGANError(f"train.loss_weights.{unknown[0]}: unknown loss weight "
                               f"(known: {', '.join(sorted(_default_loss_weights()))})")
        for k, v in self.loss_weights.items():
            _check_number(f"train.loss_weights.{k}", v, ">= 0", lambda v: v >= 0)
        for k in ("checkpoint_every", "log_every", "keep_checkpoints", "gp_every"):
            if getattr(self, k) < 1:
                raise DarkGANError(f"train.{k} must be >= 1, got {getattr(self, k)}")
        if self.sample_every < 0 or self.seed < 0:
            raise DarkGANError(f"train.sample_every and train.seed must be >= 0, got "
                               f"{self.sample_every} and {self.seed}")
        self._validate_recipe()

    def _validate_recipe(self) -> None:
        if self.teacher_loss not in TEACHER_LOSSES:
            raise DarkGANError(f"train.teacher_loss must be one of {', '.join(TEACHER_LOSSES)}, got {self.teacher_loss!r}")
        if not self.teacher_white_eps > 0:
            raise DarkGANError(f"train.teacher_white_eps must be > 0, got {self.teacher_white_eps}")
        bad = [t for t in self.teacher_transforms if t not in TEACHER_TRANSFORMS]
        if bad:
            raise DarkGANError(f"train.teacher_transforms: unknown {bad} (known: {', '.join(TEACHER_TRANSFORMS)})")
        if self.trainable not in TRAINABLE:
            raise DarkGANError(f"train.trainable must be one of {', '.join(TRAINABLE)}, got {self.trainable!r}")
        if self.frozen_blocks and self.trainable != "all":
            raise DarkGANError(f"train.frozen_blocks={self.frozen_blocks} needs train.trainable=all "
                               f"(got {self.trainable!r}, which freezes G already)")
        if self.teacher_gradient not in TEACHER_GRADIENTS:
            raise DarkGANError(f"train.teacher_gradient must be one of {', '.join(TEACHER_GRADIENTS)}, "
                               f"got {self.teacher_gradient!r}")
        if self.attr_loss not in ATTR_LOSSES:
            raise DarkGANError(f"train.attr_loss must be one of {', '.join(ATTR_LOSSES)}, got {self.attr_loss!r}")
        if self.output_terms_from_scale < -1:
            raise DarkGANError(f"train.output_terms_from_scale must be -1 (last scale) or a scale, "
                               f"got {self.output_terms_from_scale}")
        for k, v in self.teacher_attribute_weights.items():
            _check_number(f"train.teacher_attribute_weights[{k!r}]", v, ">= 0", lambda v: v >= 0)
        if self.critic_warmup < 0:
            raise DarkGANError(f"train.critic_warmup must be >= 0, got {self.critic_warmup}")
        if self.precision not in PRECISIONS:
            raise DarkGANError(f"train.precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise DarkGANError(f"train.memory_format must be one of {', '.join(MEMORY_FORMATS)}, "
                               f"got {self.memory_format!r}")
        _check_number("train.consistency_fraction", self.consistency_fraction, "in (0, 1]", lambda v: 0 < v <= 1)
        _check_number("train.increment_fraction", self.increment_fraction, "in (0, 1]", lambda v: 0 < v <= 1)
        _check_number("train.increment_delta", self.increment_delta, "> 0", lambda v: v > 0)
        _check_number("train.envelope_quantile", self.envelope_quantile, "in (0, 0.5)", lambda v: 0 < v < 0.5)
        if not 0 <= self.envelope_drop_steps <= ENVELOPE_STEPS:
            raise DarkGANError(f"train.envelope_drop_steps must be in [0, {ENVELOPE_STEPS}], got {self.envelope_drop_steps}")
        if not 0 <= self.envelope_match_steps <= ENVELOPE_STEPS:
            raise DarkGANError(f"train.envelope_match_steps must be in [0, {ENVELOPE_STEPS}], got {self.envelope_match_steps}")
        if not 0 <= self.envelope_match_tail_steps <= ENVELOPE_STEPS:
            raise DarkGANError(f"train.envelope_match_tail_steps must be in [0, {ENVELOPE_STEPS}], "
                               f"got {self.envelope_match_tail_steps}")
        if self.envelope_match_reference not in ENVELOPE_MATCH_REFERENCES:
            raise DarkGANError(f"train.envelope_match_reference must be one of {', '.join(ENVELOPE_MATCH_REFERENCES)}, "
                               f"got {self.envelope_match_reference!r}")
        edges = list(self.envelope_bands_hz)
        for hz in edges:
            _check_number("train.envelope_bands_hz", hz, "in (20, 8000) Hz", lambda v: 20 < v < 8000)
        if any(b <= a for a, b in zip(edges, edges[1:])):
            raise DarkGANError(f"train.envelope_bands_hz must be increasing, got {edges}")
        if self.retrieval_negatives < 1:
            raise DarkGANError(f"train.retrieval_negatives must be >= 1, got {self.retrieval_negatives}")
        _check_number("train.retrieval_scale", self.retrieval_scale, "> 0", lambda v: v > 0)
        _check_number("train.steer_fraction", self.steer_fraction, "in (0, 1]", lambda v: 0 < v <= 1)
        if self.steer_loss not in STEER_LOSSES:
            raise DarkGANError(f"train.steer_loss must be one of {', '.join(STEER_LOSSES)}, got {self.steer_loss!r}")
        _check_number("train.partial_fraction", self.partial_fraction, "in (0, 1]", lambda v: 0 < v <= 1)
        if self.partial_loss not in STEER_LOSSES:
            raise DarkGANError(f"train.partial_loss must be one of {', '.join(STEER_LOSSES)}, "
                               f"got {self.partial_loss!r}")
        _check_number("train.partial_ridge", self.partial_ridge, ">= 0", lambda v: v >= 0)
        _check_number("train.partial_gain", self.partial_gain, "> 0", lambda v: v > 0)
        _check_number("train.profile_ridge", self.profile_ridge, ">= 0", lambda v: v >= 0)
        _check_number("train.profile_band", self.profile_band, "> 0", lambda v: v > 0)
        if self.profile_reference not in PROFILE_REFERENCES:
            raise DarkGANError(f"train.profile_reference must be one of {', '.join(PROFILE_REFERENCES)}, "
                               f"got {self.profile_reference!r}")
        _check_number("train.tail_from_s", self.tail_from_s, "in [0.05, 0.75] s", lambda v: 0.05 <= v <= 0.75)
        for key in ("g_anchor", "g_anchor_body"):
            if self.loss_weights.get(key, 0.0) > 0 and not str(self.anchor_generator).strip():
                raise DarkGANError(f"train.loss_weights.{key} > 0 needs train.anchor_generator (a generator "
                                   "checkpoint whose notes the run keeps)")
        if not (isinstance(self.anchor_free_frames, int) and 1 <= self.anchor_free_frames <= 31):
            raise DarkGANError(f"train.anchor_free_frames must be an integer in [1, 31] (frames of 32), "
                               f"got {self.anchor_free_frames!r}")
        if self.f0_reference not in F0_REFERENCES:
            raise DarkGANError(f"train.f0_reference must be one of {', '.join(F0_REFERENCES)}, "
                               f"got {self.f0_reference!r}")
        if self.consistency_max_offset < 1:
            raise DarkGANError(f"train.consistency_max_offset must be >= 1 semitone, got {self.consistency_max_offset}")
        self._validate_metrics()

    def _validate_metrics(self) -> None:
        bad = [m for m in self.checkpoint_metrics if m not in CHECKPOINT_METRICS]
        if bad:
            raise DarkGANError(f"train.checkpoint_metrics: unknown {bad} (known: {', '.join(CHECKPOINT_METRICS)})")
        if self.checkpoint_metrics and self.metric_notes < 2:
            raise DarkGANError(f"train.metric_notes must be >= 2, got {self.metric_notes}")
        if self.best_metric and self.best_metric not in self.checkpoint_metrics:
            raise DarkGANError(f"train.best_metric {self.best_metric!r} must be one of train.checkpoint_metrics "
                               f"{list(self.checkpoint_metrics)} (or empty: no best checkpoint)")


def _check_number(key: str, value: float, need: str, ok) -> None:
    """Raise a one-line :class:`DarkGANError` naming ``key`` unless ``value`` is a finite number
    with ``ok(value)`` (``need`` says what is wanted, e.g. ``"> 0"``)."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and ok(value)):
        raise DarkGANError(f"{key} must be a finite number {need}, got {value!r}")


@dataclass
class Config:
    """A full configuration: ``model`` + ``train``, with the preset name and overrides it came from."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str = "paper"
    overrides: list[str] = field(default_factory=list)

    def validate(self) -> "Config":
        self.model.validate()
        self.train.validate(self.model.n_scales)
        if self.train.trainable != "all" and self.model.mapping_layers < 2:
            raise DarkGANError(f"train.trainable={self.train.trainable} needs an attribute mapping "
                               f"(model.mapping_layers >= 2)")
        return self

    def to_dict(self) -> dict:
        """JSON-ready dict (tuples become lists)."""
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        """Inverse of :meth:`to_dict`; ``d`` may hold other keys (a checkpoint's ``config.json``),
        only ``model``, ``train``, ``preset`` and ``overrides`` are read. Missing fields take their
        defaults (a configuration saved before a field existed).

        Raises:
            DarkGANError: an unknown or mistyped field, named (``unknown key 'model.chanels'``).
        """
        return config_from_dict(cls, {"model": d.get("model", {}), "train": d.get("train", {}),
                                      "preset": str(d.get("preset", "custom")),
                                      "overrides": list(d.get("overrides", []))})

    def format(self) -> str:
        """Human-readable, sorted ``section.key = value`` lines (``darkgan train --print-config``)."""
        lines = [f"# preset: {self.preset}"]
        if self.overrides:
            lines.append(f"# overrides: {' '.join(self.overrides)}")
        d = self.to_dict()
        for section in ("model", "train"):
            for k, v in d[section].items():
                if isinstance(v, dict):
                    for kk, vv in v.items():
                        lines.append(f"{section}.{k}.{kk} = {json.dumps(vv)}")
                else:
                    lines.append(f"{section}.{k} = {json.dumps(v)}")
        t = self.train
        lines.append(f"# total steps: {t.total_steps:,}; scale shapes: "
                     + ", ".join(f"{h}x{w}" for h, w in (self.model.scale_shape(s) for s in range(self.model.n_scales))))
        return "\n".join(lines)


def _per_scale(cfg: Config) -> dict[str, int]:
    """The per-scale fields (``tuple[X, ...]`` of numbers), each ``n_scales`` long: a scalar given
    for one of them in an override is repeated for every scale."""
    out = {}
    for section in ("model", "train"):
        for f in dataclasses.fields(getattr(cfg, section)):
            tp = typing.get_type_hints(type(getattr(cfg, section)))[f.name]
            if is_list_of(tp) and not is_list_of(tp, str):
                out[f"{section}.{f.name}"] = cfg.model.n_scales
    return out


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Return a copy of ``cfg`` with ``section.field=value`` overrides applied (and validated).

    Examples: ``train.lr=5e-4``, ``train.batch_size=[8,8,8,8,8,8]`` (or ``train.batch_size=8``
    for every scale), ``model.channels=[32,32,32,16,16,8]``, ``train.loss_weights.g_attr=5``,
    ``train.ema=false``, ``train.betas=(0.5,0.9)``, ``train.teacher_transforms=shift,noise``.
    Parsing and typing are :func:`darkgan.utils.config.apply_overrides`'s; the overrides apply
    in order (a scalar for a per-scale field is repeated for the scales the model has then).

    Raises:
        DarkGANError: malformed override, unknown section or key (the message lists the known
            keys), a value of the wrong type, or an inconsistent result (``validate``).
    """
    for item in overrides:
        if item.split(".", 1)[0].strip() not in ("model", "train") or "." not in item.split("=", 1)[0]:
            raise DarkGANError(f"override {item!r}: key must start with 'model.' or 'train.'")
        cfg = _apply(cfg, [item], per_item=_per_scale(cfg))
    cfg = copy.deepcopy(cfg)
    cfg.overrides = list(cfg.overrides) + list(overrides)
    return cfg.validate()


# ---------------------------------------------------------------------------------- presets

def _paper() -> Config:
    return Config(ModelConfig(), TrainConfig(), preset="paper")


def _small() -> Config:
    # Reasoning and measurements in docs/training.md. The paper model spends 94 % of its compute
    # at 256x32 and above; on 2 CPU cores one paper step at the last scale takes minutes. small
    # keeps the 6 scales and the full 2 x 1024 x 32 output with narrow high-resolution scales
    # (32-16-8 maps: they only refine the frequency axis), 64-48 maps at the cheap low-resolution
    # scales where pitch and coarse timbre are learnt, batches of 8 at the expensive scales, and
    # ~15.5k steps: ~3.7 h measured on 2 Xeon cores (benchmarks/bench_train.py).
    model = ModelConfig(channels=(64, 64, 48, 32, 16, 8))
    train = TrainConfig(
        iterations=(4000, 4000, 3000, 2500, 2000, 2000),
        fade_in_jumps=(0, 25, 25, 25, 25, 25),
        alpha_jump_size=16,
        batch_size=(16, 16, 12, 8, 8, 8),
        checkpoint_every=500,
        log_every=25,
        sample_every=1000,
    )
    return Config(model, train, preset="small")


def _small_control() -> Config:
    # `small` with the word-control recipe of issue 15, chosen by benchmarks/control_ablation.py
    # (docs/training.md, "From scratch: which conditioning a generator learns"): standardised
    # logits in, the attribute head in standardised logit units, the teacher in the loop from
    # 128x16, f0 at the last scale (row H: the best YAMNet rho and FAD; the projection critic,
    # row F, fits the teacher more and YAMNet less).
    cfg = _small()
    cfg.model.attr_input = "std_logit"
    cfg.train.output_terms_from_scale, cfg.train.attr_loss = 2, "std_mse"
    cfg.train.loss_weights.update(g_teacher=1.0, g_f0=0.5)
    cfg.preset = "small-control"
    return cfg


def _tiny() -> Config:
    model = ModelConfig(latent_dim=8, channels=(8, 8, 8, 8, 4, 4), minibatch_std_group=2)
    train = TrainConfig(
        iterations=(2, 2, 2, 2, 2, 2),
        fade_in_jumps=(0, 1, 1, 1, 1, 1),
        alpha_jump_size=1,
        batch_size=(4, 4, 4, 4, 4, 4),
        ema_decay=0.9,
        checkpoint_every=1000,
        log_every=4,
        sample_every=0,
        checkpoint_metrics=(),
        best_metric="",
    )
    return Config(model, train, preset="tiny")


#: Preset name -> factory of a fresh :class:`Config`.
PRESETS = {"paper": _paper, "small": _small, "small-control": _small_control, "tiny": _tiny}


def get_preset(name: str) -> Config:
    """A fresh copy of preset ``name`` (``paper``, ``small``, ``small-control``, ``tiny``).

    Raises:
        DarkGANError: unknown preset (the message lists the known ones).
    """
    try:
        return PRESETS[name]().validate()
    except KeyError:
        raise DarkGANError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
