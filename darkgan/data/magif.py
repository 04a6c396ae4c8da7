"""The MAG-IF representation: log magnitude and instantaneous frequency of the STFT.

DarkGAN (paper, Sec. 4.3.1), after GANSynth (Engel et al., ICLR 2019, Sec. 3), models a 1 s note
at 16 kHz as a two-channel image: the log magnitude of the STFT and its instantaneous frequency
(IF), the time derivative of the unwrapped phase. With an FFT size of 2048, a Hann window of the
same length and a hop of 512 samples (75 % overlap), 16 000 samples give 32 frames; dropping the
Nyquist bin leaves 1024 frequency bins, so a note is a tensor ``[2, 1024, 32]``.

The transform is exactly invertible (up to the Nyquist bin): the phase is the cumulative sum of
the IF (times pi), and an inverse STFT with the same window restores the waveform. Everything is
batched torch, on CPU or GPU, differentiable, so generators, the exported graph and the
evaluation all share this one implementation.

Constants and shapes::

    wave   [B, 16000]        float32, 16 kHz, in [-1, 1]
    magif  [B, 2, 1024, 32]  channel 0: log(|X| + 1e-6); channel 1: IF in [-1, 1]
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from darkgan.data.constants import FADE_OUT_SAMPLES, N_SAMPLES, SAMPLE_RATE  # noqa: F401 (re-exported)

N_FFT = 2048  #: FFT size and Hann window length (samples)
HOP = 512  #: hop size (samples), 75 % overlap
N_BINS = 1024  #: frequency bins kept (the Nyquist bin is dropped)
N_FRAMES = 32  #: STFT frames of a 1 s crop (centred frames)
LOG_EPS = 1e-6  #: floor added to the magnitude before the log
#: Hz: below it nothing is heard (bins 0-2 of the 1024, 0-15.6 Hz); :func:`frame_energy_db` leaves it out
AUDIBLE_HZ = 20.0


def _window(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.hann_window(N_FFT, periodic=True, device=device, dtype=dtype)


def _check_wave(wave: torch.Tensor) -> torch.Tensor:
    if wave.dim() == 1:
        wave = wave.unsqueeze(0)
    if wave.dim() != 2 or wave.shape[-1] != N_SAMPLES:
        raise ValueError(f"expected a waveform [B, {N_SAMPLES}], got {list(wave.shape)}")
    return wave


def stft(wave: torch.Tensor) -> torch.Tensor:
    """Complex STFT of 1 s notes, Nyquist bin dropped.

    Args:
        wave: ``[B, 16000]`` (or ``[16000]``) float waveform at 16 kHz.

    Returns:
        ``[B, 1024, 32]`` complex spectrum (frequency bins 0 .. 7992.2 Hz, step 7.8125 Hz;
        frames centred every 512 samples = 32 ms).

    Raises:
        ValueError: the input is not ``[B, 16000]``.
    """
    wave = _check_wave(wave)
    spec = torch.stft(
        wave, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, window=_window(wave.device, wave.dtype),
        center=True, pad_mode="reflect", return_complex=True,
    )
    return spec[:, :N_BINS, :N_FRAMES]


def istft(spec: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`stft`: ``[B, 1024, 32]`` complex -> ``[B, 16000]`` waveform.

    The Nyquist bin is restored as zero; the window-sum normalisation of ``torch.istft``
    makes ``istft(stft(x)) == x`` up to float rounding and the dropped Nyquist bin.
    """
    if spec.dim() != 3 or spec.shape[1] != N_BINS or spec.shape[2] != N_FRAMES:
        raise ValueError(f"expected a complex spectrum [B, {N_BINS}, {N_FRAMES}], got {list(spec.shape)}")
    spec = torch.nn.functional.pad(spec, (0, 0, 0, 1))  # Nyquist bin back, as zero
    real_dtype = spec.real.dtype
    return torch.istft(
        spec, n_fft=N_FFT, hop_length=HOP, win_length=N_FFT, window=_window(spec.device, real_dtype),
        center=True, length=N_SAMPLES,
    )


