"""Instrument hit rate: does the teacher name the instrument of a rendered General MIDI note?

Strict state-dict loading proves a tagger's architecture; only a check on real notes proves its
preprocessing (resampling, pre-emphasis, power spectrum, mel bands, level). This module holds
the documented program -> acceptable-classes mapping used by ``benchmarks/teacher_hit_rate.py``
and ``tests/test_teacher_efficientat.py``.

A prediction is a *hit* when one of the top-k classes (by probability, all classes, "Music"
included) is the instrument's own AudioSet class or one of its parents/family classes in the
AudioSet ontology (e.g. "Trumpet" or "Brass instrument" for GM 56). "Music" and "Musical
instrument" are never hits; as they are top-1 for almost every note, "top-1 specific" also
reports the best class once those two are removed from the ranking. Programs are 0-based General MIDI numbers; every GM program listed
has an instrument with its own AudioSet class.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

_KEYS = ("Keyboard (musical)",)
_PLUCK = ("Plucked string instrument",)
_GUITAR = ("Guitar",) + _PLUCK
_BOWED = ("Bowed string instrument", "String section")
_BRASS = ("Brass instrument",)
_WIND = ("Wind instrument, woodwind instrument",)
_MALLET = ("Mallet percussion", "Percussion")

#: GM program (0-based) -> (GM name, acceptable AudioSet display names; first = own class).
PROGRAM_CLASSES: dict[int, tuple[str, tuple[str, ...]]] = {
    0: ("Acoustic Grand Piano", ("Piano",) + _KEYS),
    4: ("Electric Piano 1", ("Electric piano", "Piano") + _KEYS),
    6: ("Harpsichord", ("Harpsichord",) + _KEYS),
    9: ("Glockenspiel", ("Glockenspiel",) + _MALLET),
    11: ("Vibraphone", ("Vibraphone",) + _MALLET),
    12: ("Marimba", ("Marimba, xylophone",) + _MALLET),
    13: ("Xylophone", ("Marimba, xylophone",) + _MALLET),
    16: ("Drawbar Organ", ("Organ", "Hammond organ", "Electronic organ") + _KEYS),
    19: ("Church Organ", ("Organ", "Electronic organ") + _KEYS),
    21: ("Accordion", ("Accordion",)),
    22: ("Harmonica", ("Harmonica",)),
    24: ("Acoustic Guitar (nylon)", ("Acoustic guitar",) + _GUITAR),
    25: ("Acoustic Guitar (steel)", ("Acoustic guitar",) + _GUITAR),
    27: ("Electric Guitar (clean)", ("Electric guitar",) + _GUITAR),
    30: ("Distortion Guitar", ("Electric guitar",) + _GUITAR),
    33: ("Electric Bass (finger)", ("Bass guitar",) + _GUITAR),
    34: ("Electric Bass (pick)", ("Bass guitar",) + _GUITAR),
    40: ("Violin", ("Violin, fiddle",) + _BOWED),
    42: ("Cello", ("Cello",) + _BOWED),
    43: ("Contrabass", ("Double bass",) + _BOWED),
    46: ("Orchestral Harp", ("Harp",) + _PLUCK),
    47: ("Timpani", ("Timpani", "Drum", "Percussion")),
    52: ("Choir Aahs", ("Choir", "Singing")),
    56: ("Trumpet", ("Trumpet",) + _BRASS),
    57: ("Trombone", ("Trombone",) + _BRASS),
    60: ("French Horn", ("French horn",) + _BRASS),
    65: ("Alto Sax", ("Saxophone",) + _WIND),
    66: ("Tenor Sax", ("Saxophone",) + _WIND),
    71: ("Clarinet", ("Clarinet",) + _WIND),
    73: ("Flute", ("Flute",) + _WIND),
    80: ("Lead 1 (square)", ("Synthesizer",)),
    81: ("Lead 2 (sawtooth)", ("Synthesizer",)),
    104: ("Sitar", ("Sitar",) + _PLUCK),
    105: ("Banjo", ("Banjo",) + _PLUCK),
    109: ("Bagpipe", ("Bagpipes",)),
}

#: Classes every note scores high on; "top-1 specific" ranks without them.
GENERIC = ("Music", "Musical instrument")

#: Pitches of the DarkGAN data (MIDI 44..70) and the subset used by the CI test.
PITCHES = tuple(range(44, 71))
CI_PITCHES = (44, 53, 62, 70)


def acceptable_indices(class_names: Sequence[str], program: int) -> set[int]:
    """Output indices counted as a hit for ``program`` (names missing from ``class_names``, e.g.
    in YAMNet's 521-class list, are ignored).

    Raises:
        KeyError: ``program`` is not in :data:`PROGRAM_CLASSES`.
    """
    wanted = set(PROGRAM_CLASSES[program][1])
    return {i for i, n in enumerate(class_names) if n in wanted}


@dataclass
class HitRates:
    """Per-program and overall hit rates of one teacher."""

    teacher: str
    per_program: dict[int, tuple[float, float, float]]  # program -> (top-1, top-1 specific, top-5)
    top1: float
    top5: float
    n_notes: int
    top1_specific: float  # top-1 after removing "Music" and "Musical instrument" from the ranking
    top_classes: dict[int, list[str]]  # program -> most frequent specific top-1 class names

    def table(self) -> str:
        """Markdown table, one row a program, then the overall row."""
        lines = ["| program | GM name | top-1 | top-1 specific | top-5 | most frequent top-1 |",
                 "|---|---|---|---|---|---|"]
        for p, (t1, t1s, t5) in self.per_program.items():
            lines.append(f"| {p} | {PROGRAM_CLASSES[p][0]} | {t1:.2f} | {t1s:.2f} | {t5:.2f} | "
                         f"{', '.join(self.top_classes[p])} |")
        lines.append(f"| all | {len(self.per_program)} programs, {self.n_notes} notes | {self.top1:.3f} | "
                     f"{self.top1_specific:.3f} | {self.top5:.3f} | |")
        return "\n".join(lines)


def peak_normalized(x: np.ndarray, dbfs: float = -1.0) -> np.ndarray:
    """``x`` scaled to a peak of ``dbfs`` (silence returned unchanged)."""
    peak = float(np.abs(x).max())
    return x if peak < 1e-9 else (x * (10 ** (dbfs / 20) / peak)).astype(np.float32)


def render_notes(render: Callable[[int, int], np.ndarray], programs: Sequence[int], pitches: Sequence[int],
                 n_samples: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """Render every (program, pitch); returns ``waves [N, n_samples]`` (first second, peak
    -1 dBFS) and ``programs [N]``. Silent renders (pitch out of the preset's range) are dropped."""
    waves, progs = [], []
    for p in programs:
        for pitch in pitches:
            x = np.asarray(render(p, pitch), dtype=np.float32)[:n_samples]
            if np.abs(x).max() < 1e-4:
                continue
            waves.append(peak_normalized(x))
            progs.append(p)
    return np.stack(waves), np.asarray(progs)


def hit_rates(teacher, waves: np.ndarray, programs: np.ndarray, k: int = 5, batch: int = 64,
              logits_fn: Callable[[np.ndarray], np.ndarray] | None = None) -> HitRates:
    """Top-1 / top-``k`` hit rates of ``teacher`` on ``waves [N, T]`` labelled with GM ``programs [N]``.

    ``logits_fn`` (default ``teacher.logits``) lets tests score a deliberately broken pipeline.
    """
    fn = logits_fn or (lambda w: teacher.logits(w).cpu().numpy())
    logits = np.concatenate([fn(waves[i:i + batch]) for i in range(0, len(waves), batch)])
    order = np.argsort(-logits, axis=1)[:, :k]
    generic = [i for i, n in enumerate(teacher.class_names) if n in GENERIC]
    specific = logits.copy()
    specific[:, generic] = -np.inf
    best_specific = specific.argmax(axis=1)
    per, tops = {}, {}
    hits1, hits1s, hitsk = [], [], []
    for p in dict.fromkeys(programs.tolist()):
        ok = acceptable_indices(teacher.class_names, p)
        rows = np.flatnonzero(programs == p)
        h1 = [order[r, 0] in ok for r in rows]
        h1s = [best_specific[r] in ok for r in rows]
        hk = [bool(ok.intersection(order[r].tolist())) for r in rows]
        per[p] = (float(np.mean(h1)), float(np.mean(h1s)), float(np.mean(hk)))
        names, counts = np.unique([teacher.class_names[best_specific[r]] for r in rows], return_counts=True)
        tops[p] = [str(n) for n in names[np.argsort(-counts)][:2]]
        hits1 += h1
        hits1s += h1s
        hitsk += hk
    return HitRates(teacher.id, per, float(np.mean(hits1)), float(np.mean(hitsk)), len(waves),
                    float(np.mean(hits1s)), tops)
