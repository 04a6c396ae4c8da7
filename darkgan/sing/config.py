"""SING configurations: typed dataclasses and named presets (paper Sec. 4, 5).

Presets (:data:`PRESETS`): ``paper`` (4096 decoder channels, 3x1024 LSTM, D = 128, N = 265,
batch 256, Adam 3e-4), ``cpu`` (sized to train in about two hours on one CPU core, see
docs/sing.md for the measured step times) and ``tiny`` (tests). The Table 1 variants are settings:
``train.loss=wav`` (waveform MSE, Eq. 3.1, instead of the spectral loss, Eq. 3.3) and
``model.time_embedding=false`` (no z_T).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from darkgan.errors import DarkGANError
from darkgan.utils.config import apply_overrides, config_from_dict, config_to_dict

LOSSES = ("spectral", "wav")


@dataclass
class SingModelConfig:
    """Architecture (paper Sec. 4, Fig. 1).

    Attributes:
        channels: decoder/encoder channels C (paper 4096).
        dimension: D, the frame embedding size (paper 128).
        lstm_hidden: LSTM units per layer (paper 1024); lstm_layers: 3.
        velocity_dim, instrument_dim, pitch_dim, time_dim: look-up table sizes (2, 16, 8, 4).
        time_embedding: feed z_T (False = the "no time embedding" row of Table 1).
        n_frames: N, LSTM steps per note (265 for 4 s at 16 kHz with the sizes below).
        kernel_size, stride: of the overlap-add transposed convolution (1024, 256 samples).
        context_size: kernel of the decoder's first convolution (9 frames).
        rewrite_layers: 1x1 convolutions after it (2).
        n_samples: samples per note (64000 = 4 s at 16 kHz).
        gain: the level the model works at: notes are multiplied by ``gain`` before the encoder
            and the losses, and generated notes divided by it. The spectral loss's epsilon = 1
            was tuned on NSynth's level (paper: 1); our rendered notes peak at ~0.1 (median), where
            only ~1.6 % of the STFT bins exceed epsilon and silence scores close to a trained
            autoencoder, so the ``cpu`` preset uses 8 (median peak ~0.8).
    """

    channels: int = 4096
    dimension: int = 128
    lstm_hidden: int = 1024
    lstm_layers: int = 3
    velocity_dim: int = 2
    instrument_dim: int = 16
    pitch_dim: int = 8
    time_dim: int = 4
    time_embedding: bool = True
    n_frames: int = 265
    kernel_size: int = 1024
    stride: int = 256
    context_size: int = 9
    rewrite_layers: int = 2
    n_samples: int = 64000
    gain: float = 1.0

    @property
    def left_pad(self) -> int:
        """Samples of padding before the note so that decoder output sample 0 is note sample 0
        with a full overlap-add (see :mod:`darkgan.sing.model`)."""
        return (self.context_size // 2) * self.stride + (self.kernel_size - self.stride)

    @property
    def padded_samples(self) -> int:
        """Encoder input length: N frames of ``kernel_size`` every ``stride`` samples."""
        return (self.n_frames - 1) * self.stride + self.kernel_size

    def validate(self) -> SingModelConfig:
        """Raises DarkGANError: non-positive sizes, a stride that is not kernel/4 (the squared Hann
        overlap-add), an even context, or N too small for ``n_samples``."""
        for k in ("channels", "dimension", "lstm_hidden", "lstm_layers", "n_frames", "n_samples"):
            if getattr(self, k) < 1:
                raise DarkGANError(f"model.{k} must be >= 1, got {getattr(self, k)}")
        if not self.gain > 0:
            raise DarkGANError(f"model.gain must be > 0, got {self.gain}")
        if self.kernel_size != 4 * self.stride:
            raise DarkGANError(f"model.kernel_size must be 4 x model.stride (squared-Hann overlap-add), "
                               f"got {self.kernel_size} and {self.stride}")
        if self.context_size % 2 != 1:
            raise DarkGANError(f"model.context_size must be odd, got {self.context_size}")
        need = min_frames(self.n_samples, self.kernel_size, self.stride, self.context_size)
        if self.n_frames < need:
            raise DarkGANError(f"model.n_frames={self.n_frames} is too few for {self.n_samples} samples "
                               f"(needs >= {need})")
        return self


def min_frames(n_samples: int, kernel: int, stride: int, context: int) -> int:
    """Fewest LSTM steps N whose decoded, fully overlapped output covers ``n_samples``:
    ``(N - context) * stride + 2 * stride - kernel >= n_samples`` (265 -> 65024 >= 64000)."""
    return context - 2 + -(-(n_samples + kernel) // stride)


@dataclass
class SingTrainConfig:
    """Training in the paper's three stages (Sec. 4.3).

    Attributes:
        loss: ``"spectral"`` (Eq. 3.3) or ``"wav"`` (Eq. 3.1) for stages 1 and 3.
        ae_steps, lstm_steps, e2e_steps: optimiser steps of the autoencoder, the LSTM fitted to
            the encoder's embeddings (one step = one truncated-BPTT window) and the end-to-end
            stage (paper: 50, 50 and 20 epochs).
        batch_size, lstm_batch_size: notes per step (paper 256 for every stage).
        lr: Adam learning rate (paper 3e-4).
        tbptt: truncated-BPTT window of stage 2 in LSTM steps (paper 32).
        stft_n_fft, stft_hop, stft_eps: the spectral loss's STFT (1024, 256, epsilon = 1).
        crop_frames: stage-1 training crops of this many encoder frames (0 = whole notes); a
            fully convolutional autoencoder sees the same maths on crops, only fewer samples.
        grad_clip: max gradient norm (0 = off).
        checkpoint_every: steps between checkpoints; log_every: steps between TensorBoard scalars.
        seed: RNG seed (data order, initialisation).
    """

    loss: str = "spectral"
    ae_steps: int = 2000
    lstm_steps: int = 2000
    e2e_steps: int = 2000
    batch_size: int = 256
    lstm_batch_size: int = 256
    lr: float = 3e-4
    tbptt: int = 32
    stft_n_fft: int = 1024
    stft_hop: int = 256
    stft_eps: float = 1.0
    crop_frames: int = 0
    grad_clip: float = 0.0
    checkpoint_every: int = 200
    log_every: int = 20
    seed: int = 0

    def validate(self) -> SingTrainConfig:
        """Raises DarkGANError: unknown loss, negative step counts, non-positive sizes or lr."""
        if self.loss not in LOSSES:
            raise DarkGANError(f"train.loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for k in ("ae_steps", "lstm_steps", "e2e_steps", "crop_frames"):
            if getattr(self, k) < 0:
                raise DarkGANError(f"train.{k} must be >= 0, got {getattr(self, k)}")
        for k in ("batch_size", "lstm_batch_size", "tbptt", "stft_n_fft", "stft_hop", "checkpoint_every", "log_every"):
            if getattr(self, k) < 1:
                raise DarkGANError(f"train.{k} must be >= 1, got {getattr(self, k)}")
        if not self.lr > 0 or not self.stft_eps > 0:
            raise DarkGANError(f"train.lr and train.stft_eps must be > 0, got {self.lr}, {self.stft_eps}")
        return self


@dataclass
class SingConfig:
    """A whole SING configuration: preset name, overrides applied, model and training."""

    preset: str = "paper"
    overrides: tuple[str, ...] = ()
    model: SingModelConfig = field(default_factory=SingModelConfig)
    train: SingTrainConfig = field(default_factory=SingTrainConfig)

    def validate(self) -> SingConfig:
        self.model.validate()
        self.train.validate()
        return self

    def to_dict(self) -> dict:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SingConfig:
        return config_from_dict(cls, {k: d[k] for k in ("preset", "overrides", "model", "train") if k in d})

    def format(self) -> str:
        return json.dumps(self.to_dict(), indent=2)


def _paper() -> SingConfig:
    # the paper's 50 / 50 / 20 epochs at batch 256, counted on our 56,144-note default dataset
    return SingConfig(preset="paper", train=SingTrainConfig(ae_steps=11_000, lstm_steps=11_000, e2e_steps=4_400))


def _cpu() -> SingConfig:
    m = SingModelConfig(channels=256, dimension=64, lstm_hidden=256, gain=8.0)
    t = SingTrainConfig(ae_steps=8000, lstm_steps=1000, e2e_steps=7000, batch_size=8, lstm_batch_size=32,
                        lr=3e-4, crop_frames=40, checkpoint_every=100, log_every=10)
    return SingConfig(preset="cpu", model=m, train=t)


def _tiny() -> SingConfig:
    m = SingModelConfig(channels=16, dimension=8, lstm_hidden=16, lstm_layers=2, n_samples=8000, n_frames=44,
                        gain=8.0)
    t = SingTrainConfig(ae_steps=4, lstm_steps=4, e2e_steps=4, batch_size=4, lstm_batch_size=4, lr=1e-3,
                        tbptt=16, checkpoint_every=3, log_every=1)
    return SingConfig(preset="tiny", model=m, train=t)


#: Named presets: name -> factory of a fresh :class:`SingConfig`.
PRESETS = {"paper": _paper, "cpu": _cpu, "tiny": _tiny}


def get_config(preset: str = "cpu", overrides: list[str] | tuple[str, ...] = ()) -> SingConfig:
    """The preset with ``key=value`` overrides applied and validated.

    Raises:
        DarkGANError: unknown preset (lists them), bad override or invalid value.
    """
    if preset not in PRESETS:
        raise DarkGANError(f"unknown SING preset {preset!r}; presets: {', '.join(PRESETS)}")
    cfg = apply_overrides(PRESETS[preset](), list(overrides))
    cfg.overrides = tuple(cfg.overrides) + tuple(overrides)
    return cfg.validate()
