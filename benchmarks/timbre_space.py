"""Timbre-space benchmarks (Esling et al. 2018, Secs. 4-5; issue 20's targets).

    python benchmarks/timbre_space.py train   --data DIR --runs RUNS [--front-ends stft,mel,cqt,nsgt]
                                              [--reg tsne:10 ...] [--loo nsgt:tsne:10 [--loo-steps N]]
    python benchmarks/timbre_space.py report  --data DIR --runs RUNS --out OUT [--notes 12]
                                              [--space RUN [--no-topology]] (descriptor study on this space)
                                              [--space RUN --diagnose] (which synthesis stage loses the instrument)
                                              [--space RUN --points [--variants held,carriers2,...]]
                                              (synthesis of latent points: held frame vs moved real notes)

``train`` (run it under the training lock) trains, for every front end, the unregularised VAE
(``train.reg_weight=0``) and one regularised VAE per ``--reg`` ``loss:weight``, into
``RUNS/<front end>-<tag>``; with ``--loo FE:LOSS:WEIGHT`` it also trains 12 spaces that leave one
rated instrument out of the regulariser each (``RUNS/loo-<FE>-<instrument>``). Existing runs are
kept (the job resumes).

``report`` writes ``OUT/results.json`` and prints markdown tables:
- perceptual fit: Pearson and Spearman between the rated dissimilarities and the latent
  distances of the instruments' centroids (66 pairs), per run, and the front-end ranking;
- leave-one-out generalisation: per left-out instrument, the correlation of its 11 latent
  distances to the others with its ratings row;
- reconstruction per front end (its best regularised run): ``--notes`` held-out rated notes (one
  per instrument where possible) auto-encoded frame by frame and inverted to audio; log-spectral
  distance (dB, 1024-point STFT, frames within 60 dB of the loudest) against the original, and
  pYIN pitch accuracy (median f0 within 50 cents of the MIDI pitch); the same for the front end's
  inverse of the *true* magnitudes (the phase-retrieval ceiling);
- descriptors on ``--space``: topology PNGs and roughness, and descriptor-based synthesis for
  every rated instrument (centroid +20 %, flatness +50 %, pitch 64) applied to its real render
  (FluidR3, velocity 100) with the error of the achieved change on the audio and the teacher check
  (EfficientAT mn04 embedding of the result nearest, by cosine, to its own instrument's mean
  embedding of the real renders at that pitch, the source note left out, among the 12 rated ones);
- ``--diagnose``: the same teacher check on each stage of the synthesis (:func:`synthesis_diagnosis`);
- ``--points``: synthesis of latent points (the rated centroids, midpoints of pairs) by the old held
  frame and by moved real notes, with the teacher check, pYIN pitch and the envelope (:func:`point_study`).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from darkgan.timbre.frontends import FRONT_ENDS
from darkgan.utils.io import read_json, write_json


def _train_one(data: Path, out: Path, sets: list[str]) -> None:
    if (out / "config.json").exists():
        return
    cmd = [sys.executable, "-m", "darkgan", "timbre-space", "train", "--data", str(data), "--out", str(out),
           "--no-progress"] + [a for s in sets for a in ("--set", s)]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def _reg_sets(spec: str) -> tuple[str, list[str]]:
    loss, weight = spec.split(":")
    return f"{loss}{weight}", [f"train.reg_loss={loss}", f"train.reg_weight={weight}"]


def cmd_train(a) -> None:
    for fe in a.front_ends.split(","):
        _train_one(a.data, a.runs / f"{fe}-unreg", [f"model.front_end={fe}", "train.reg_weight=0"])
        for spec in a.reg:
            tag, sets = _reg_sets(spec)
            _train_one(a.data, a.runs / f"{fe}-{tag}", [f"model.front_end={fe}", *sets])
    if a.loo:
        from darkgan.timbre.ratings import load_ratings

        fe, loss, weight = a.loo.split(":")
        for name in load_ratings().instruments:
            _train_one(a.data, a.runs / f"loo-{fe}-{name}",
                       [f"model.front_end={fe}", f"train.reg_loss={loss}", f"train.reg_weight={weight}",
                        f"train.exclude={name}", f"train.steps={a.loo_steps}"])


def fit_table(runs: Path) -> list[dict]:
    rows = []
    for cfg in sorted(runs.glob("*/config.json")):
        if cfg.parent.name.startswith("loo-"):
            continue
        meta = read_json(cfg)
        t = meta["config"]["train"]
        rows.append({"run": cfg.parent.name, "front_end": meta["config"]["model"]["front_end"],
                     "regulariser": f"{t['reg_loss']} x{t['reg_weight']:g}" if t["reg_weight"] else "none",
                     **meta["metrics"]["fit"], "test_frame_mse": meta["metrics"]["test_frame_mse"],
                     "train_seconds": meta["metrics"]["train_seconds"]})
    return rows


def loo_table(runs: Path) -> list[dict]:
    """Per left-out instrument: its row's correlation in the space trained without it in the
    regulariser, and (baseline) the same row in the unregularised space of that front end."""
    from darkgan.timbre.ratings import load_ratings
    from darkgan.timbre.train import loo_correlation

    rows, ratings = [], load_ratings()
    for cfg in sorted(runs.glob("loo-*/config.json")):
        meta = read_json(cfg)
        lo = meta["metrics"]["left_out"]
        unreg = runs / f"{meta['config']['model']['front_end']}-unreg" / "config.json"
        base = loo_correlation(read_json(unreg)["centroids"], ratings, lo["instrument"]) if unreg.exists() else {}
        rows.append(lo | {f"unreg_{k}": v for k, v in base.items()})
    return rows


def log_spectral_distance(ref: np.ndarray, est: np.ndarray) -> float:
    """RMS over bins of the dB difference of 1024-point STFT magnitudes, averaged over the
    reference's frames within 60 dB of its loudest frame (dB)."""
    import librosa

    s_ref = np.abs(librosa.stft(ref, n_fft=1024, hop_length=256)) + 1e-7
    s_est = np.abs(librosa.stft(est, n_fft=1024, hop_length=256)) + 1e-7
    db = 20 * np.log10(s_ref) - 20 * np.log10(s_est)
    energy = (s_ref ** 2).sum(0)
    keep = energy > energy.max() * 1e-6
    return float(np.mean(np.sqrt(np.mean(db[:, keep] ** 2, axis=0))))


