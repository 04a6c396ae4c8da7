"""One consistent sampled instrument over a checkpoint's whole pitch range.

A checkpoint generates one note per (z, pitch, alpha); drawing z and the base attribute vector
independently for every key gives every key a different timbre. An instrument uses **one**
``(z, alpha)`` for all keys (the generator's pitch input is the only thing that changes), and
among ``candidates`` such pairs keeps the one whose neighbouring keys sound most alike:

    score(c) = mean_p [1 - cos(E(x_c,p), E(x_c,p+1))] + pitch_weight * off_pitch(c)

with ``E`` the teacher's embedding (``darkgan.teacher``, EfficientAT mn04, 16 kHz 1 s notes) and
``off_pitch`` the fraction of keys whose YIN f0 (de Cheveigne & Kawahara 2002, librosa) is more
than ``pitch_cents`` from the key or unstable (:func:`yin_screen`). ``candidates = 1`` is a plain
fixed z. With ``select = "played"`` the candidates are then compared again as a
musician hears them: each is assembled into an instrument (:func:`assemble`) and its keys over the
trained range are played from their roots (:func:`played_consistency`; the screen above chose
among generated roots only, and the keys between roots are re-pitched copies); the candidate with
the lowest ``played + pitch_weight * dropped`` wins (``dropped``: the fraction of roots left
unpitched after repair; off-pitch roots that repair and retune fix no longer count, their cost in
timbre is in ``played``). With ``select = "path"`` each root may come from another candidate: the
chain of in-tune roots with the least neighbour distance, anchored to the winner, is found by
dynamic programming (:func:`path_sources`; pYIN checks the chosen roots, the search repeats
without the rejected ones). With ``repair``, a key
still off-pitch in the winner takes the in-tune note of that key from another candidate that is
nearest (teacher embedding) to the winner's neighbouring keys. Then every key's remaining YIN
error up to ``retune_max_cents`` is corrected by resampling (what a sampler's per-sample pitch
correction does, baked into the sample); a sampled key still unpitched or gliding is dropped (its
keys play the nearest kept sample), and keys are levelled to one loudness
(:func:`~darkgan.instrument.loops.normalise_levels`). Measured: docs/instrument.md.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from darkgan.data.magif import SAMPLE_RATE
from darkgan.errors import DarkGANError
from darkgan.instrument.config import InstrumentConfig
from darkgan.instrument.loops import (crossfade_loop, find_loop, normalise_levels, retune, velocity_layers,
                                      velocity_ranges)


@dataclass
class Instrument:
    """A sampled instrument: one sample per (velocity layer, key).

    Attributes:
        name: a file-name-safe name.
        pitches: ``[P]`` MIDI keys that have a generated sample (the root keys).
        samples: ``[V, P, N]`` float32 at ``sample_rate`` (16 kHz), peak <= 1.
        vel_ranges: ``V`` inclusive MIDI velocity ranges, softest first.
        key_ranges: ``P`` inclusive MIDI key ranges each sample plays (edges stretched by
            ``extend`` semitones).
        loops: ``[P, 2]`` int64 ``(start, end)`` half-open sample indices, or ``None`` (one-shot).
        release_s: release time after note-off (seconds).
        info: provenance (checkpoint, attributes, like, seed, candidate scores, YIN cents).
    """

    name: str
    pitches: np.ndarray
    samples: np.ndarray
    vel_ranges: list
    key_ranges: list
    loops: np.ndarray | None
    release_s: float
    sample_rate: int = SAMPLE_RATE
    info: dict = field(default_factory=dict)

    def key_index(self, pitch: int) -> int:
        """Index of the sample that plays MIDI ``pitch`` (-1 when no zone covers it)."""
        for i, (lo, hi) in enumerate(self.key_ranges):
            if lo <= pitch <= hi:
                return i
        return -1

    def layer_index(self, velocity: int) -> int:
        """Index of the velocity layer of MIDI ``velocity`` (0..127)."""
        for i, (lo, hi) in enumerate(self.vel_ranges):
            if lo <= velocity <= hi:
                return i
        return len(self.vel_ranges) - 1

    @property
    def playable(self) -> tuple[int, int]:
        """``(lo, hi)`` MIDI keys any zone covers."""
        return self.key_ranges[0][0], self.key_ranges[-1][1]


def yin_screen(waves: np.ndarray, pitches: np.ndarray, sr: int = SAMPLE_RATE) -> tuple[np.ndarray, np.ndarray]:
    """Fast pitch screen of notes ``waves [n, N]`` against MIDI ``pitches [n]``.

    librosa.yin (de Cheveigne & Kawahara 2002; frame 2048, hop 256, band MIDI 38..76 as the
    project's pYIN tracker) over 0.1-0.85 s; each frame's error from the key is folded into one
    octave ([-600, 600) cents: YIN's own octave jumps do not count). ~10 ms a note; the reported
    accuracy uses pYIN (:func:`darkgan.generation.pitch.estimate_f0`), ~50x slower.

    Returns:
        ``(cents [n], stability [n])``: the median folded error (NaN for a silent note) and the
        fraction of frames within 50 cents of that median (a gliding or noisy note scores low).
    """
    import librosa

    x = np.asarray(waves, dtype=np.float32)[:, int(0.1 * sr):int(0.85 * sr)]
    f0 = librosa.yin(x, fmin=librosa.midi_to_hz(38), fmax=librosa.midi_to_hz(76), sr=sr, frame_length=2048,
                     hop_length=256, center=False)
    ref = librosa.midi_to_hz(np.asarray(pitches, dtype=np.float64))[:, None]
    folded = np.mod(1200 * np.log2(f0 / ref) + 600, 1200) - 600
    med = np.median(folded, axis=1)
    stability = np.mean(np.abs(folded - med[:, None]) <= 50, axis=1)
    silent = np.sqrt((x ** 2).mean(1)) < 1e-3
    med[silent], stability[silent] = np.nan, 0.0
    return med, stability


def neighbour_distance(emb: np.ndarray) -> np.ndarray:
    """Cosine distances ``1 - cos`` between consecutive rows of ``emb [P, D]`` -> ``[P - 1]``."""
    e = np.asarray(emb, dtype=np.float64)
    e = e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-12)
    return 1.0 - (e[1:] * e[:-1]).sum(1)


def _teacher(model):
    if model.has_attributes:
        return model.teacher
    from darkgan.teacher import load_teacher

    return load_teacher()


def _candidate_inputs(model, attributes, like, like_data, scale, seeds, mid_pitch, steer: str = "data"):
    """``(z [C, Z] float32, alpha [C, K] or None, sources [C])`` for the candidate seeds; the
    attributes not named follow the named ones with ``steer="data"`` (``attribute_vector``)."""
    z = np.stack([np.random.default_rng([int(s), 0]).standard_normal(model.latent_dim) for s in seeds])
    if not model.has_attributes:
        if attributes or like is not None:
            from darkgan.generation.api import BASELINE

            raise DarkGANError(BASELINE)
        return z.astype(np.float32), None, ["none"] * len(seeds)
    if like is not None:
        base = model.like_attributes(like, like_data)
        a = model.attribute_vector(attributes, base=base, scale=scale, steer=steer)
        return z.astype(np.float32), np.repeat(a[None], len(seeds), 0), [f"like:{like}"] * len(seeds)
    a = np.stack([model.attribute_vector(attributes, seed=int(s), pitch=mid_pitch, scale=scale, steer=steer)
                  for s in seeds])
    return z.astype(np.float32), a, [f"bank draw, seed {int(s)}" for s in seeds]


def _generate_candidates(model, z, alpha, pitches, progress: bool) -> np.ndarray:
    """``[C, P, N]`` notes: candidate c's (z, alpha) at every key."""
    from tqdm import tqdm

    out = []
    for c in tqdm(range(len(z)), desc="instrument", unit="candidate", disable=not progress):
        zc = np.repeat(z[c:c + 1], len(pitches), 0)
        ac = None if alpha is None else alpha[c]
        out.append(model.generate_batch(zc, pitches, ac).numpy())
    return np.stack(out)


def score_candidates(model, notes: np.ndarray, pitches: np.ndarray, cfg: InstrumentConfig) -> dict:
    """Consistency and pitch screen of candidates ``notes [C, P, N]``: a dict of ``[C]`` lists
    (``consistency``, ``off_pitch``, ``score``) and ``cents [C, P]``."""
    import torch

    c, p, n = notes.shape
    with torch.inference_mode():
        emb = _teacher(model).embedding(torch.from_numpy(notes.reshape(c * p, n)), grad=False).cpu().numpy()
    cons = np.array([neighbour_distance(e).mean() for e in emb.reshape(c, p, -1)])
    cents, stab = yin_screen(notes.reshape(c * p, n), np.tile(pitches, c))
    cents, stab = cents.reshape(c, p), stab.reshape(c, p)
    cents[stab < cfg.min_stability] = np.nan  # gliding/noisy: neither in tune nor fixable by retune
    off = np.mean(~(np.abs(cents) <= cfg.pitch_cents), axis=1)
    return {"consistency": cons.tolist(), "off_pitch": off.tolist(), "score": (cons + cfg.pitch_weight * off).tolist(),
            "cents": cents, "embedding": emb.reshape(c, p, -1)}


def verify_pitch(notes: np.ndarray, pitches: np.ndarray, scores: dict, best, tolerance: float = 100.0) -> list:
    """Re-check the chosen roots that the YIN screen passed with pYIN (the project's reported
    tracker, :func:`darkgan.generation.pitch.estimate_f0`): a root where the two disagree by more
    than ``tolerance`` cents (typically pYIN hears an octave low what YIN, frame by frame, placed
    on the key) or pYIN finds no pitch is marked unpitched in ``scores["cents"]`` (in place), and
    so are the other candidates' notes of that root that fail the same check, so that key repair
    (or the path search) takes a note both trackers agree on. ~50 ms of pYIN per note checked, only
    the chosen roots and the alternatives of the rejected ones; a note is checked once
    (``scores["pyin_checked"]``). pYIN: Mauch & Dixon, ICASSP 2014; YIN: de Cheveigne &
    Kawahara, JASA 2002.

    Args:
        notes: ``[C, P, N]`` candidates' root notes (16 kHz). pitches: ``[P]`` MIDI roots.
        scores: :func:`score_candidates`' dict; its ``cents [C, P]`` (YIN, cents) is updated.
        best: the winning candidate (int), or the candidate of each root (``[P]``, a path).
        tolerance: allowed YIN-pYIN disagreement (cents).

    Returns:
        The MIDI roots whose chosen note was rejected (list of int).
    """
    from darkgan.generation.pitch import estimate_f0

    cents = scores["cents"]
    checked = scores.setdefault("pyin_checked", np.zeros(cents.shape, dtype=bool))
    chosen = np.broadcast_to(np.asarray(best, dtype=np.int64), (len(pitches),))

    def reject(cands: np.ndarray, roots: np.ndarray) -> None:
        todo = ~checked[cands, roots]
        cands, roots = cands[todo], roots[todo]
        if not len(roots):
            return
        checked[cands, roots] = True
        f0 = estimate_f0(notes[cands, roots])
        pyin = 1200 * np.log2(f0 / (440.0 * 2 ** ((pitches[roots] - 69) / 12)))
        bad = ~(np.abs(pyin - cents[cands, roots]) <= tolerance)
        cents[cands[bad], roots[bad]] = np.nan

    roots = np.flatnonzero(np.isfinite(cents[chosen, np.arange(len(pitches))]))
    reject(chosen[roots], roots)
    rejected = [r for r in roots if np.isnan(cents[chosen[r], r])]
    alt = [(c, r) for r in rejected for c in range(len(notes)) if c != chosen[r] and np.isfinite(cents[c, r])]
    if alt:
        reject(np.array([c for c, _ in alt]), np.array([r for _, r in alt]))
    return [int(pitches[r]) for r in rejected]


def path_sources(scores: dict, best: int, cfg: InstrumentConfig) -> tuple[np.ndarray, float]:
    """The candidate of each root that makes the instrument's neighbouring roots most alike:
    Viterbi over roots (states = candidates) minimising

        mean_p d(E[c_p, p], E[c_p+1, p+1]) + (1/P) sum_p [path_anchor * d(E[c_p, p], E[best, p])
                                                          + pitch_weight * off(c_p, p)]

    with ``d = 1 - cos`` of the teacher embeddings ``scores["embedding"] [C, P, D]`` and ``off`` 1
    where ``scores["cents"]`` is off-pitch (> ``pitch_cents``, unstable or pYIN-rejected). With one
    candidate it is that candidate. Exact (dynamic programming, O(P C^2)).

    Returns:
        ``(sources [P] int64, the path's cost)``.
    """
    emb = scores["embedding"]
    unit = emb / (np.linalg.norm(emb, axis=2, keepdims=True) + 1e-12)
    c, p = unit.shape[:2]
    off = ~(np.abs(scores["cents"]) <= cfg.pitch_cents)
    unary = (cfg.path_anchor * (1.0 - np.einsum("cpd,pd->cp", unit, unit[best])) + cfg.pitch_weight * off) / p
    cost, back = unary[:, 0].copy(), []
    for q in range(1, p):
        tot = cost[:, None] + (1.0 - unit[:, q - 1] @ unit[:, q].T) / max(p - 1, 1)  # [from, to]
        back.append(np.argmin(tot, axis=0))
        cost = tot[back[-1], np.arange(c)] + unary[:, q]
    src = [int(np.argmin(cost))]
    for b in reversed(back):
        src.append(int(b[src[-1]]))
    return np.asarray(src[::-1], dtype=np.int64), float(cost.min())


def _path(notes, pitches, scores: dict, best: int, cfg: InstrumentConfig) -> tuple[np.ndarray, float, list]:
    """:func:`path_sources` with pYIN's check of the chosen roots (``verify_pitch``), searched
    again until every chosen root passes (at most 4 rounds): ``(sources [P], cost, rejected roots)``."""
    rejected: list = []
    for _ in range(4):
        src, cost = path_sources(scores, best, cfg)
        if not cfg.verify_pitch:
            break
        new = verify_pitch(notes, pitches, scores, src)
        if not new:
            break
        rejected += new
    return src, cost, rejected


def repair_keys(notes: np.ndarray, scores: dict, best: int, cfg: InstrumentConfig) -> tuple[np.ndarray, np.ndarray]:
    """The chosen candidate's notes ``[P, N]`` with each off-pitch key replaced by the in-tune note
    of that key (from another candidate) nearest in teacher embedding (cosine) to the chosen
    candidate's neighbouring keys. Returns ``(notes [P, N], source candidate per key [P])``."""
    cents, emb = scores["cents"], scores["embedding"]
    ok = np.abs(cents) <= cfg.pitch_cents
    src = np.full(notes.shape[1], best, dtype=np.int64)
    unit = emb / (np.linalg.norm(emb, axis=2, keepdims=True) + 1e-12)
    for p in np.flatnonzero(~ok[best]):
        good = np.flatnonzero(ok[:, p])
        if not len(good):
            continue
        nb = [q for q in (p - 1, p + 1) if 0 <= q < notes.shape[1]]
        target = unit[best, nb].mean(0)
        src[p] = good[np.argmax(unit[good, p] @ target)]
    return notes[src, np.arange(notes.shape[1])], src


def _retune(keys: np.ndarray, cents: np.ndarray, cfg: InstrumentConfig) -> tuple[np.ndarray, np.ndarray]:
    """Keys ``[P, N]`` re-pitched by their YIN error where ``|cents| <= retune_max_cents``, and the
    error left ``[P]`` (0 where corrected; NaN: unstable or unpitched keys stay as they are)."""
    fix = np.abs(cents) <= cfg.retune_max_cents
    out = np.stack([retune(k, c) if f else k for k, c, f in zip(keys, cents, fix)])
    return out, np.where(fix, 0.0, cents)


def _loops(notes: np.ndarray, pitches: np.ndarray, cents: np.ndarray, cfg: InstrumentConfig):
    """``([P, 2] loops or None, f0 [P] Hz)``: the measured f0 where YIN is near the key."""
    f0 = 440.0 * 2 ** ((pitches - 69) / 12)
    near = np.abs(cents) < 100
    f0 = np.where(near, f0 * 2 ** (np.nan_to_num(cents) / 1200), f0)
    if not cfg.loop:
        return None, f0
    loops = [find_loop(w, f, cfg.loop_min_s, cfg.loop_max_s, cfg.loop_end_s, cfg.crossfade_s)
             for w, f in zip(notes, f0)]
    return np.asarray(loops, dtype=np.int64), f0


def key_ranges(pitches: np.ndarray, extend: int, lo: int | None = None,
               hi: int | None = None) -> list[tuple[int, int]]:
    """Each key to its nearest sample root (ties go up); the lowest zone reaches down to
    ``lo - extend``, the highest up to ``hi + extend`` (``lo``/``hi``: the trained range, default
    the lowest/highest root; clipped to 0..127): ``[(lokey, hikey)]`` per sample."""
    p = [int(x) for x in pitches]
    ranges = [((p[i - 1] + r) // 2 + 1 if i else r, (r + p[i + 1]) // 2 if i + 1 < len(p) else r)
              for i, r in enumerate(p)]
    ranges[0] = (max(0, min(p[0], p[0] if lo is None else lo) - extend), ranges[0][1])
    ranges[-1] = (ranges[-1][0], min(127, max(p[-1], p[-1] if hi is None else hi) + extend))
    return ranges


def build_instrument(model, attributes: Mapping[str, float] | None = None, like: str | os.PathLike | None = None,
                     like_data=None, config: InstrumentConfig | None = None, seed: int = 0, scale: str = "user",
                     name: str = "darkgan", progress: bool = False) -> Instrument:
    """Build one consistent instrument with ``model`` (a :class:`darkgan.DarkGAN`).

    Args:
        attributes, like, like_data, scale: the description, as in :meth:`DarkGAN.generate`.
        config: :class:`InstrumentConfig` (default preset when None).
        seed: seeds the candidates (the same seed gives the same instrument).
        name: the instrument's name (file-name safe: letters, digits, ``-_``).
        progress: show a tqdm bar over the candidates.

    Returns:
        An :class:`Instrument` with ``[V, P, 16000]`` samples, P = the trained keys every
        ``key_spacing`` semitones (and the highest).

    Raises:
        DarkGANError: bad attributes/like (as ``generate``), a bad name, a config out of range.
    """
    import re

    cfg = (config or InstrumentConfig()).validate()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", name or ""):
        raise DarkGANError(f"instrument name {name!r}: use 1-64 letters, digits, '-' or '_'")
    lo, hi = model.pitch_range
    pitches = np.unique(np.r_[np.arange(lo, hi + 1, cfg.key_spacing), hi]).astype(np.int64)
    seeds = np.random.default_rng([int(seed), 2]).integers(0, 2 ** 62, size=cfg.candidates)
    mid = int(pitches[len(pitches) // 2])
    z, alpha, sources = _candidate_inputs(model, attributes, like, like_data, scale, seeds, mid, cfg.steer)
    notes = _generate_candidates(model, z, alpha, pitches, progress)
    scores = score_candidates(model, notes, pitches, cfg)
    best = int(np.argmin(scores["score"]))
    notes, scores, best, optimised = _optimise(model, notes, z, alpha, pitches, scores, best, cfg, seed)
    sources.append(f"optimised from candidate {optimised['from']}" if optimised else "")
    played, selection, path = None, scores["score"], None
    if cfg.select == "path" and len(notes) > 1:
        path, path_cost, rejected = _path(notes, pitches, scores, best, cfg)
        inst = assemble(notes, pitches, scores, path, cfg, (lo, hi), name)
        inst.info = {**_provenance(model, attributes, scale, like, seed, seeds, sources, scores, best, cfg, selection),
                     "path": path.tolist(), "path_cost": path_cost, "pyin_rejected_roots": rejected, **inst.info,
                     "optimised": optimised}
        return inst
    if cfg.select == "played" and len(notes) > 1:
        insts = [assemble(notes, pitches, scores, c, cfg, (lo, hi), name) for c in range(len(notes))]
        played = played_consistency(_teacher(model), insts, lo, hi)
        dropped = np.array([len(i.info["dropped_roots"]) / len(pitches) for i in insts])
        selection = (played + cfg.pitch_weight * dropped).tolist()
        best = int(np.argmin(selection))
    rejected = verify_pitch(notes, pitches, scores, best) if cfg.verify_pitch else []
    if played is not None and not rejected:  # the winner as assembled and measured above
        inst, played_final = insts[best], float(played[best])
    else:
        inst = assemble(notes, pitches, scores, best, cfg, (lo, hi), name)
        played_final = None if played is None else float(played_consistency(_teacher(model), [inst], lo, hi)[0])
    inst.info = {**_provenance(model, attributes, scale, like, seed, seeds, sources, scores, best, cfg, selection),
                 "played_consistency": None if played is None else played.tolist(),
                 "played_consistency_final": played_final, "pyin_rejected_roots": rejected,
                 "dropped_at_selection": None if played is None else (dropped * len(pitches)).round().astype(int).tolist(),
                 **inst.info, "optimised": optimised}
    return inst


def _provenance(model, attributes, scale, like, seed, seeds, sources, scores, best, cfg, selection) -> dict:
    """The ``instrument.json`` provenance of an export: inputs, candidates and their scores."""
    return {"checkpoint": str(model.checkpoint_path), "attributes": dict(attributes or {}), "scale": scale,
            "like": None if like is None else str(like), "seed": int(seed), "chosen": best, "select": cfg.select,
            "candidate_seeds": [int(s) for s in seeds], "base": sources[best],
            "consistency": scores["consistency"], "off_pitch": scores["off_pitch"], "score": scores["score"],
            "selection_score": selection}


def assemble(notes: np.ndarray, pitches: np.ndarray, scores: dict, chosen, cfg: InstrumentConfig,
             trained: tuple[int, int], name: str = "darkgan") -> Instrument:
    """Candidate ``chosen`` of ``notes [C, P, N]`` (roots ``pitches [P]``, screened by
    :func:`score_candidates`; or ``chosen [P]``, a candidate per root from :func:`path_sources`,
    then without key repair) made into an :class:`Instrument`: key repair, retune, dropping
    unpitched roots, velocity layers, levels, loops; zones over ``trained = (lo, hi)`` MIDI keys
    stretched by ``cfg.extend``. ``info`` holds the per-key provenance only."""
    k = _final_keys(notes, pitches, scores, chosen, cfg)
    loops, f0 = _loops(k["keys"], k["pitches"], k["cents_left"], cfg)
    layers, gains = normalise_levels(velocity_layers(k["keys"], f0, cfg.velocities, cfg.soft_harmonics))
    if loops is not None:
        xf = int(round(cfg.crossfade_s * SAMPLE_RATE))
        for p, (s, e) in enumerate(loops):
            layers[:, p] = crossfade_loop(layers[:, p], int(s), int(e), min(xf, int(s)))
    info = {"dropped_roots": k["dropped"], "key_source": k["src"].tolist(), "yin_cents": k["cents"].tolist(),
            "yin_cents_after_retune": k["cents_left"].tolist(), "f0_hz": f0.tolist(),
            "key_gain_db": (20 * np.log10(gains)).tolist(), "consistency_final": k["consistency"]}
    return Instrument(name, k["pitches"], layers, velocity_ranges(cfg.velocities),
                      key_ranges(k["pitches"], cfg.extend, *trained), loops, cfg.release_s, SAMPLE_RATE, info)


def played_keys(inst: Instrument, lo: int, hi: int, velocity: int = 127, seconds: float = 1.0) -> np.ndarray:
    """Every MIDI key ``lo..hi`` of ``inst`` as a player plays it (:func:`darkgan.instrument.midi.voice`,
    held ``seconds``): ``[hi - lo + 1, seconds * sample_rate]`` float32.

    Raises:
        DarkGANError: a key in ``lo..hi`` outside every zone of ``inst``."""
    from darkgan.instrument.midi import voice

    n = int(round(seconds * inst.sample_rate))
    return np.stack([voice(inst, int(p), velocity, seconds)[:n] for p in range(lo, hi + 1)]).astype(np.float32)


def played_consistency(teacher, insts: list, lo: int, hi: int) -> np.ndarray:
    """Mean neighbouring-key cosine distance (teacher embedding) of each instrument's keys
    ``lo..hi`` as played (:func:`played_keys`, velocity 127, 1 s): ``[len(insts)]``. The measure
    of docs/instrument.md (``benchmarks/instrument.py``); ``teacher`` a
    :class:`darkgan.teacher.base.Teacher` (EfficientAT mn04 embedding).

    Raises:
        DarkGANError: as :func:`played_keys`."""
    import torch

    keys = np.stack([played_keys(i, lo, hi) for i in insts])  # [C, K, N]
    with torch.inference_mode():
        emb = teacher.embedding(torch.from_numpy(keys.reshape(-1, keys.shape[-1])), grad=False).cpu().numpy()
    return np.array([neighbour_distance(e).mean() for e in emb.reshape(len(insts), keys.shape[1], -1)])


def _optimise(model, notes, z, alpha, pitches, scores: dict, best: int, cfg: InstrumentConfig, seed: int):
    """With ``cfg.optimise_steps``, the winner's per-root latent optimisation
    (:func:`darkgan.instrument.optimise.optimise_roots`) as one more candidate, scored like the
    others: ``(notes [C+1, P, N], scores, best, info)``; unchanged with ``info = None`` when off."""
    if not cfg.optimise_steps or len(pitches) < 2:
        return notes, scores, best, None
    from darkgan.instrument.optimise import optimise_roots

    opt, _, info = optimise_roots(model, _teacher(model), z[best], None if alpha is None else alpha[best], pitches,
                                  cfg.optimise_steps, cfg.optimise_lr, cfg.optimise_target, cfg.optimise_z_weight,
                                  cfg.optimise_spread, seed=seed)
    new = score_candidates(model, opt[None], pitches, cfg)
    merged = {k: (scores[k] + new[k] if isinstance(scores[k], list) else np.concatenate([scores[k], new[k]]))
              for k in scores}
    return np.concatenate([notes, opt[None]]), merged, int(np.argmin(merged["score"])), {"from": best, **info}


def _final_keys(notes, pitches, scores, best: int, cfg: InstrumentConfig) -> dict:
    """The winner's keys after repair, retune and dropping unpitched roots: a dict of ``keys
    [P', N]``, ``pitches``, ``src`` (candidate per key), ``cents`` (YIN), ``cents_left`` (after
    retune), ``dropped`` (roots left out) and ``consistency`` (teacher, before retune)."""
    if np.ndim(best):  # a path: the candidate of each root (path_sources)
        src = np.asarray(best, dtype=np.int64)
        keys = notes[src, np.arange(len(pitches))]
    else:
        keys, src = repair_keys(notes, scores, best, cfg) if cfg.repair else (notes[best], np.full(len(pitches), best))
    cents = scores["cents"][src, np.arange(len(pitches))]
    keys, cents_left = _retune(keys, cents, cfg)
    keep = np.isfinite(cents_left)
    if not (cfg.drop_unpitched and keep.any()):
        keep[:] = True
    cons = float(neighbour_distance(scores["embedding"][src[keep], np.flatnonzero(keep)]).mean()) if keep.sum() > 1 \
        else 0.0
    return {"keys": keys[keep], "pitches": pitches[keep], "src": src[keep], "cents": cents[keep],
            "cents_left": cents_left[keep], "dropped": pitches[~keep].tolist(), "consistency": cons}
