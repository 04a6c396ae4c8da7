"""SING's networks (paper Sec. 4, Fig. 1): the LSTM sequence generator, the convolutional decoder
with an overlap-add transposed convolution, and the encoder of the autoencoder stage (Sec. 4.3).

Lengths (defaults of :class:`~darkgan.sing.config.SingModelConfig`): a note of 64000 samples is
padded with ``left_pad`` = 4 x 256 + 768 = 1792 samples before and to 68608 samples in all; the
encoder's strided convolution (kernel 1024, stride 256) gives N = 265 frames. The decoder's
context convolution (kernel 9, no padding) leaves 257 frames, the transposed convolution
(kernel 1024, stride 256) 66560 samples, of which the first and last 768 are dropped (where fewer
than four filters overlap); sample ``u`` of what is left is sample ``u`` of the note.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from darkgan.sing.config import SingModelConfig


def squared_hann(kernel: int) -> torch.Tensor:
    """``[kernel]`` squared periodic Hann window scaled so that copies shifted by ``kernel / 4``
    sum to 1 (the paper's overlap-add property, Sec. 4.2; the raw sum is 1.5)."""
    w = torch.hann_window(kernel, periodic=True) ** 2
    return w / w.reshape(4, kernel // 4).sum(0).mean()


class WindowedConv1d(nn.Conv1d):
    """Strided convolution whose filters are multiplied by :func:`squared_hann` (the encoder's
    first layer, Sec. 4.3). ``[B, C_in, T] -> [B, C_out, (T - K) // S + 1]``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__(c_in, c_out, kernel, stride)
        self.register_buffer("window", squared_hann(kernel), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv1d(x, self.weight * self.window, self.bias, self.stride)


class WindowedConvTranspose1d(nn.ConvTranspose1d):
    """Transposed convolution with squared-Hann filters: an overlap-add of learned frames
    (Sec. 4.2). ``[B, C_in, M] -> [B, C_out, (M - 1) * S + K]``."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int):
        super().__init__(c_in, c_out, kernel, stride)
        self.register_buffer("window", squared_hann(kernel), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv_transpose1d(x, self.weight * self.window, self.bias, self.stride)


class Decoder(nn.Module):
    """Frames -> waveform (Sec. 4.2): conv K=9 + ReLU, ``rewrite_layers`` x (1x1 conv + ReLU),
    then the windowed transposed convolution (K = 1024, S = 256, 1 channel).

    ``forward(s [B, D, M]) -> [B, (M - context - 2) * S]`` (the fully overlapped part; 65024
    samples for M = 265, of which the first 64000 are the note).
    """

    def __init__(self, m: SingModelConfig):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv1d(m.dimension, m.channels, m.context_size), nn.ReLU()]
        for _ in range(m.rewrite_layers):
            layers += [nn.Conv1d(m.channels, m.channels, 1), nn.ReLU()]
        self.layers = nn.Sequential(*layers)
        self.overlap_add = WindowedConvTranspose1d(m.channels, 1, m.kernel_size, m.stride)
        self.trim = m.kernel_size - m.stride

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        y = self.overlap_add(self.layers(s))[:, 0]
        return y[:, self.trim:y.shape[1] - self.trim]


class Encoder(nn.Module):
    """Waveform -> frames (Sec. 4.3): windowed conv K = 1024, S = 256 + ReLU, ``rewrite_layers`` x
    (1x1 + ReLU), then a 1x1 conv to D channels without non-linearity.

    ``forward(x [B, T]) -> [B, D, (T - K) // S + 1]`` (``T`` = a note already padded by
    :func:`pad_note`: 68608 samples -> 265 frames).
    """

    def __init__(self, m: SingModelConfig):
        super().__init__()
        layers: list[nn.Module] = [WindowedConv1d(1, m.channels, m.kernel_size, m.stride), nn.ReLU()]
        for _ in range(m.rewrite_layers):
            layers += [nn.Conv1d(m.channels, m.channels, 1), nn.ReLU()]
        layers.append(nn.Conv1d(m.channels, m.dimension, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x[:, None])


def pad_note(x: torch.Tensor, m: SingModelConfig) -> torch.Tensor:
    """``[B, n_samples] -> [B, padded_samples]``: ``left_pad`` zeros before, zeros after."""
    return F.pad(x, (m.left_pad, m.padded_samples - m.left_pad - x.shape[-1]))


class SequenceGenerator(nn.Module):
    """The LSTM sequence generator (Sec. 4.1): at every step the concatenation of the velocity,
    instrument, pitch and time embeddings (2 + 16 + 8 + 4 by default; no time embedding when
    ``time_embedding`` is off) enters a ``lstm_layers``-layer LSTM whose last hidden state goes
    through a linear layer to D.

    ``forward(velocity [B], instrument [B], pitch [B] (long indices), start=0, length=N,
    state=None) -> (s [B, D, length], state)``: steps ``start .. start + length - 1``; ``state``
    carries the LSTM's (h, c) between truncated-BPTT windows.
    """

    def __init__(self, m: SingModelConfig, n_velocities: int, n_instruments: int, n_pitches: int):
        super().__init__()
        self.velocity = nn.Embedding(n_velocities, m.velocity_dim)
        self.instrument = nn.Embedding(n_instruments, m.instrument_dim)
        self.pitch = nn.Embedding(n_pitches, m.pitch_dim)
        self.time = nn.Embedding(m.n_frames, m.time_dim) if m.time_embedding else None
        n_in = m.velocity_dim + m.instrument_dim + m.pitch_dim + (m.time_dim if m.time_embedding else 0)
        self.lstm = nn.LSTM(n_in, m.lstm_hidden, m.lstm_layers, batch_first=True)
        self.output = nn.Linear(m.lstm_hidden, m.dimension)
        self.n_frames = m.n_frames

    def forward(self, velocity, instrument, pitch, start: int = 0, length: int | None = None, state=None):
        length = self.n_frames - start if length is None else length
        b = velocity.shape[0]
        parts = [self.velocity(velocity), self.instrument(instrument), self.pitch(pitch)]
        static = torch.cat(parts, dim=1)[:, None].expand(b, length, -1)
        if self.time is not None:
            t = torch.arange(start, start + length, device=velocity.device)
            static = torch.cat([static, self.time(t)[None].expand(b, -1, -1)], dim=2)
        out, state = self.lstm(static, state)
        return self.output(out).transpose(1, 2), state


class Sing(nn.Module):
    """The whole model: ``generator`` (LSTM), ``decoder`` and the stage-1 ``encoder``.

    Args:
        m: architecture; n_velocities, n_instruments, n_pitches: look-up table sizes.
    """

    def __init__(self, m: SingModelConfig, n_velocities: int, n_instruments: int, n_pitches: int):
        super().__init__()
        self.m = m
        self.generator = SequenceGenerator(m, n_velocities, n_instruments, n_pitches)
        self.decoder = Decoder(m)
        self.encoder = Encoder(m)

    def forward(self, velocity, instrument, pitch) -> torch.Tensor:
        """``(velocity, instrument, pitch) [B] long -> waveform [B, n_samples]`` (16 kHz, the
        data's level: the decoder's output divided by ``m.gain``)."""
        s, _ = self.generator(velocity, instrument, pitch)
        return self.decoder(s)[:, :self.m.n_samples] / self.m.gain

    def autoencode(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, n_samples] -> [B, n_samples]``: decoder(encoder(x)) at the data's level
        (stage 1, Table 1's rows)."""
        return self.decoder(self.encoder(pad_note(x * self.m.gain, self.m)))[:, :self.m.n_samples] / self.m.gain
