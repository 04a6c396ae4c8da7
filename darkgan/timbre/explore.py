"""Looking at a timbre space: the 2-D map (PNG), descriptor-based synthesis and descriptor
topology (Esling et al. 2018, Secs. 4.3-5)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from darkgan.errors import DarkGANError
from darkgan.timbre.descriptors import DESCRIPTORS, audio_descriptors, frame_descriptors
from darkgan.utils.io import atomic_write

#: Descriptors that descriptor-based synthesis can steer (relative changes).
STEERABLE = ("centroid", "flatness", "bandwidth", "rolloff")


def _save_fig(fig, out: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    with atomic_write(out) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def map_png(space, out: str | os.PathLike, points: dict[str, np.ndarray] | None = None) -> dict:
    """Draw the 2-D map: rated instruments (filled), novel ones (hollow), ``points`` (user WAVs,
    stars), on the principal plane of the rated centroids; returns ``{label: [x, y]}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    coords = {}
    fig, ax = plt.subplots(figsize=(7, 6))
    for name, z in space.centroids.items():
        xy = space.to_plane(z)
        rated = name in space.ratings.instruments
        ax.scatter(*xy, s=60, c="C0" if rated else "none", edgecolors="C0" if rated else "C2")
        ax.annotate(name, xy, textcoords="offset points", xytext=(4, 4), fontsize=8,
                    color="black" if rated else "C2")
        coords[name] = xy.tolist()
    for label, z in (points or {}).items():
        xy = space.to_plane(z)
        ax.scatter(*xy, marker="*", s=140, c="C3")
        ax.annotate(Path(label).name, xy, textcoords="offset points", xytext=(4, -10), fontsize=8, color="C3")
        coords[label] = xy.tolist()
    fit = space.metrics.get("fit", {})
    ax.set_title(f"timbre space ({space.config.model.front_end}); centroid distances vs ratings: "
                 f"Pearson {fit.get('pearson', float('nan')):.2f}, Spearman {fit.get('spearman', float('nan')):.2f}",
                 fontsize=9)
    ax.set_xlabel("principal axis 1")
    ax.set_ylabel("principal axis 2")
    _save_fig(fig, out)
    return coords


def descriptor_synth(space, instrument: str, pitch: float, descriptor: str, change: float,
                     steps: int = 300, anchor: float = 0.05, n_iter: int = 32) -> tuple[np.ndarray, dict]:
    """Move an instrument's descriptor by a relative ``change`` while staying near it in the space.

    Optimises ``z`` from the instrument's centroid ``z0`` (Adam, ``steps`` steps) on
    ``(log d(z) - log((1 + change) d(z0)))^2 + anchor * ||z - z0||^2 / Z``, ``d`` the descriptor
    of the decoded frame (:func:`~darkgan.timbre.descriptors.frame_descriptors`); then
    synthesises ``z`` and measures the achieved change on the audio against the audio of ``z0``.

    Returns:
        ``(wave [16000], report)``; the report holds ``asked``, ``achieved_frame``,
        ``achieved_audio``, ``error_audio`` (``|achieved_audio - asked|``), ``latent_shift`` and
        both latents.

    Raises:
        DarkGANError: a descriptor not in :data:`STEERABLE`; ``change`` <= -1; unknown instrument.
    """
    import torch

    if descriptor not in STEERABLE:
        raise DarkGANError(f"descriptor {descriptor!r}: choose one of {', '.join(STEERABLE)}")
    if change <= -1:
        raise DarkGANError(f"change {change:g}: a relative change must be > -1")
    z0 = torch.from_numpy(space.instrument(instrument))
    freqs = space.front_end.freqs

    def desc(z):
        mag = (torch.exp(space.decode_frames(z, pitch)) - 1e-5).clamp_min(0)
        return frame_descriptors(mag, freqs)[descriptor][0]

    with torch.no_grad():
        d0 = desc(z0)
    target = torch.log(d0 * (1 + change))
    z = z0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(steps):
        loss = (torch.log(desc(z)) - target) ** 2 + anchor * (z - z0).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    z = z.detach()
    with torch.no_grad():
        achieved_frame = float(desc(z) / d0 - 1)
    base = space.synth(z0.numpy(), pitch, n_iter)
    wave = space.synth(z.numpy(), pitch, n_iter)
    achieved = audio_descriptors(wave)[descriptor] / audio_descriptors(base)[descriptor] - 1
    return wave, {"instrument": instrument, "pitch": pitch, "descriptor": descriptor, "asked": change,
                  "achieved_frame": achieved_frame, "achieved_audio": float(achieved),
                  "error_audio": float(abs(achieved - change)),
                  "latent_shift": float(np.linalg.norm(z.numpy() - z0.numpy())),
                  "latent": z.numpy().tolist(), "latent_start": z0.numpy().tolist()}


