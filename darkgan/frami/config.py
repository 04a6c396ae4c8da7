"""Typed configurations of the FRAMI family (stdlib dataclasses + :mod:`darkgan.utils.config`).

Presets (:data:`PRESETS`, name -> factory): ``tiny`` (tests, seconds), ``small`` (the first
CPU measurement of ``docs/frami.md``) and ``audioset`` (a student of the EfficientAT mn04 teacher).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from darkgan.errors import DarkGANError


@dataclass
class NetConfig:
    """A ResNet-like classifier over log-mel spectrograms ``[B, 1, n_mels, T]``.

    Attributes:
        channels: channels of each residual stage (the stem has ``channels[0]``).
        blocks: residual blocks per stage (two 3x3 convolutions + batch norm each).
        embedding: size of the utterance-level hidden state after statistics pooling.
        n_classes: classifier outputs (instrument families: 11; set to the AudioSet teacher's 527
            by ``distill-tagger --teacher efficientat``).
        input_pool: average-pool the input by this factor in frequency and time first (1 = off;
            2 makes a student on EfficientAT's ``[B, 1, 128, 100]`` log-mel see ``[B, 1, 64, 50]``).
    """

    channels: tuple[int, ...] = (16, 32, 64)
    blocks: tuple[int, ...] = (2, 2, 2)
    embedding: int = 128
    n_classes: int = 11
    input_pool: int = 1

    def validate(self) -> "NetConfig":
        if not self.channels or len(self.channels) != len(self.blocks):
            raise DarkGANError(f"net.channels {self.channels} and net.blocks {self.blocks} need the same non-zero length")
        if min(self.channels) < 1 or min(self.blocks) < 1 or self.embedding < 1 or self.n_classes < 2:
            raise DarkGANError("net: channels, blocks and embedding must be >= 1 and n_classes >= 2")
        if self.input_pool < 1:
            raise DarkGANError(f"net.input_pool must be >= 1, got {self.input_pool}")
        return self


#: How inverted samples are parameterised (:class:`InversionConfig` ``synthesizer``).
SYNTHESIZERS = ("auto", "pixels", "generator")


@dataclass
class InversionConfig:
    """Model inversion into normalised log-mel spectrograms (ADI, FRAMI).

    Attributes:
        n_samples: synthesized samples in all (the sample budget).
        batch_size: samples optimised together (one BN-statistics batch).
        steps: Adam steps per batch.
        lr: Adam learning rate on the spectrogram pixels.
        w_bn: weight of the BN-statistics matching term (DeepInversion Eq. 4); 0.05 (1.0 left the
            cross-entropy unmet: 9% of samples classified as their target after 120 steps vs 91% at 30).
        w_ce: weight of the cross-entropy to the target classes.
        w_tv: weight of the total-variation prior (squared differences, time and frequency).
        w_l2: weight of the l2 prior.
        w_fic: weight of FRAMI's L_fic (Eq. 2); 0 = ADI. 0.1: on the family task at 480 samples (3
            seeds) 0.5 gave a student 5 points lower (17.1 vs 22.1 %, docs/frami.md).
        use_finv: add T_finv (Eq. 1) to the positive logit of L_fic (Table 3's ablation switch).
        chunks: K, time chunks per sample for T_finv.
        tau: temperature of L_fic.
        n_negatives: negatives drawn from the memory bank per step (plus the rest of the batch).
        rounds: interleave inversion and distillation (the paper's loop, as in contrastive model
            inversion): the samples are synthesized in this many rounds, each followed by its
            share of ``train.epochs`` on the memory so far; 1 = synthesize everything, then distil.
        w_adv: weight of ADI's adaptive competition term ``1 - JS(teacher, student)`` on the
            samples (Yin et al. 2020, Eq. 8: samples where the student still disagrees); needs a
            student in the loop, so ``rounds >= 2`` (used from the second round on).
        first_bn_mult: multiplier of the first BatchNorm layer's statistics term (DeepInversion's
            reference code: 10; 1 = every layer weighted alike).
        jitter: each step the batch is rolled along time by a random shift in ``[-jitter, jitter]``
            frames before the teacher sees it (DeepInversion's random jitter, in time only: a
            roll in frequency would wrap high bands onto low ones); 0 = off.
        cosine: anneal the Adam learning rate to 0 over ``steps`` with a cosine (DeepInversion).
        init_envelope: a spectral-envelope prior at the start: each sample's initial noise gets a
            random smooth per-band offset (the first 8 DCT-II components over the mel bands) whose
            standard deviation over bands is this (normalised log-mel units; the rendered notes'
            per-band means spread 0.41, plain noise's 0.04: docs/frami.md); 0 = plain noise.
        synthesizer: ``pixels`` (each batch's spectrograms optimised directly, DeepInversion),
            ``generator`` (codes ``z`` and a convolutional generator optimised, the generator kept
            across batches: contrastive model inversion, Fang et al. 2021, which FRAMI extends) or
            ``auto``: each method as published, ``pixels`` for ADI and ``generator`` for FRAMI
            (on the family task, seeds 0-2, FRAMI's student 26.3 % with the generator against
            22.1 % with pixels; 27.0 % over 5 seeds, ADI 21.8 %: docs/frami.md).
        g_lr: Adam learning rate of the generator's weights (``generator``; CMI: 1e-3, its fast
            variant with few steps per batch 2e-3 to 5e-3).
        z_lr: Adam learning rate of the codes ``z`` (``generator``; the fast variant: 0.01-0.015).
        z_dim: size of the generator's input code.
        g_channels: channels C of the generator (2C, then C); 32: a 48-sample step costs 1.6x a
            ``pixels`` step (64: 3x) on the ``small`` teacher.
        g_reset_input: re-draw the generator's input layer before each batch (the fast variant's
            ``reset_l0``: new batches differ from the last one while the rest is kept).
    """

    n_samples: int = 256
    batch_size: int = 64
    steps: int = 60
    lr: float = 0.1
    w_bn: float = 0.05
    w_ce: float = 1.0
    w_tv: float = 0.05
    w_l2: float = 0.001
    w_fic: float = 0.1
    use_finv: bool = True
    chunks: int = 4
    tau: float = 0.1
    n_negatives: int = 256
    rounds: int = 1
    w_adv: float = 0.0
    first_bn_mult: float = 1.0
    jitter: int = 0
    cosine: bool = False
    init_envelope: float = 0.0
    synthesizer: str = "auto"
    g_lr: float = 3e-3
    z_lr: float = 0.01
    z_dim: int = 256
    g_channels: int = 32
    g_reset_input: bool = True

    def validate(self) -> "InversionConfig":
        if self.synthesizer not in SYNTHESIZERS:
            raise DarkGANError(f"inversion.synthesizer must be one of {', '.join(SYNTHESIZERS)}, got {self.synthesizer!r}")
        if self.g_lr <= 0 or self.z_lr <= 0 or self.z_dim < 1 or self.g_channels < 1:
            raise DarkGANError(f"inversion: g_lr ({self.g_lr}) and z_lr ({self.z_lr}) must be > 0, "
                               f"z_dim ({self.z_dim}) and g_channels ({self.g_channels}) >= 1")
        if self.n_samples < 1 or self.batch_size < 2 or self.steps < 1:
            raise DarkGANError("inversion: n_samples >= 1, batch_size >= 2 and steps >= 1 are needed")
        if self.lr <= 0 or self.tau <= 0:
            raise DarkGANError(f"inversion: lr ({self.lr}) and tau ({self.tau}) must be > 0")
        if min(self.w_bn, self.w_ce, self.w_tv, self.w_l2, self.w_fic) < 0:
            raise DarkGANError("inversion: loss weights must be >= 0")
        if self.chunks < 2:
            raise DarkGANError(f"inversion.chunks must be >= 2 (T_finv compares chunks), got {self.chunks}")
        if not 1 <= self.rounds <= self.n_samples or self.w_adv < 0:
            raise DarkGANError(f"inversion: rounds must be in 1..n_samples and w_adv >= 0, got {self.rounds}, {self.w_adv}")
        if not 0 <= self.init_envelope <= 10:
            raise DarkGANError(f"inversion.init_envelope must be in 0..10 (log-mel units), got {self.init_envelope}")
        if self.first_bn_mult < 0 or self.jitter < 0:
            raise DarkGANError(f"inversion: first_bn_mult and jitter must be >= 0, got {self.first_bn_mult}, {self.jitter}")
        if self.w_adv > 0 and self.rounds < 2:
            raise DarkGANError("inversion.w_adv (ADI's competition with the student) needs inversion.rounds >= 2: "
                               "a student in the loop")
        return self


#: Augmentations of synthesized samples (``train.augment``), see
#: :func:`darkgan.frami.distill.augment_synthesized`.
AUGMENTATIONS = ("mixup", "shift", "mask")


@dataclass
class TrainConfig:
    """Training of a classifier on data, or of a student by KD (on data or synthesized samples).

    Attributes:
        epochs: passes over the training set (or the memory of synthesized samples).
        batch_size, lr, weight_decay: AdamW settings.
        temperature: KD temperature (Hinton et al.); the loss is scaled by T^2.
        w_kd: weight of the logits KD term (soft targets).
        w_hidden: weight of the reused hidden states (before and after pooling; 0 = off).
        max_minutes: stop (and checkpoint) after this wall time; ``--resume`` continues.
        augment: augmentations of the synthesized samples before the teacher labels them
            (data-free methods only; a subset of ``mixup``, ``shift``, ``mask``,
            :func:`darkgan.frami.distill.augment_synthesized`). Default all three since stop 40
            (docs/frami.md: +2.6 points for FRAMI, +3.0 for ADI over 5 seeds); ``[]`` gives the
            runs measured before.
    """

    epochs: int = 8
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    temperature: float = 4.0
    w_kd: float = 1.0
    w_hidden: float = 1.0
    max_minutes: float = 0.0
    augment: tuple[str, ...] = AUGMENTATIONS

    def validate(self) -> "TrainConfig":
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.temperature <= 0:
            raise DarkGANError("train: epochs, batch_size >= 1; lr, temperature > 0 are needed")
        if min(self.w_kd, self.w_hidden, self.weight_decay, self.max_minutes) < 0:
            raise DarkGANError("train: weights, weight_decay and max_minutes must be >= 0")
        bad = [k for k in self.augment if k not in AUGMENTATIONS]
        if bad:
            raise DarkGANError(f"train.augment: unknown {bad} (known: {', '.join(AUGMENTATIONS)})")
        return self


#: How notes are divided into train and test (:class:`DataConfig` ``split``).
SPLITS = ("instrument", "note")


@dataclass
class DataConfig:
    """Which notes: instrument family, on one of two splits (:data:`SPLITS`).

    Attributes:
        n_mels: mel bands of the input (librosa Slaney filterbank over the cache's STFT).
        per_class: at most this many notes of each family and split (0 = all).
        seed: subsampling seed.
        split: ``"instrument"``: the dataset's instrument-disjoint train / test splits (test
            instruments never heard in training; the hard task, teachers ~35 %); ``"note"``: the
            train split's instruments, one note in five held out for test by a hash of its name
            (:func:`darkgan.frami.features.split_rows`; seen instruments at other pitches and
            velocities, the easier task, closer to the paper's US8k / ESC-50 folds).
    """

    n_mels: int = 64
    per_class: int = 250
    seed: int = 0
    split: str = "instrument"

    def validate(self) -> "DataConfig":
        if self.n_mels < 8 or self.per_class < 0:
            raise DarkGANError(f"data: n_mels >= 8 and per_class >= 0 needed, got {self.n_mels}, {self.per_class}")
        if self.split not in SPLITS:
            raise DarkGANError(f"data.split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        return self


@dataclass
class FramiConfig:
    """The whole run: teacher/student nets, data, inversion and training settings."""

    preset: str = "small"
    teacher: NetConfig = field(default_factory=NetConfig)
    student: NetConfig = field(default_factory=lambda: NetConfig(channels=(8, 16, 32), blocks=(1, 1, 1), embedding=64))
    data: DataConfig = field(default_factory=DataConfig)
    inversion: InversionConfig = field(default_factory=InversionConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seed: int = 0

    def validate(self) -> "FramiConfig":
        for part in (self.teacher, self.student, self.data, self.inversion, self.train):
            part.validate()
        return self


def _tiny() -> FramiConfig:
    return FramiConfig(preset="tiny", teacher=NetConfig(channels=(8, 16), blocks=(1, 1), embedding=32),
                       student=NetConfig(channels=(4, 8), blocks=(1, 1), embedding=16),
                       data=DataConfig(n_mels=32, per_class=12),
                       inversion=InversionConfig(n_samples=16, batch_size=8, steps=10, n_negatives=16),
                       train=TrainConfig(epochs=2, batch_size=16))


def _audioset() -> FramiConfig:
    """Student of the AudioSet teacher (EfficientAT mn04) on its own log-mel ``[B, 1, 128, 100]``,
    pooled 2x: 57,895 parameters (mn04: 978,679 fused), 527 outputs. ``train.lr`` 1e-2: in 150
    steps of multi-label KD on 110 notes, mean rho on those notes 0.22 at 1e-2 vs 0.08 at 2e-3
    (100 steps; MSE on logits: 0.09; T=1: 0.00), ``docs/frami.md``."""
    return FramiConfig(preset="audioset",
                       student=NetConfig(channels=(8, 16, 32), blocks=(1, 1, 1), embedding=64, n_classes=527, input_pool=2),
                       data=DataConfig(per_class=100),
                       inversion=InversionConfig(n_samples=256, batch_size=32, steps=60),
                       train=TrainConfig(epochs=20, batch_size=32, lr=1e-2))


#: Named presets (name -> factory).
PRESETS = {"small": FramiConfig, "tiny": _tiny, "audioset": _audioset}


def get_preset(name: str) -> FramiConfig:
    """The preset ``name``; raises :class:`DarkGANError` naming the known ones."""
    if name not in PRESETS:
        raise DarkGANError(f"unknown FRAMI preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]()