def wave_to_magif(wave: torch.Tensor) -> torch.Tensor:
    """Waveform -> MAG-IF (GANSynth, Sec. 3; DarkGAN, Sec. 4.3.1).

    Args:
        wave: ``[B, 16000]`` float waveform at 16 kHz in [-1, 1] (``[16000]`` is accepted).

    Returns:
        ``[B, 2, 1024, 32]`` float32: channel 0 is ``log(|X| + 1e-6)`` (natural log of the
        linear STFT magnitude), channel 1 is the instantaneous frequency: the frame-to-frame
        phase difference wrapped to [-pi, pi) (i.e. the derivative of the unwrapped phase)
        divided by pi, in [-1, 1]. The first frame's IF is its phase / pi (phase before it = 0),
        which makes the transform exactly invertible by :func:`magif_to_wave`.

    Raises:
        ValueError: the input is not ``[B, 16000]``.
    """
    spec = stft(wave.float())
    logmag = torch.log(spec.abs() + LOG_EPS)
    phase = torch.angle(spec)
    dphase = torch.diff(phase, dim=-1, prepend=torch.zeros_like(phase[..., :1]))
    dphase = torch.remainder(dphase + math.pi, 2 * math.pi) - math.pi  # wrap to [-pi, pi)
    return torch.stack([logmag, dphase / math.pi], dim=1)


def magif_to_wave(magif: torch.Tensor) -> torch.Tensor:
    """MAG-IF -> waveform: phase = pi * cumsum(IF) over time, then inverse STFT.

    Args:
        magif: ``[B, 2, 1024, 32]`` (un-normalised, see :class:`Normalizer`).

    Returns:
        ``[B, 16000]`` float32 waveform at 16 kHz. Not clipped: callers decide how to limit it.

    Raises:
        ValueError: the input is not ``[B, 2, 1024, 32]``.
    """
    if magif.dim() != 4 or tuple(magif.shape[1:]) != (2, N_BINS, N_FRAMES):
        raise ValueError(f"expected MAG-IF [B, 2, {N_BINS}, {N_FRAMES}], got {list(magif.shape)}")
    magif = magif.float()
    mag = torch.clamp(torch.exp(magif[:, 0]) - LOG_EPS, min=0.0)
    phase = torch.cumsum(magif[:, 1] * math.pi, dim=-1)
    return istft(torch.polar(mag, phase))


def first_bin_at(hz: float, n_bins: int = N_BINS) -> int:
    """The index of the first of ``n_bins`` STFT bins (bin k at ``k * 8000 / n_bins`` Hz) at or
    above ``hz`` (0 for ``hz <= 0``): 3 for :data:`AUDIBLE_HZ` and the 1024 bins."""
    return math.ceil(hz * n_bins / (SAMPLE_RATE / 2)) if hz > 0 else 0


def frame_energy_db(logmag: torch.Tensor, min_hz: float = AUDIBLE_HZ, max_hz: float | None = None) -> torch.Tensor:
    """Energy of each STFT frame in dB: ``10 log10(sum_k |X_k|^2)`` over the bins at ``>= min_hz``
    (and below ``max_hz`` when given: one band of the spectrum).

    Args:
        logmag: ``[B, F, W]`` natural-log magnitudes (channel 0 of un-normalised MAG-IF; any F, W;
            bin k at ``k * 8000 / F`` Hz).
        min_hz: bins below it are left out (default :data:`AUDIBLE_HZ`: the energy a listener
            hears). Every generator of this project puts an infrasonic swell at the onset (bins
            0-2 hold 25 % of the first 6 frames' energy; real notes 0.003 %), which filled the
            frames after an onset click and hid it from ``g_envelope`` and the onset-burst
            measures while they counted it (stop 49, docs/training.md, "An inaudible swell").
        max_hz: the band's upper edge (Hz, exclusive); ``None`` up to 8 kHz.

    Returns:
        ``[B, W]`` float dB (differentiable; the ``LOG_EPS`` floor is kept, so silence is about
        ``10 log10(F) - 120`` dB). Frame-to-frame differences of this envelope measure onset
        bursts: in real notes frame 1 is never more than 3 dB below frame 0 (0.1 % quantile of
        512 training crops), in the generators' notes it was 14-20 dB below (issue 15).

    Raises:
        ValueError: no bin lies in ``[min_hz, max_hz)``.
    """
    first = first_bin_at(min_hz, logmag.shape[-2])
    last = logmag.shape[-2] if max_hz is None else first_bin_at(max_hz, logmag.shape[-2])
    if last <= first:
        raise ValueError(f"frame_energy_db: no bin in [{min_hz}, {max_hz}) Hz of {logmag.shape[-2]}")
    return torch.logsumexp(2.0 * logmag[..., first:last, :].float(), dim=-2) * (10.0 / math.log(10.0))


