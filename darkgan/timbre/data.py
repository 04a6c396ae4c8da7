"""The timbre-space dataset: single notes of the rated instruments rendered from every default
SoundFont (through :func:`darkgan.data.render.render_note`, the datasets' own renderer), plus
"novel" instruments that the regulariser never sees (Esling et al. 2018, Sec. 4.1: single notes
of the rated instruments over a pitch range all of them cover, at several velocities).

Files in the data folder ``DIR`` (all written atomically):
``DIR/notes.npz``: ``wave`` int16 ``[N, 16000]`` (the first second of each 4 s render),
``instrument`` (name), ``program``, ``font``, ``pitch``, ``velocity``, ``rated`` (bool),
``test`` (bool, a seeded 10 % of the rated notes held out of training);
``DIR/frames-<front end>.npz``: ``logmag`` float16 ``[N, K, F]`` (K frames a note, evenly spaced
over 0.05-0.95 s), ``freqs`` ``[F]``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from darkgan.data.constants import N_SAMPLES
from darkgan.errors import DataError
from darkgan.utils.io import folder_lock, save_npz

#: Novel (unrated) instruments projected into the space: GM program -> name.
NOVEL_PROGRAMS = {24: "NylonGuitar", 19: "ChurchOrgan", 12: "Marimba", 46: "Harp", 58: "Tuba",
                  72: "Piccolo", 52: "ChoirAahs", 81: "SawLead"}
FRAME_SPAN = (0.05, 0.95)  #: seconds: frames are taken evenly over this part of the 1 s crop


@dataclass
class DataConfig:
    """What to render and how many frames a note gives.

    Attributes:
        pitches: MIDI pitches (every rated instrument covers 60-71, C4-B4).
        velocities: MIDI velocities.
        soundfonts: font file names (default: the three default Debian GM fonts).
        novel_velocity: velocity of the novel-instrument notes (rendered from the first font).
        frames_per_note: K spectral frames a note contributes.
        test_fraction: share of rated notes held out (seeded).
        seed: split seed.
    """

    pitches: tuple[int, ...] = tuple(range(60, 72))
    velocities: tuple[int, ...] = (64, 100, 127)
    soundfonts: tuple[str, ...] = ("FluidR3_GM.sf2", "MuseScore_General.sf3", "TimGM6mb.sf2")
    novel_velocity: int = 100
    frames_per_note: int = 8
    test_fraction: float = 0.1
    seed: int = 0


def _font_paths(names) -> list[Path]:
    from darkgan.paths import find_soundfont

    out = []
    for n in names:
        p = find_soundfont(n)
        if p is None:
            raise DataError(f"SoundFont {n} not installed (see scripts/setup.sh)")
        out.append(p)
    return out


def _note_grid(cfg: DataConfig, ratings) -> list[tuple]:
    grid = [(name, prog, fi, p, v, True) for name, prog in zip(ratings.instruments, ratings.programs)
            for fi in range(len(cfg.soundfonts)) for p in cfg.pitches for v in cfg.velocities]
    grid += [(name, prog, 0, p, cfg.novel_velocity, False) for prog, name in NOVEL_PROGRAMS.items()
             for p in cfg.pitches]
    return grid


def render_notes(out: str | os.PathLike, cfg: DataConfig, ratings, progress: bool = True) -> Path:
    """Render the notes into ``out/notes.npz`` (kept if it already exists with the same grid).

    Returns:
        The path of ``notes.npz``.

    Raises:
        DataError: a missing SoundFont; a rendered note that is silent in its first second.
    """
    from tqdm import tqdm

    from darkgan.data.render import render_note

    out = Path(out)
    path = out / "notes.npz"
    grid = _note_grid(cfg, ratings)
    if path.exists() and len(np.load(path)["pitch"]) == len(grid):
        return path
    fonts = _font_paths(cfg.soundfonts)
    waves = np.zeros((len(grid), N_SAMPLES), dtype=np.int16)
    with folder_lock(out):
        for i, (name, prog, fi, p, v, _) in enumerate(tqdm(grid, desc="render", disable=not progress)):
            w = render_note(fonts[fi], prog, p, v)[:N_SAMPLES]
            if np.sqrt(np.mean(w.astype(np.float64) ** 2)) < 1e-4:
                raise DataError(f"{cfg.soundfonts[fi]}: program {prog} pitch {p} velocity {v} renders silence")
            waves[i] = np.clip(np.rint(w * 32768), -32768, 32767).astype(np.int16)
        rated = np.array([g[5] for g in grid])
        rng = np.random.default_rng(cfg.seed)
        test = rated & (rng.random(len(grid)) < cfg.test_fraction)
        save_npz(path, wave=waves, instrument=np.array([g[0] for g in grid]),
                 program=np.array([g[1] for g in grid]), font=np.array([cfg.soundfonts[g[2]] for g in grid]),
                 pitch=np.array([g[3] for g in grid]), velocity=np.array([g[4] for g in grid]),
                 rated=rated, test=test)
    return path


def load_notes(folder: str | os.PathLike) -> dict[str, np.ndarray]:
    """``notes.npz`` as a dict of arrays (``wave`` converted to float32 in [-1, 1)).

    Raises:
        DataError: the folder holds no ``notes.npz``.
    """
    path = Path(folder) / "notes.npz"
    if not path.exists():
        raise DataError(f"{folder}: no notes.npz (run `darkgan timbre-space train --data {folder}` to render it)")
    with np.load(path) as z:
        d = {k: z[k] for k in z.files}
    d["wave"] = d["wave"].astype(np.float32) / 32768.0
    return d


def frame_positions(n_frames: int, k: int) -> np.ndarray:
    """Indices ``[k]`` of ``k`` frames evenly spaced over :data:`FRAME_SPAN` of an ``n_frames``
    long analysis of a 1 s note."""
    t = np.linspace(FRAME_SPAN[0], FRAME_SPAN[1], k)
    return np.clip(np.rint(t * (n_frames - 1)), 0, n_frames - 1).astype(int)


def frames(folder: str | os.PathLike, front_end: str, k: int, progress: bool = True) -> np.ndarray:
    """``[N, K, F]`` float32 log-magnitude frames of every note (cached in ``frames-<fe>.npz``)."""
    from tqdm import tqdm

    from darkgan.timbre.frontends import get_front_end

    folder = Path(folder)
    path = folder / f"frames-{front_end}.npz"
    notes = load_notes(folder)
    if path.exists():
        with np.load(path) as z:
            if z["logmag"].shape[:2] == (len(notes["pitch"]), k):
                return z["logmag"].astype(np.float32)
    fe = get_front_end(front_end)
    out = None
    for i, w in enumerate(tqdm(notes["wave"], desc=f"analyse {front_end}", disable=not progress)):
        spec = fe.analyze(w)
        if out is None:
            out = np.zeros((len(notes["wave"]), k, spec.shape[0]), dtype=np.float16)
        out[i] = spec[:, frame_positions(spec.shape[1], k)].T
    save_npz(path, logmag=out, freqs=fe.freqs)
    return out.astype(np.float32)
