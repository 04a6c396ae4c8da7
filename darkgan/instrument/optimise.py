"""Per-root latent optimisation: one timbre across the sampled keys of an instrument.

At fixed ``(z, alpha)`` the generator's timbre drifts with its pitch input (docs/instrument.md:
a plain fixed z is 5x as far from one key to the next as a real SoundFont instrument), and a
choice among a few candidate z barely helps. The generator and the teacher are differentiable,
so each sampled root ``p`` gets its own latent ``z_p``, started at the instrument's shared ``z0``
and moved by a few steps of Adam (Kingma & Ba, ICLR 2015) on

    L = consistency(E(G(z_p, p, alpha)))_p                        (teacher embedding, cosine)
        + z_weight * mean_p ||z_p - z0||^2 / Z                     (stay near the chosen note)

with ``alpha`` (the description) fixed; ``consistency`` is either the mean cosine distance of
neighbouring roots (``target = "neighbours"``) or of every root to the roots' mean embedding
(``target = "mean"``: one timbre for all keys, not only a smooth drift). ``E`` is the teacher's
embedding (EfficientAT mn04, the instrument benchmark's measure), ``cosine_distance`` that of
training (:mod:`darkgan.training.losses`). With ``spread > 0`` each root is embedded as a sampler
plays it: re-pitched by random offsets within ``+-spread`` semitones (:func:`played_versions`),
an expectation over the transformations the notes will undergo (Athalye et al., ICML 2018), so
that the roots agree as played, not only as generated. The pitch is not in the objective: the
YIN screen, key repair and retune of :func:`darkgan.instrument.export.build_instrument` run
after. Moving z in the
generator's own latent space keeps every note a generated note (an image-space edit would not);
it is the GAN-inversion idea (e.g. Zhu et al., ECCV 2016, "Generative visual manipulation on the
natural image manifold") applied across pitch. Ours; measured in docs/instrument.md.
"""
from __future__ import annotations

import numpy as np

from darkgan.errors import DarkGANError

#: Consistency objectives of :func:`optimise_roots`.
TARGETS = ("neighbours", "mean")


def consistency_objective(emb, target: str):
    """Mean cosine distance of ``emb [P, D]``: neighbouring rows (``"neighbours"``) or every row
    to the rows' mean direction (``"mean"``). Scalar, differentiable.

    Raises:
        DarkGANError: unknown target.
    """
    from darkgan.training.losses import cosine_distance

    if target == "neighbours":
        return cosine_distance(emb[1:], emb[:-1]).mean()
    if target == "mean":
        unit = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return cosine_distance(emb, unit.mean(0, keepdim=True).expand_as(emb)).mean()
    raise DarkGANError(f"optimise target {target!r}: choose one of {', '.join(TARGETS)}")


def repitch(wave, semitones, length: int):
    """Notes ``wave [B, N]`` played ``semitones [B, M]`` higher, as a sampler plays a sample on
    another key (linear interpolation at ``n * 2^(s/12)``; :func:`darkgan.instrument.midi.voice` reads
    cubically, :func:`darkgan.instrument.midi.read_cubic`, linear is its cheap differentiable stand-in):
    ``[B * M, length]``, differentiable w.r.t. ``wave``; ``length * 2^(max s/12) <= N - 1``."""
    import torch

    b, n = wave.shape
    pos = torch.arange(length, dtype=torch.float32)[None, None] * torch.pow(2.0, semitones[..., None] / 12.0)
    i0 = pos.floor().long().clamp(0, n - 2)
    frac = pos - i0
    src = wave[:, None].expand(b, semitones.shape[1], n)
    out = torch.gather(src, 2, i0) * (1 - frac) + torch.gather(src, 2, i0 + 1) * frac
    return out.reshape(b * semitones.shape[1], length)


def played_versions(wave, spread: float, versions: int, gen):
    """Each root ``wave [P, N]`` re-pitched by ``versions`` random offsets, stratified over
    ``[-spread, spread]`` semitones (the keys of its zone and the retune a root may get), the first
    ``L = (N - 2) / 2^(spread/12)`` samples: ``[P * versions, L]``; ``spread = 0``: ``wave`` itself."""
    import torch

    if spread <= 0:
        return wave
    edges = torch.linspace(-spread, spread, versions + 1)
    u = torch.rand(wave.shape[0], versions, generator=gen)
    semis = edges[:-1] + u * (edges[1:] - edges[:-1])
    return repitch(wave, semis, int((wave.shape[1] - 2) / 2 ** (spread / 12)))


def optimise_roots(model, teacher, z0: np.ndarray, alpha: np.ndarray | None, pitches: np.ndarray, steps: int,
                   lr: float = 0.03, target: str = "mean", z_weight: float = 0.1, spread: float = 0.0,
                   versions: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict]:
    """Move each root's latent so that the roots sound alike to ``teacher`` (see module docstring).

    Args:
        model: a :class:`darkgan.DarkGAN` (its generator is not changed).
        teacher: a differentiable :class:`darkgan.teacher.base.Teacher` (EfficientAT mn04).
        z0: ``[Z]`` the shared latent every root starts from. alpha: ``[K]`` the description's
            conditioning vector (fixed), ``None`` for the no-attribute baseline.
        pitches: ``[P]`` MIDI root keys (P >= 2) in the model's range.
        steps: Adam steps (>= 1). lr: Adam's learning rate (latent units).
        target, z_weight: the objective's consistency target and the weight of the latent shift.
        spread, versions: each root embedded as ``versions`` copies re-pitched within
            ``+-spread`` semitones (0: the notes as generated). seed: seeds those offsets.

    Returns:
        ``(notes [P, 16000] float32 at 16 kHz, peak-limited as :meth:`DarkGAN.generate_batch`,
        z [P, Z] float32, info)``: the notes of the last step's latents; ``info`` has the
        consistency term at the start and the end (for ``spread > 0`` at other random offsets:
        a noisy estimate), the mean latent shift ``|z_p - z0|`` and norm ``|z_p|``.

    Raises:
        DarkGANError: fewer than 2 roots, ``steps < 1``, unknown target.
    """
    import torch

    if len(pitches) < 2 or steps < 1:
        raise DarkGANError(f"optimise_roots needs >= 2 roots and >= 1 step, got {len(pitches)} and {steps}")
    p = torch.as_tensor(np.asarray(pitches, dtype=np.int64))
    start = torch.as_tensor(np.asarray(z0, dtype=np.float32)).reshape(1, -1)
    a = None if alpha is None else torch.as_tensor(np.asarray(alpha, dtype=np.float32)).reshape(1, -1).repeat(len(p), 1)
    z = start.repeat(len(p), 1).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    syn, hist, gen = model.synthesiser, [], torch.Generator().manual_seed(int(seed))
    for _ in range(steps + 1):
        wave = syn.wave(z, p - model.pitch_range[0], a)
        cons = consistency_objective(teacher.embedding(played_versions(wave, spread, versions, gen), grad=True), target)
        shift = (z - start).square().sum(1).mean() / z.shape[1]
        hist.append(float(cons.detach()))
        if len(hist) > steps:  # the last pass only measures (its notes are returned)
            break
        opt.zero_grad()
        (cons + z_weight * shift).backward()
        opt.step()
    from darkgan.generation.synthesis import limit_peaks

    notes = limit_peaks(wave.detach())[0].numpy()
    info = {"steps": steps, "target": target, "spread": spread, "consistency": [hist[0], hist[-1]],
            "z_shift": float((z.detach() - start).norm(dim=1).mean()), "z_norm": float(z.detach().norm(dim=1).mean())}
    return notes, z.detach().numpy(), info