def pitch_ok(wave: np.ndarray, midi: float) -> bool:
    """pYIN median f0 within 50 cents of ``midi``."""
    from darkgan.errors import DataError
    from darkgan.timbre.space import estimate_pitch

    try:
        return abs(estimate_pitch(wave) - midi) <= 0.5
    except DataError:
        return False


def reconstruction(run: Path, data: Path, n_notes: int) -> dict:
    """Auto-encode held-out notes frame by frame, invert, compare (see the module docstring)."""
    import torch

    from darkgan.timbre.data import load_notes
    from darkgan.timbre.space import TimbreSpace

    space = TimbreSpace.load(run)
    notes = load_notes(data)
    test = np.flatnonzero(notes["rated"] & notes["test"])
    picked = [test[notes["instrument"][test] == n][0] for n in space.ratings.instruments
              if np.any(notes["instrument"][test] == n)][:n_notes]
    res = {"lsd_model": [], "lsd_oracle": [], "pitch_model": [], "pitch_oracle": [], "pitch_original": []}
    for i in picked:
        w, p = notes["wave"][i], float(notes["pitch"][i])
        spec = space.front_end.analyze(w)
        with torch.no_grad():
            mu, _ = space.model.encode(torch.from_numpy(spec.T.copy()), torch.full((spec.shape[1],), p))
            rec = space.model.decode(mu, torch.full((spec.shape[1],), p)).numpy().T
        y_model, y_oracle = space.front_end.invert(rec), space.front_end.invert(spec)
        res["lsd_model"].append(log_spectral_distance(w, y_model))
        res["lsd_oracle"].append(log_spectral_distance(w, y_oracle))
        res["pitch_model"].append(pitch_ok(y_model, p))
        res["pitch_oracle"].append(pitch_ok(y_oracle, p))
        res["pitch_original"].append(pitch_ok(w, p))
    return {"run": run.name, "notes": len(picked), **{k: float(np.mean(v)) for k, v in res.items()}}