def descriptor_topology(space, out_dir: str | os.PathLike, pitch: float = 65.0, span: float = 3.0,
                        n: int = 41) -> dict:
    """Descriptors of decoded frames along every latent axis (others at the rated centroids'
    mean) and over the 2-D map plane; writes ``topology-axes.png`` and ``topology-plane.png``.

    Returns:
        ``{"roughness": {descriptor: float}}``: the median absolute change between neighbouring
        grid cells of the plane, relative to the descriptor's range over the plane (small = locally
        smooth; a random field gives ~0.33).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    out_dir = Path(out_dir)
    origin, _ = space.plane()
    t = np.linspace(-span, span, n)

    def descs(z):
        with torch.no_grad():
            mag = (torch.exp(space.decode_frames(z, pitch)) - 1e-5).clamp_min(0)
            return {k: v.numpy() for k, v in frame_descriptors(mag, space.front_end.freqs).items()}

    fig, axes = plt.subplots(1, len(DESCRIPTORS), figsize=(4 * len(DESCRIPTORS), 3.2))
    for d in range(space.latent_dim):
        z = np.repeat(origin[None], n, 0)
        z[:, d] += t
        vals = descs(z)
        for ax, name in zip(axes, DESCRIPTORS):
            ax.plot(t, vals[name], label=f"z{d}")
    for ax, name in zip(axes, DESCRIPTORS):
        ax.set_title(name)
        ax.set_xlabel("offset along latent axis")
    axes[0].legend(fontsize=7)
    _save_fig(fig, out_dir / "topology-axes.png")
    return _plane_topology(space, descs, out_dir, span, n)


def _plane_topology(space, descs, out_dir: Path, span: float, n: int) -> dict:
    import matplotlib.pyplot as plt

    g = np.linspace(-span, span, n)
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    origin, axes = space.plane()
    vals = descs(origin + xy @ axes)
    fig, axs = plt.subplots(1, len(DESCRIPTORS), figsize=(4 * len(DESCRIPTORS), 3.6))
    rough = {}
    for ax, name in zip(axs, DESCRIPTORS):
        grid = vals[name].reshape(n, n)
        im = ax.imshow(grid, origin="lower", extent=(-span, span, -span, span), cmap="viridis")
        for inst in space.ratings.instruments:
            p = space.to_plane(space.centroids[inst])
            ax.plot(*p, "w.", ms=4)
        ax.set_title(name)
        fig.colorbar(im, ax=ax, fraction=0.046)
        rng = float(grid.max() - grid.min()) or 1.0
        steps = np.concatenate([np.abs(np.diff(grid, axis=0)).ravel(), np.abs(np.diff(grid, axis=1)).ravel()])
        rough[name] = float(np.median(steps) / rng)
    _save_fig(fig, out_dir / "topology-plane.png")
    return {"roughness": rough}


def pad_extent(space, margin: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """``(lo [2], hi [2])``: the map-plane box of the web app's timbre pad (all instruments'
    centroids plus ``margin`` of the box size on every side)."""
    xy = np.stack([space.to_plane(z) for z in space.centroids.values()])
    lo, hi = xy.min(0), xy.max(0)
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def pad_to_latent(space, x: float, y: float) -> np.ndarray:
    """Pad coordinates ``(x, y)`` in [0, 1]^2 ((0, 0) bottom left) -> latent point ``[Z]``."""
    lo, hi = pad_extent(space)
    return space.from_plane(lo + np.array([x, y]) * (hi - lo))


def pad_figure(space, x: float | None = None, y: float | None = None, size: int = 320):
    """The timbre pad as a ``size`` x ``size`` pixel matplotlib ``Figure``: instruments at their pad
    positions (rated blue, novel green), a red marker at ``(x, y)``; no margins, so pixel -> pad
    coordinates is linear (the web app renders it with ``darkgan.app.state._render``)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    lo, hi = pad_extent(space)
    fig = Figure(figsize=(size / 100, size / 100), dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.axis("off")
    for name, z in space.centroids.items():
        px, py = (space.to_plane(z) - lo) / (hi - lo)
        rated = name in space.ratings.instruments
        ax.plot(px, py, "o", ms=5, color="C0" if rated else "C2")
        ax.text(px, py, " " + name, fontsize=6, color="black" if rated else "C2", va="center")
    if x is not None:
        ax.plot(x, y, "x", ms=10, mew=2, color="C3")
    return fig
