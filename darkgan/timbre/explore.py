"""Looking at a timbre space: the 2-D / 3-D map (PNG), descriptor-based synthesis and descriptor
topology (Esling et al. 2018, Secs. 4.3-5)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from darkgan.errors import DarkGANError
from darkgan.timbre.descriptors import DESCRIPTORS, audio_descriptors, frame_descriptors
from darkgan.timbre.synthesis import NoteEdit
from darkgan.utils.io import atomic_write

#: Descriptors that descriptor-based synthesis can steer (relative changes).
STEERABLE = ("centroid", "flatness", "bandwidth", "rolloff")


def _save_fig(fig, out: str | os.PathLike) -> None:
    import matplotlib.pyplot as plt

    with atomic_write(out) as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def map_png(space, out: str | os.PathLike, points: dict[str, np.ndarray] | None = None, dims: int = 2) -> dict:
    """Draw the map of the space on the first ``dims`` (2 or 3) principal axes of the rated
    centroids (:meth:`~darkgan.timbre.space.TimbreSpace.principal_axes`): rated instruments (filled),
    novel ones (hollow), ``points`` (``{label: latent [Z]}``, e.g. user WAVs; red stars).
    ``dims=3`` draws the three pairwise projections (axes 1-2, 1-3, 2-3) and a 3-D view.

    Returns:
        ``{label: [dims] coordinates}`` (the 2-D ones are the pad's and ``synth --map-xy``'s).

    Raises:
        DarkGANError: ``dims`` not 2 or 3.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if dims not in (2, 3):
        raise DarkGANError(f"--dims {dims}: the map has 2 or 3 dimensions")
    share = space.principal_axes(dims)[2]
    coords = {name: space.to_axes(z, dims) for name, z in space.centroids.items()}
    user = {label: space.to_axes(z, dims) for label, z in (points or {}).items()}
    if dims == 2:
        fig, ax = plt.subplots(figsize=(7, 6))
        _draw_projection(ax, space, coords, user, (0, 1), share)
    else:
        fig = plt.figure(figsize=(12, 10.5))
        for n, pair in enumerate(((0, 1), (0, 2), (1, 2))):
            _draw_projection(fig.add_subplot(2, 2, n + 1), space, coords, user, pair, share)
        _draw_3d(fig.add_subplot(2, 2, 4, projection="3d"), space, coords, user, share)
    fit = space.metrics.get("fit", {})
    fig.suptitle(f"timbre space ({space.config.model.front_end}); centroid distances vs ratings: "
                 f"Pearson {fit.get('pearson', float('nan')):.2f}, Spearman {fit.get('spearman', float('nan')):.2f}",
                 fontsize=10)
    _save_fig(fig, out)
    return {k: v.tolist() for k, v in {**coords, **user}.items()}


def _style(space, name: str) -> dict:
    rated = name in space.ratings.instruments
    return {"c": "C0" if rated else "none", "edgecolors": "C0" if rated else "C2",
            "text": "black" if rated else "C2"}


def _draw_projection(ax, space, coords: dict, user: dict, pair: tuple[int, int], share) -> None:
    """One 2-D projection (principal axes ``pair``, 0-based) of the map onto ``ax``."""
    i, j = pair
    for name, c in coords.items():
        st = _style(space, name)
        ax.scatter(c[i], c[j], s=60, c=st["c"], edgecolors=st["edgecolors"])
        ax.annotate(name, (c[i], c[j]), textcoords="offset points", xytext=(4, 4), fontsize=8, color=st["text"])
    for label, c in user.items():
        ax.scatter(c[i], c[j], marker="*", s=140, c="C3")
        ax.annotate(Path(label).name, (c[i], c[j]), textcoords="offset points", xytext=(4, -10), fontsize=8,
                    color="C3")
    ax.set_xlabel(f"principal axis {i + 1} ({100 * share[i]:.0f} % of the variance)")
    ax.set_ylabel(f"principal axis {j + 1} ({100 * share[j]:.0f} % of the variance)")


def _draw_3d(ax, space, coords: dict, user: dict, share) -> None:
    """The first three principal axes as a 3-D scatter onto a ``projection="3d"`` ``ax``."""
    for name, c in coords.items():
        st = _style(space, name)
        ax.scatter(*c, s=40, c=st["c"], edgecolors=st["edgecolors"], depthshade=False)
        ax.text(*c, " " + name, fontsize=7, color=st["text"])
    for label, c in user.items():
        ax.scatter(*c, marker="*", s=120, c="C3", depthshade=False)
        ax.text(*c, " " + Path(label).name, fontsize=7, color="C3")
    for setter, k in ((ax.set_xlabel, 0), (ax.set_ylabel, 1), (ax.set_zlabel, 2)):
        setter(f"axis {k + 1} ({100 * share[k]:.0f} %)", fontsize=8)