def teacher_references(notes: dict, ratings, pitch: int, teacher, exclude=None,
                       cache: dict | None = None) -> np.ndarray:
    """``[K, D]`` unit-norm mean teacher embedding of each rated instrument's real renders at
    ``pitch`` (all fonts and velocities), leaving note index (or indices) ``exclude`` out; ``cache`` (a dict)
    keeps the notes' embeddings between calls."""
    import torch

    cache = {} if cache is None else cache
    skip = {exclude} if isinstance(exclude, (int, np.integer)) else set(() if exclude is None else exclude)
    refs = []
    for name in ratings.instruments:
        idx = [i for i in np.flatnonzero((notes["instrument"] == name) & (notes["pitch"] == pitch)) if i not in skip]
        todo = [i for i in idx if i not in cache]
        if todo:
            e = teacher.embedding(torch.from_numpy(notes["wave"][todo])).numpy()
            cache.update(zip(todo, e / np.linalg.norm(e, axis=1, keepdims=True)))
        m = np.mean([cache[i] for i in idx], axis=0)
        refs.append(m / np.linalg.norm(m))
    return np.stack(refs)


def nearest_instrument(wave: np.ndarray, refs: np.ndarray, teacher) -> int:
    import torch

    e = teacher.embedding(torch.from_numpy(wave[None].astype(np.float32))).numpy()[0]
    return int(np.argmax(refs @ (e / np.linalg.norm(e))))


def descriptor_study(run: Path, data: Path, out: Path, pitch: int = 64, topology: bool = True) -> dict:
    """Topology PNGs + descriptor-based synthesis with its errors and the teacher check.

    Each rated instrument's source note is its real render at ``pitch`` (FluidR3, velocity 100,
    from the data folder); the teacher references leave that note out. Also checked: the source
    note's own resynthesis (``unmodified``) and the stationary note of the instrument's latent
    centroid (one decoded frame held 1 s, ``space.synth_held``: the synthesis before session 24).
    """
    from darkgan.data.render import write_wav
    from darkgan.data.synth import quantize
    from darkgan.teacher import load_teacher
    from darkgan.timbre.data import load_notes
    from darkgan.timbre.explore import descriptor_synth, descriptor_topology
    from darkgan.timbre.space import TimbreSpace

    space = TimbreSpace.load(run)
    topo = descriptor_topology(space, out) if topology else {}
    teacher, notes = load_teacher("efficientat-mn04"), load_notes(data)
    rows, cache = [], {}
    for name in tqdm(space.ratings.instruments, desc="descriptor synthesis"):
        src = _source_note(notes, name, pitch)
        refs = teacher_references(notes, space.ratings, pitch, teacher, src, cache)

        def check(w, refs=refs):
            return space.ratings.instruments[nearest_instrument(w, refs, teacher)]

        stationary = check(space.synth_held(space.instrument(name), pitch)) == name
        for desc, change in (("centroid", 0.2), ("flatness", 0.5)):
            wave, rep = descriptor_synth(space, notes["wave"][src], pitch, desc, change)
            write_wav(out / "audio" / f"{name}-{desc}{change:+g}.wav", quantize(wave))
            near = check(wave)
            rows.append({"instrument": name} | {k2: rep[k2] for k2 in ("descriptor", "asked", "achieved_frame",
                                                                       "achieved_audio", "error_audio", "latent_shift")}
                        | {"teacher_nearest": near, "teacher_ok": near == name,
                           "unmodified_teacher_ok": check(rep["unmodified"]) == name,
                           "stationary_centroid_teacher_ok": stationary, "pitch_ok": pitch_ok(wave, pitch),
                           "unmodified_pitch_ok": pitch_ok(rep["unmodified"], pitch)})
    summary = {}
    for desc in ("centroid", "flatness"):
        r = [x for x in rows if x["descriptor"] == desc]
        summary[desc] = {"asked": r[0]["asked"], "mean_achieved_audio": float(np.mean([x["achieved_audio"] for x in r])),
                         "mean_abs_error_audio": float(np.mean([x["error_audio"] for x in r])),
                         "max_abs_error_audio": float(np.max([x["error_audio"] for x in r])), "of": len(r)} | {
            key: int(sum(x[key] for x in r)) for key in ("teacher_ok", "unmodified_teacher_ok",
                                                         "stationary_centroid_teacher_ok", "pitch_ok",
                                                         "unmodified_pitch_ok")}
    return {"run": run.name, "topology": topo, "synthesis": rows, "summary": summary}


def _source_note(notes: dict, name: str, pitch: int) -> int:
    """Index of ``name``'s real render at ``pitch`` from FluidR3, velocity 100 (the study's source)."""
    return int(np.flatnonzero((notes["instrument"] == name) & (notes["pitch"] == pitch)
                              & (notes["font"] == "FluidR3_GM.sf2") & (notes["velocity"] == 100))[0])