def magif_to_note(magif: torch.Tensor, fade: int = FADE_OUT_SAMPLES) -> torch.Tensor:
    """A generated note as a listener gets it: :func:`without_infrasound`, :func:`magif_to_wave`,
    then :func:`fade_out` over the last ``fade`` samples (the checkpoint's ``model.synthesis_fade``;
    default the data's 1,024 = 64 ms).

    Every training crop is faded out over its last 64 ms (``darkgan data prepare``), but a
    generator does not reproduce the fade: it lives in the phase-consistent overlap of the last
    two STFT frames, so generated notes are cut instead (last 10 ms at +0.9 dB re the note's body
    against -33 dB for real crops: a click, a broadband burst in spectrograms; issue 15, item 7).
    The fade is a fixed part of the data, not of the timbre, so synthesis applies it. Likewise
    real notes have almost no energy below 20 Hz (-45 dB), but every generator here adds an
    infrasonic swell to its onsets (stop 49), so synthesis removes it, as a DC blocker would.

    But the generator also learns the data's fade in the magnitudes of its last frames, so the
    data's whole fade applied again ends its notes darker than real crops (stop 57: -27.8 against
    -18.2 dB above 5 kHz in the last 50 ms); a checkpoint trained hearing a shorter fade (one hop,
    512 samples, is enough against the cut: no frame centre lies in the last hop) records it in
    ``model.synthesis_fade`` and every path that synthesises its notes passes it here.

    Shapes: ``[B, 2, 1024, 32]`` un-normalised MAG-IF -> ``[B, 16000]`` float32 (differentiable).
    """
    return fade_out(magif_to_wave(without_infrasound(magif)), fade)


def without_infrasound(magif: torch.Tensor, min_hz: float = AUDIBLE_HZ) -> torch.Tensor:
    """The MAG-IF with its bins below ``min_hz`` silenced (magnitude ``LOG_EPS``), a copy.

    Every generator of this project (the paper's recipe included) puts an infrasonic swell at its
    notes' onsets: over the first 6 frames of 200 validation requests, bins 0-2 (0-15.6 Hz) hold
    25 % of the energy (-5.7 dB; real notes -44.8 dB), 13 % of the whole note's; inaudible, it
    takes headroom and a loudspeaker's excursion, and it hid the onset click from power measures.

    Shapes: ``[B, 2, F, W]`` un-normalised MAG-IF -> the same (bin k at ``k * 8000 / F`` Hz;
    differentiable, no gradient reaches the silenced bins).
    """
    first = first_bin_at(min_hz, magif.shape[-2])
    if first == 0:
        return magif
    silent = torch.full_like(magif[:, :1, :first], math.log(LOG_EPS))
    return torch.cat([torch.cat([silent, magif[:, :1, first:]], -2), magif[:, 1:]], 1)


def fade_out(wave: torch.Tensor, n: int = FADE_OUT_SAMPLES) -> torch.Tensor:
    """Apply a raised-cosine fade over the last ``n`` samples of ``wave [..., T]`` (returns a copy).

    The 1 s crop cuts sustained notes abruptly; the reference configuration fades the crop out so
    the generator need not model a click at the end.
    """
    if n <= 0:
        return wave.clone()
    ramp = 0.5 * (1 + torch.cos(torch.linspace(0, math.pi, n, device=wave.device, dtype=wave.dtype)))
    out = wave.clone()
    out[..., -n:] = out[..., -n:] * ramp
    return out


def snr_db(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio in dB per item: ``10 log10(sum ref^2 / sum (ref - est)^2)``.

    Args:
        reference, estimate: ``[B, T]``.

    Returns:
        ``[B]`` float (``inf`` for a perfect match).
    """
    num = reference.double().pow(2).sum(-1)
    den = (reference.double() - estimate.double()).pow(2).sum(-1)
    return (10 * torch.log10(num / den)).float()


@dataclass(frozen=True)
class Normalizer:
    """Per-channel standardisation of MAG-IF tensors, fitted on the training split.

    ``normalize(x) = (x - mean[c]) / std[c]`` for channel c in {magnitude, IF}. Generators produce
    normalised MAG-IF; :meth:`denormalize` maps it back before :func:`magif_to_wave`.

    Attributes:
        mean: ``(mean_logmag, mean_if)``.
        std: ``(std_logmag, std_if)``, both > 0.
    """

    mean: tuple[float, float]
    std: tuple[float, float]

    def __post_init__(self) -> None:
        if len(self.mean) != 2 or len(self.std) != 2 or min(self.std) <= 0:
            raise ValueError(f"Normalizer needs two means and two positive stds, got {self}")

    def _stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(1, 2, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(1, 2, 1, 1)
        return mean, std

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 2, F, T]`` raw MAG-IF -> normalised."""
        mean, std = self._stats(x)
        return (x - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 2, F, T]`` normalised MAG-IF -> raw (input of :func:`magif_to_wave`)."""
        mean, std = self._stats(x)
        return x * std + mean

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normalizer":
        return cls(mean=tuple(float(v) for v in d["mean"]), std=tuple(float(v) for v in d["std"]))

    @classmethod
    def identity(cls) -> "Normalizer":
        return cls(mean=(0.0, 0.0), std=(1.0, 1.0))
