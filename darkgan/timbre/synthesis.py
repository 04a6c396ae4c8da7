"""Synthesis by editing real notes in a timbre space (ours, after Esling et al. 2018, Sec. 5).

A decoded latent frame held for a second loses the instrument (docs/timbre.md, the per-stage
diagnosis), so every synthesis here starts from a real *carrier* note: its log-magnitude frames
``X_t`` ``[F, N]`` are encoded to ``z_t`` and moved by one latent shift ``dz`` as a residual,
``X'_t = X_t + D(z_t + dz) - D(z_t)`` (``D`` the decoder): the VAE's reconstruction error
cancels and the note keeps its attack, decay and fine structure. Descriptor-based synthesis
(:func:`darkgan.timbre.explore.descriptor_synth`) finds ``dz`` by optimisation; synthesis of a
latent point ``p`` (:func:`point_synth`, the map, the app pad, ``path``) takes
``dz = p - position(carrier)``, the carrier's map position being the one
:meth:`~darkgan.timbre.space.TimbreSpace.encode` gives, and blends carriers of the nearest
instruments with modified Shepard weights (:func:`carrier_weights`).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from darkgan.errors import DarkGANError

CARRIER_FONT = "FluidR3_GM.sf2"  #: SoundFont of the instruments' carrier notes
CARRIER_VELOCITY = 100  #: MIDI velocity of the instruments' carrier notes


@lru_cache(maxsize=64)
def _render(font: str, program: int, pitch: int, velocity: int) -> np.ndarray:
    from darkgan.data.constants import N_SAMPLES
    from darkgan.data.render import render_note
    from darkgan.timbre.data import _font_paths

    wave = render_note(_font_paths([font])[0], program, pitch, velocity)[:N_SAMPLES]
    wave.setflags(write=False)
    return wave


def instrument_note(space, instrument: str, pitch: int, velocity: int = CARRIER_VELOCITY,
                    soundfont: str = CARRIER_FONT) -> np.ndarray:
    """A real note ``[16000]`` of a rated or novel instrument: the first second of its General
    MIDI program rendered from ``soundfont`` by :func:`darkgan.data.render.render_note` (as the
    space's data); cached per process.

    Raises:
        DarkGANError: unknown instrument; DataError: the SoundFont is not installed.
    """
    from darkgan.timbre.data import NOVEL_PROGRAMS

    name = next((k for k in space.centroids if k.lower() == instrument.lower()), None)
    programs = dict(zip(space.ratings.instruments, space.ratings.programs)) | {v: k for k, v in NOVEL_PROGRAMS.items()}
    if name not in programs:
        raise DarkGANError(f"unknown instrument {instrument!r}; known: {', '.join(programs)}")
    return _render(soundfont, int(programs[name]), int(pitch), int(velocity)).copy()


class NoteEdit:
    """A real note's frames ready for latent edits.

    Args:
        spec: ``[F, N]`` log-magnitude frames of the note (``space.front_end.analyze``).
        pitch: MIDI pitch the decoder is conditioned on.
        frames: indices of the frames to edit (default: all ``N``).

    Attributes:
        mu: ``[n, Z]`` encoder means ``z_t`` of the edited frames (torch).

    ``edit(dz)`` (``dz`` ``[Z]`` torch) is the log-magnitude change ``D(z_t + dz) - D(z_t)``
    ``[F, n]`` (torch, differentiable in ``dz``).
    """

    def __init__(self, space, spec: np.ndarray, pitch: float, frames=None):
        import torch

        x = torch.from_numpy(spec.T.copy() if frames is None else spec[:, frames].T.copy())
        self.decode, self.p = space.model.decode, torch.full((x.shape[0],), float(pitch))
        with torch.no_grad():
            self.mu, _ = space.model.encode(x, self.p)
            self.base = self.decode(self.mu, self.p)

    def __call__(self, dz):
        return (self.decode(self.mu + dz, self.p) - self.base).T


def carrier_weights(space, z: np.ndarray, k: int = 2, rated_only: bool = False) -> list[tuple[str, float]]:
    """The carriers of latent point ``z`` ``[Z]``: its ``k`` nearest instrument centroids (rated
    and novel, or rated only) with modified Shepard weights (Franke and Nielson 1980; Renka 1988)
    ``w_i ~ ((R - d_i)_+ / (R d_i))^2``, ``R`` the distance to the (k+1)-th nearest centroid,
    summing to 1. They are 1 at a centroid, fall to 0 where an instrument stops being among the
    ``k`` nearest, and so change continuously over the map. Returns ``[(instrument, weight)]``,
    nearest first, zero weights left out."""
    names = list(space.ratings.instruments if rated_only else space.centroids)
    d = np.linalg.norm(np.stack([space.centroids[n] for n in names]) - np.asarray(z, np.float64), axis=1)
    order = np.argsort(d, kind="stable")
    near = order[:k]
    if d[near[0]] < 1e-9 or k == 1 or len(order) == k:
        return [(names[near[0]], 1.0)]
    r = d[order[k]]
    w = (np.clip(r - d[near], 0, None) / (r * d[near])) ** 2
    if w.sum() <= 0:  # k+1 centroids at the same distance
        w = np.ones(len(near))
    w = w / w.sum()
    return [(names[i], float(wi)) for i, wi in zip(near, w) if wi > 0]


def edit_to_point(space, carriers: list[tuple[np.ndarray, float, np.ndarray | None]], z: np.ndarray,
                  pitch: float, n_iter: int = 32) -> tuple[np.ndarray, list[float]]:
    """Move each carrier note to latent point ``z`` ``[Z]`` and blend them.

    A carrier ``(note [T], weight, anchor [Z] or None)`` (16 kHz; all the same length) gets
    ``X'_t = X_t + D(z_t + dz) - D(z_t)`` with ``dz = z - anchor``: ``anchor`` is the point the
    note stands for, its instrument's centroid for an instrument's note (so the note itself
    plays at its instrument's centroid), or, if None, the note's own map position (the mean
    ``z_t`` over the frames :meth:`~darkgan.timbre.space.TimbreSpace.encode` uses). The results
    are averaged in log magnitude with the weights, inverted by the front end's phase retrieval
    (``n_iter`` iterations) and given 10/50 ms fades.

    Returns:
        ``(wave [T] float32, latent move ||dz|| per carrier)``.
    """
    import torch

    from darkgan.timbre.space import _envelope

    blend, moves = 0.0, []
    for note, weight, anchor in carriers:
        spec = space.front_end.analyze(note)
        edit = NoteEdit(space, spec, pitch)
        if anchor is None:
            anchor = edit.mu[space.position_frames(spec.shape[1], len(note))].mean(0)
        dz = torch.as_tensor(np.asarray(z, np.float32)) - torch.as_tensor(anchor)
        moves.append(float(dz.norm()))
        if weight > 0:
            with torch.no_grad():
                blend = blend + weight * (spec + edit(dz).numpy())
    return _envelope(space.front_end.invert(blend, n_iter)), moves


def point_synth(space, z: np.ndarray, pitch: float, note: np.ndarray | None = None, k: int = 2,
                rated_only: bool = False, anchor: str = "centroid", n_iter: int = 32) -> tuple[np.ndarray, dict]:
    """A note at latent point ``z`` ``[Z]``: real carrier notes moved there (:func:`edit_to_point`).

    Carriers: the user's ``note`` (``[T]`` 16 kHz; its first second; moved from its own map
    position), or else the ``k`` nearest instruments' notes (:func:`carrier_weights`;
    :func:`instrument_note` at ``round(pitch)``), each moved by ``z`` minus its instrument's
    centroid (``anchor="centroid"``) or minus the note's own map position (``anchor="note"``; a
    FluidR3 note lies 0.9-2.1 latent units from its instrument's centroid, as far as other
    instruments, so this move loses the instrument: docs/timbre.md).

    Args:
        pitch: MIDI pitch; with ``note``, the note's own pitch (clamped to the space's range for
            the decoder, as in encoding), else it must lie in the space's range.

    Returns:
        ``(wave [16000] float32, report)``: ``latent``, ``pitch`` and ``carriers``
        (``[{"instrument" | "note", "weight", "latent_move"}]``).

    Raises:
        DarkGANError: ``z`` of the wrong size or not finite; pitch outside the range (no ``note``);
        DataError: a silent or too short ``note``.
    """
    from darkgan.timbre.space import check_note

    if note is None:
        z, pitch = space.check_point(z, pitch)
        pitch = float(round(pitch))
        names = carrier_weights(space, z, k, rated_only)
        if anchor not in ("centroid", "note"):
            raise DarkGANError(f"anchor {anchor!r}: choose centroid or note")
        carriers = [(instrument_note(space, n, int(pitch)), w, space.centroids[n] if anchor == "centroid" else None)
                    for n, w in names]
        labels = [{"instrument": n} for n, _ in names]
    else:
        z, _ = space.check_point(z, space.pitch_range[0])
        pitch = float(np.clip(pitch, *space.pitch_range))
        carriers, labels = [(check_note(note, "note"), 1.0, None)], [{"note": "user"}]
    wave, moves = edit_to_point(space, carriers, z, pitch, n_iter)
    rows = [lab | {"weight": round(w, 4), "latent_move": round(m, 4)} for lab, (_, w, _), m in zip(labels, carriers, moves)]
    return wave, {"latent": np.round(z, 5).tolist(), "pitch": pitch, "carriers": rows}


def path_synth(space, a: str, b: str, pitch: float, steps: int = 5, n_iter: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Audio along the straight latent path from instrument ``a``'s centroid to ``b``'s:
    ``steps`` notes of 1 s, the point at ``t`` (0 -> 1) made from ``a``'s note (weight ``1 - t``)
    and ``b``'s (weight ``t``), both moved to it (:func:`edit_to_point`).

    Returns:
        ``(wave [steps * 16000], latents [steps, Z])``.

    Raises:
        DarkGANError: unknown instrument; ``steps`` < 2; pitch outside the space's range.
    """
    if steps < 2:
        raise DarkGANError("a path needs at least 2 steps")
    za, zb = space.instrument(a), space.instrument(b)
    _, pitch = space.check_point(za, pitch)
    pitch = round(pitch)
    na, nb = instrument_note(space, a, pitch), instrument_note(space, b, pitch)
    zs = np.stack([(1 - t) * za + t * zb for t in np.linspace(0, 1, steps)])
    waves = [edit_to_point(space, [(na, 1 - t, za), (nb, t, zb)], z, pitch, n_iter)[0]
             for t, z in zip(np.linspace(0, 1, steps), zs)]
    return np.concatenate(waves), zs