def note_envelope(wave: np.ndarray) -> np.ndarray:
    """``[T]`` amplitude envelope of a note: RMS over 32 ms frames (hop 8 ms), peak 1, interpolated."""
    import librosa

    r = librosa.feature.rms(y=wave, frame_length=512, hop_length=128)[0]
    return np.interp(np.arange(len(wave)), np.arange(len(r)) * 128, r / r.max()).astype(np.float32)


def synthesis_diagnosis(run: Path, data: Path, pitch: int = 64) -> dict:
    """Which stage loses the instrument (teacher check, leave-source-out references as in
    :func:`descriptor_study`)? Per rated instrument: the real note; the front end's inverse of its
    true magnitudes (phase retrieval only); its median true frame held 1 s (stationary), with the
    10/50 ms fades or with the note's real amplitude envelope; the latent centroid's decoded frame
    held 1 s (``space.synth_held``), with fades or with the real envelope; the note auto-encoded frame
    by frame through the VAE."""
    import torch

    from darkgan.teacher import load_teacher
    from darkgan.timbre.data import load_notes
    from darkgan.timbre.space import TimbreSpace, _envelope

    space, teacher, notes = TimbreSpace.load(run), load_teacher("efficientat-mn04"), load_notes(data)
    fe, cache, per = space.front_end, {}, {}
    peak = lambda w: (w * 0.9 / np.abs(w).max()).astype(np.float32)
    for name in tqdm(space.ratings.instruments, desc="diagnosis"):
        src = _source_note(notes, name, pitch)
        refs = teacher_references(notes, space.ratings, pitch, teacher, src, cache)
        w = notes["wave"][src]
        spec, env = fe.analyze(w), note_envelope(w)
        held = fe.invert(np.repeat(np.median(spec, axis=1)[:, None], spec.shape[1], 1))
        centroid = space.synth_held(space.instrument(name), pitch)
        with torch.no_grad():
            p = torch.full((spec.shape[1],), float(pitch))
            rec = space.model.decode(space.model.encode(torch.from_numpy(spec.T.copy()), p)[0], p).numpy().T
        variants = {"real": w, "phase_retrieval_only": fe.invert(spec), "true_frame_held": _envelope(held),
                    "true_frame_held_real_envelope": peak(held * env), "centroid_held": centroid,
                    "centroid_held_real_envelope": peak(centroid * env), "autoencoded_note": fe.invert(rec)}
        per[name] = {k: space.ratings.instruments[nearest_instrument(v, refs, teacher)] for k, v in variants.items()}
    summary = {k: sum(per[n][k] == n for n in per) for k in next(iter(per.values()))}
    return {"run": run.name, "pitch": pitch, "per_instrument": per, "summary": summary, "of": len(per)}