def descriptor_synth(space, note: np.ndarray, pitch: float, descriptor: str, change: float,
                     steps: int = 200, anchor: float = 0.05, n_iter: int = 32, calibrate: int = 2,
                     tolerance: float = 0.02) -> tuple[np.ndarray, dict]:
    """Move a real note's descriptor by a relative ``change`` while keeping its timbre.

    The note's frames ``X_t`` (log magnitude ``[N, F]``) are encoded to ``z_t``; one latent shift
    ``dz`` ``[Z]`` is applied to every frame as a residual, ``X'_t = X_t + D(z_t + dz) - D(z_t)``
    (``D`` the decoder), so the note keeps its attack, decay and fine structure, which the VAE's
    reconstruction and a held frame lose (docs/timbre.md). ``dz`` minimises, by Adam over
    ``steps`` steps, ``(mean_t log d(X'_t) - mean_t log d(X_t) - log(1 + change))^2 +
    anchor * ||dz||^2 / Z`` over the frames within 40 dB of the loudest (``d``:
    :func:`~darkgan.timbre.descriptors.frame_descriptors`); then ``X'`` is inverted to audio and the
    achieved change measured on it against the inverse of ``X`` (Esling et al. 2018, Sec. 5.2).
    The frame descriptors are not the audio ones (bins, phase retrieval), so up to ``calibrate``
    more rounds correct the frame goal by secant steps on ``log(1 + achieved audio change)`` until
    it is within ``tolerance`` of ``change``; the round closest to ``change`` is returned.

    Args:
        note: ``[T]`` 16 kHz float wave (its first second is used); e.g. :func:`instrument_note`.
        pitch: its MIDI pitch (clamped to the space's range for the decoder).

    Returns:
        ``(wave [16000], report)``; the report holds ``asked``, ``achieved_frame``,
        ``achieved_audio``, ``error_audio`` (``|achieved_audio - asked|``), ``latent_shift``
        (``||dz||``) and ``unmodified`` (the note's own resynthesis ``[16000]``, not JSON).

    Raises:
        DarkGANError: a descriptor not in :data:`STEERABLE`; ``change`` <= -1; a silent note.
    """
    if descriptor not in STEERABLE:
        raise DarkGANError(f"descriptor {descriptor!r}: choose one of {', '.join(STEERABLE)}")
    if change <= -1:
        raise DarkGANError(f"change {change:g}: a relative change must be > -1")
    import torch

    pitch = float(np.clip(pitch, *space.pitch_range))
    spec = space.front_end.analyze(note)  # [F, N]
    base = space.front_end.invert(spec, n_iter)
    d_base, residual = audio_descriptors(base)[descriptor], NoteEdit(space, spec, pitch)
    want = float(np.log1p(change))
    tried, best, dz = [(0.0, 0.0)], None, None  # (frame goal, log(1 + audio change)) pairs
    goal = want
    for _ in range(1 + calibrate):
        dz, achieved_frame = _descriptor_shift(space, spec, pitch, descriptor, goal, steps, anchor, dz)
        with torch.no_grad():
            wave = space.front_end.invert(spec + residual(torch.from_numpy(dz)).numpy(), n_iter)
        achieved = audio_descriptors(wave)[descriptor] / d_base - 1
        if best is None or abs(achieved - change) < abs(best[2] - change):
            best = (wave, dz, achieved, achieved_frame)
        tried.append((goal, float(np.log1p(achieved))))
        (g0, a0), (g1, a1) = tried[-2:]
        if abs(achieved - change) <= tolerance or (a1 - a0) * (g1 - g0) <= 0:
            break
        goal = g1 + (want - a1) * (g1 - g0) / (a1 - a0)  # secant step on the audio change
    wave, dz, achieved, achieved_frame = best
    return wave, {"pitch": pitch, "descriptor": descriptor, "asked": change, "achieved_frame": achieved_frame,
                  "achieved_audio": float(achieved), "error_audio": float(abs(achieved - change)),
                  "latent_shift": float(np.linalg.norm(dz)), "latent_shift_vector": dz.tolist(), "unmodified": base}


def _descriptor_shift(space, spec, pitch, descriptor, goal, steps, anchor, dz0=None, n_opt: int = 48):
    """The latent shift ``dz`` ``[Z]`` of :func:`descriptor_synth` (from ``dz0``, default 0) that
    moves the mean log descriptor of ``n_opt`` of the note's loud frames by ``goal``; returns
    ``(dz, achieved relative change on those frames)``."""
    import torch

    from darkgan.timbre.frontends import LOG_EPS

    energy = np.log(np.exp(spec.astype(np.float64) * 2).sum(0))  # log power per frame
    loud = np.flatnonzero(energy > energy.max() - np.log(10 ** 4))  # within 40 dB
    if energy.max() < np.log(1e-6) or len(loud) == 0:
        raise DarkGANError("the note is silent: no descriptor to change")
    frames = loud[np.linspace(0, len(loud) - 1, min(n_opt, len(loud))).round().astype(int)]
    x = torch.from_numpy(spec[:, frames].copy())
    residual = NoteEdit(space, spec, pitch, frames)
    freqs = space.front_end.freqs

    def mean_log_desc(logmag):
        mag = (torch.exp(logmag) - LOG_EPS).clamp_min(0).T
        return torch.log(frame_descriptors(mag, freqs)[descriptor] + 1e-12).mean()

    with torch.no_grad():
        d0 = mean_log_desc(x)
    target = d0 + goal
    dz = torch.zeros(space.latent_dim) if dz0 is None else torch.from_numpy(np.asarray(dz0, np.float32))
    dz.requires_grad_(True)
    opt = torch.optim.Adam([dz], lr=0.05)
    for _ in range(steps):
        loss = (mean_log_desc(x + residual(dz)) - target) ** 2 \
            + anchor * dz.pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        achieved = float(torch.exp(mean_log_desc(x + residual(dz)) - d0) - 1)
    return dz.detach().numpy(), achieved


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