def energy_contrast(wave: np.ndarray) -> float:
    """Mean power of the first 100 ms over that of the last 200 ms of a 1 s note (dB): ~0 for a
    held frame, the attack/decay's shape for a real note."""
    sr = 16000
    head, tail = wave[: sr // 10].astype(np.float64), wave[-sr // 5:].astype(np.float64)
    return float(10 * np.log10((np.mean(head ** 2) + 1e-12) / (np.mean(tail ** 2) + 1e-12)))


#: Synthesis variants of :func:`point_study`: name -> (function of space, z, pitch, (a, b, t)).
POINT_VARIANTS = {
    "real": lambda sp, z, p, ab: _real(sp, ab[0], p),
    "held": lambda sp, z, p, ab: (sp.synth_held(z, p), []),
    "carriers2": lambda sp, z, p, ab: _point(sp, z, p, 2),
    "carriers2-rated": lambda sp, z, p, ab: _point(sp, z, p, 2, rated_only=True),
    "nearest": lambda sp, z, p, ab: _point(sp, z, p, 1),
    "own-position": lambda sp, z, p, ab: _point(sp, z, p, 2, anchor="note"),
    "path": lambda sp, z, p, ab: _path_point(sp, z, p, *ab),
}


def _real(space, name, pitch):
    from darkgan.timbre.synthesis import instrument_note

    return instrument_note(space, name, pitch), [{"instrument": name, "weight": 1.0}]


def _point(space, z, pitch, k, **kw):
    from darkgan.timbre.synthesis import point_synth

    wave, rep = point_synth(space, z, pitch, k=k, **kw)
    return wave, rep["carriers"]


def _path_point(space, z, pitch, a, b, t):
    from darkgan.timbre.synthesis import edit_to_point, instrument_note

    carriers = [(instrument_note(space, a, pitch), 1 - t, space.centroids[a]),
                (instrument_note(space, b, pitch), t, space.centroids[b])]
    return edit_to_point(space, carriers, z, pitch)[0], [{"instrument": a, "weight": 1 - t},
                                                         {"instrument": b, "weight": t}]


def point_study(run: Path, data: Path, out: Path, pitch: int = 64, n_pairs: int = 12,
                variants: tuple[str, ...] = ("held", "carriers2", "nearest", "path")) -> dict:
    """Synthesis of latent points: every rated instrument's centroid and the midpoints of
    ``n_pairs`` seeded random pairs of rated instruments, with each of ``variants``
    (:data:`POINT_VARIANTS`; ``path``: midpoints only, the pair's two notes as carriers; ``real``:
    centroids only, the instrument's FluidR3 carrier note itself, the ceiling). Per note:
    the teacher's nearest rated instrument (references: the MuseScore and TimGM renders at
    ``pitch``, 3 velocities each; the FluidR3 carriers are never among them) against the rated
    instrument(s) whose centroid is nearest the point (ties within 1e-6 count both), pYIN pitch
    within 50 cents, the distance from the point to the note's own encoding, and the energy
    contrast (:func:`energy_contrast`) against the first carrier's."""
    from darkgan.teacher import load_teacher
    from darkgan.timbre.data import load_notes
    from darkgan.timbre.space import TimbreSpace
    from darkgan.timbre.synthesis import instrument_note

    space, teacher, notes = TimbreSpace.load(run), load_teacher("efficientat-mn04"), load_notes(data)
    rated = space.ratings.instruments
    refs = teacher_references(notes, space.ratings, pitch, teacher, np.flatnonzero(notes["font"] == "FluidR3_GM.sf2"))
    c = np.stack([space.centroids[n] for n in rated])
    pairs = [tuple(rated[i] for i in pr) for pr in
             np.random.default_rng(0).permutation(np.array(np.triu_indices(len(rated), 1)).T)[:n_pairs]]
    points = [("centroid", n, (n, n, 0.0), space.centroids[n]) for n in rated]
    points += [("midpoint", f"{a}|{b}", (a, b, 0.5), (space.centroids[a] + space.centroids[b]) / 2) for a, b in pairs]
    rows, waves = [], {}
    for kind, label, ab, z in tqdm(points, desc="point synthesis"):
        d = np.linalg.norm(c - z, axis=1)
        target = [rated[i] for i in np.flatnonzero(d <= d.min() + 1e-6)]
        for v in variants:
            if (v == "path" and kind != "midpoint") or (v == "real" and kind != "centroid"):
                continue
            wave, carriers = POINT_VARIANTS[v](space, z, pitch, ab)
            waves[(label, v)] = wave
            near = rated[nearest_instrument(wave, refs, teacher)]
            first = carriers[0]["instrument"] if carriers else target[0]
            rows.append({"kind": kind, "point": label, "variant": v, "target": target, "teacher_nearest": near,
                         "teacher_ok": near in target, "pitch_ok": pitch_ok(wave, pitch),
                         "latent_error": float(np.linalg.norm(space.encode(wave, pitch) - z)),
                         "contrast_db": energy_contrast(wave),
                         "carrier_contrast_db": energy_contrast(instrument_note(space, first, pitch)),
                         "carriers": carriers})
    _point_png(waves, points, out)
    return {"run": run.name, "pitch": pitch, "pairs": pairs, "rows": rows, "summary": _point_summary(rows)}


def _point_summary(rows: list[dict]) -> dict:
    out = {}
    for kind in ("centroid", "midpoint"):
        for v in dict.fromkeys(r["variant"] for r in rows):
            r = [x for x in rows if x["kind"] == kind and x["variant"] == v]
            if r:
                out[f"{kind}/{v}"] = {"of": len(r), "teacher_ok": int(sum(x["teacher_ok"] for x in r)),
                                      "pitch_ok": int(sum(x["pitch_ok"] for x in r)),
                                      "mean_latent_error": float(np.mean([x["latent_error"] for x in r])),
                                      "mean_abs_contrast_gap_db": float(np.mean(
                                          [abs(x["contrast_db"] - x["carrier_contrast_db"]) for x in r])),
                                      "mean_abs_contrast_db": float(np.mean([abs(x["contrast_db"]) for x in r]))}
    return out


def _point_png(waves: dict, points: list, out: Path) -> None:
    """Spectrograms, held frame vs carriers, of the first centroid (the piano's when present) and
    the first midpoint: ``OUT/point-synthesis.png``."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [next((p[1] for p in points if p[1] == "Piano"), points[0][1]),
              next(p[1] for p in points if p[0] == "midpoint")]
    shown = [v for v in ("held", "carriers2") if (labels[0], v) in waves]
    fig, axes = plt.subplots(len(labels), len(shown), figsize=(5 * len(shown), 3.2 * len(labels)), squeeze=False)
    for i, label in enumerate(labels):
        for j, v in enumerate(shown):
            db = librosa.amplitude_to_db(np.abs(librosa.stft(waves[(label, v)], n_fft=1024, hop_length=128)), ref=1.0)
            axes[i, j].imshow(db, origin="lower", aspect="auto", vmin=-90, vmax=db.max(), cmap="magma",
                              extent=(0, 1, 0, 8))
            axes[i, j].set_title(f"{label.replace('|', ' / ')}: {'one frame held' if v == 'held' else 'moved real notes'}",
                                 fontsize=9)
            axes[i, j].set_xlabel("s")
            axes[i, j].set_ylabel("kHz")
    fig.tight_layout()
    from darkgan.timbre.explore import _save_fig

    _save_fig(fig, out / "point-synthesis.png")


def _table(rows: list[dict], keys: list[str]) -> str:
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(fmt(r.get(k, "")) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def cmd_report(a) -> None:
    out = a.out
    out.mkdir(parents=True, exist_ok=True)
    fit = fit_table(a.runs)
    print(_table(fit, ["run", "front_end", "regulariser", "pearson", "spearman", "test_frame_mse", "train_seconds"]))
    loo = loo_table(a.runs)
    if loo:
        print(_table(loo, ["instrument", "pearson", "spearman", "unreg_pearson", "unreg_spearman"]))
        print("LOO mean: " + ", ".join(f"{k} {np.mean([r.get(k, np.nan) for r in loo]):.3f}"
                                       for k in ("pearson", "spearman", "unreg_pearson", "unreg_spearman")))
    results = {"fit": fit, "loo": loo}
    if a.notes:
        best = {}
        for r in fit:
            if r["regulariser"] != "none" and (r["front_end"] not in best or r["spearman"] > best[r["front_end"]]["spearman"]):
                best[r["front_end"]] = r
        results["reconstruction"] = [reconstruction(a.runs / r["run"], a.data, a.notes) for r in best.values()]
        print(_table(results["reconstruction"], ["run", "notes", "lsd_model", "lsd_oracle", "pitch_model",
                                                 "pitch_oracle", "pitch_original"]))
    if a.space and a.points:
        results["points"] = point_study(a.space, a.data, out, variants=tuple(a.variants.split(",")))
        print(json.dumps(results["points"]["summary"], indent=1))
    elif a.space and a.diagnose:
        results["diagnosis"] = synthesis_diagnosis(a.space, a.data)
        print(json.dumps(results["diagnosis"]["summary"]))
    elif a.space:
        results["descriptors"] = descriptor_study(a.space, a.data, out, topology=not a.no_topology)
        print(json.dumps(results["descriptors"]["summary"]), json.dumps(results["descriptors"]["topology"]))
    write_json(out / "results.json", results)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--front-ends", default=",".join(FRONT_ENDS))
    t.add_argument("--reg", nargs="*", default=["tsne:10"], help="LOSS:WEIGHT of the regularised runs")
    t.add_argument("--loo", default=None, help="FE:LOSS:WEIGHT of the leave-one-out study")
    t.add_argument("--loo-steps", type=int, default=3000, help="training steps of each leave-one-out run")
    r = sub.add_parser("report")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--notes", type=int, default=12, help="held-out notes per front end (0: skip)")
    r.add_argument("--space", type=Path, default=None, help="run for the descriptor study")
    r.add_argument("--no-topology", action="store_true", help="descriptor study without the topology PNGs")
    r.add_argument("--diagnose", action="store_true",
                   help="with --space: which synthesis stage loses the instrument (teacher check)")
    r.add_argument("--points", action="store_true",
                   help="with --space: synthesis of latent points (centroids, midpoints), old vs new")
    r.add_argument("--variants", default="real,held,carriers2,carriers2-rated,nearest,own-position,path",
                   help="with --points: variants to run (benchmarks/timbre_space.py POINT_VARIANTS)")
    for p in (t, r):
        p.add_argument("--data", type=Path, required=True)
        p.add_argument("--runs", type=Path, required=True)
    a = ap.parse_args(argv)
    {"train": cmd_train, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
