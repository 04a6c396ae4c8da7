"""Render NSynth-format note datasets from General MIDI SoundFonts.

``render_note`` renders one 4 s note (note-on at sample 0, note-off at 3 s, 16 kHz mono);
``render_dataset`` renders every melodic preset of a list of SoundFonts at a grid of pitches
and velocities into the NSynth json/wav layout (see DEVELOPERS.md, "Dataset folder").

Pipeline of ``render_dataset`` (both stages run in a ``multiprocessing`` pool, one job per
preset; each worker parses each SoundFont once, :func:`darkgan.data.synth.load_font`):

1. **probe**: every melodic preset (banks 0-127; drum bank 128 skipped) whose GM program is
   pitched (:func:`darkgan.data.gm.is_pitched`) renders a few probe notes (lowest, middle and
   highest requested pitch at the loudest requested velocity). A preset is dropped when all
   probes are silent, when its median harmonicity (:func:`darkgan.data.quality.harmonicity`)
   is below ``harmonicity_threshold``, or when its probe log-mel fingerprint correlates above
   ``dup_threshold`` with an earlier kept preset of another font (``dup_threshold_same_font``
   within one font); fonts are taken in the order given, so the first font's preset is kept.
2. **render**: every kept preset renders all (pitch, velocity) notes; notes whose first second
   is silent (RMS < -80 dBFS, e.g. outside a preset's key range) are dropped.

Files: ``.render_plan.json`` (the probe outcome and settings signature, so an interrupted run
resumes without re-probing; kept afterwards as provenance), ``audio/<note_str>.wav`` (each
written to a temporary file and renamed into place, without a per-file fsync; one ``os.sync()``
follows the last WAV), then ``splits.json``,
``render_report.json`` and, last, ``examples.json``. A folder with ``examples.json`` is a
complete dataset: rendering into it again needs ``force=True`` (which deletes the previous
dataset's files first). A folder with a plan but no ``examples.json`` is an interrupted render:
the same settings resume it (existing valid WAVs are kept, as their content would be identical),
other settings raise :class:`darkgan.errors.DataError` unless ``force=True``.

Level: fluidsynth gain ``gain`` (default 1.0) with reverb and chorus off; a note whose float
peak would exceed 0.999 is scaled down to 0.999 (counted as ``rescaled`` in the report), so
nothing clips. Mono = mean of the left and right outputs.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import multiprocessing as mp
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from darkgan.data import gm, quality
from darkgan.data.synth import NOTE_OFF, NOTE_SAMPLES, SAMPLE_RATE, load_font, quantize, to_mono
from darkgan.errors import DataError
from darkgan.utils.io import atomic_write, read_json, write_json

DEFAULT_PITCHES = tuple(range(44, 71))  #: MIDI 44..70, the paper's range
DEFAULT_VELOCITIES = (25, 50, 75, 100, 127)  #: NSynth's velocities
DEFAULT_GAIN = 1.0  #: fluidsynth ``synth.gain`` of our renders
PEAK_LIMIT = 0.999  #: float peak above which a note is scaled down (int16 full scale = 1.0)
PLAN_FILE = ".render_plan.json"
FORMAT_VERSION = 1

# ----------------------------------------------------------------------------- single notes


def _render_float(font, bank: int, program: int, pitch: int, velocity: int,
                  gain: float) -> tuple[np.ndarray, bool]:
    """Mono float note ``[64000]`` after gain and peak limiting; also whether it was rescaled."""
    wave = to_mono(font.render_stereo(bank, program, pitch, velocity, NOTE_SAMPLES, NOTE_OFF))
    if gain != 1.0:
        wave = (wave.astype(np.float64) * gain).astype(np.float32)
    peak = float(np.max(np.abs(wave))) if wave.size else 0.0
    if peak > PEAK_LIMIT:
        return (wave.astype(np.float64) * (PEAK_LIMIT / peak)).astype(np.float32), True
    return wave, False


def render_note(soundfont_path: str | os.PathLike, program: int, pitch: int, velocity: int,
                bank: int = 0, gain: float = DEFAULT_GAIN) -> np.ndarray:
    """Render one note exactly as the datasets do: ``np.float32 [64000]`` in [-1, 1).

    16 kHz mono (mean of fluidsynth's left/right outputs), note-on at sample 0, note-off at
    sample 48000 (3 s), 4 s in total; reverb and chorus off; float rendering
    (``fluid_synth_write_float``), peak-limited to 0.999, quantised to int16 and returned as
    ``int16 / 32768``, i.e. bit-identical to reading the dataset's WAV with soundfile. A fresh
    synth renders every note, so the result does not depend on what was rendered before.

    Args:
        soundfont_path: .sf2/.sf3 file (parsed once per process, then cached).
        program: GM program 0-127; bank: 0-128 (128 = drum kits).
        pitch: MIDI note 0-127; velocity: 1-127.
        gain: fluidsynth synth gain (datasets use 1.0).

    Raises:
        DataError: missing/unreadable SoundFont, no preset at (bank, program).
        ValueError: pitch/velocity/program out of range.
    """
    _check_midi(program=program, pitch=pitch, velocity=velocity, bank=bank)
    font = load_font(soundfont_path)
    wave, _ = _render_float(font, bank, program, pitch, velocity, gain)
    return quantize(wave).astype(np.float32) / np.float32(32768.0)


def _wav_bytes(wave_int16: np.ndarray) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.asarray(wave_int16, dtype=np.int16), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def write_wav(path: str | os.PathLike, wave_int16: np.ndarray, fsync: bool = True) -> None:
    """Write ``[T]`` int16 samples as a 16 kHz mono PCM_16 WAV, atomically.

    ``fsync=True`` uses :func:`darkgan.utils.io.atomic_write`. ``fsync=False`` (used for the
    tens of thousands of WAVs of a dataset, where fsync costs ~7 ms a file) still writes a
    temporary file and renames it over ``path``, so an interrupted process never leaves a partial
    WAV under its final name; :func:`render_dataset` then flushes everything with one
    ``os.sync()`` before it writes ``examples.json``.
    """
    data = _wav_bytes(wave_int16)
    if fsync:
        with atomic_write(path, "wb") as f:
            f.write(data)
        return
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def wav_is_valid(path: str | os.PathLike, n_samples: int = NOTE_SAMPLES) -> bool:
    """True when ``path`` is a readable 16 kHz mono PCM_16 WAV of ``n_samples`` frames."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception:  # missing, truncated header, not a WAV
        return False
    return (info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames == n_samples
            and info.subtype == "PCM_16" and Path(path).stat().st_size >= 2 * n_samples)


def _check_midi(program=0, pitch=60, velocity=100, bank=0) -> None:
    for name, v, lo, hi in (("program", program, 0, 127), ("pitch", pitch, 0, 127),
                            ("velocity", velocity, 1, 127), ("bank", bank, 0, 128)):
        if not isinstance(v, (int, np.integer)) or not lo <= int(v) <= hi:
            raise ValueError(f"{name} {v!r}: expected an integer {lo}-{hi}")


# ----------------------------------------------------------------------------- settings


@dataclass
class RenderSettings:
    """Everything that decides a dataset's content (the resume signature covers these)."""

    soundfonts: list[str]
    programs: list[int] | None = None  #: GM programs to render (None: all pitched ones)
    banks: list[int] | None = None  #: banks to render (None: all melodic banks 0-127)
    pitches: list[int] = field(default_factory=lambda: list(DEFAULT_PITCHES))
    velocities: list[int] = field(default_factory=lambda: list(DEFAULT_VELOCITIES))
    gain: float = DEFAULT_GAIN
    harmonicity_threshold: float = 0.6
    dup_threshold: float = 0.95
    dup_threshold_same_font: float = 0.99
    silence_rms: float = quality.SILENCE_RMS

    @property
    def probe_pitches(self) -> list[int]:
        """Lowest, middle and highest requested pitch (deduplicated)."""
        p = sorted(self.pitches)
        return sorted({p[0], p[len(p) // 2], p[-1]})

    @property
    def probe_velocity(self) -> int:
        return max(self.velocities)

    def signature(self) -> str:
        d = asdict(self)
        d["soundfonts"] = [_font_identity(p) for p in self.soundfonts]
        d["format_version"] = FORMAT_VERSION
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _font_identity(path: str) -> dict:
    p = Path(path)
    st = p.stat()
    return {"name": p.name, "size": st.st_size}


# ----------------------------------------------------------------------------- worker jobs


def _job_enumerate(path: str) -> list[tuple[int, int, str]]:
    return load_font(path).presets


def _job_probe(args) -> dict:
    path, bank, program, name, s = args
    font = load_font(path)
    waves, rms, harm, f0, peaks = [], [], [], [], []
    for pitch in s["probe_pitches"]:
        w, _ = _render_float(font, bank, program, pitch, s["probe_velocity"], s["gain"])
        waves.append(w)
        rms.append(quality.rms(w))
        peaks.append(float(np.max(np.abs(w))))
        h, f = quality.harmonicity(w, pitch) if rms[-1] >= s["silence_rms"] else (0.0, float("nan"))
        harm.append(round(h, 4))
        f0.append(None if np.isnan(f) else round(f, 2))
    return {"path": path, "bank": bank, "program": program, "name": name, "rms": rms,
            "peak": peaks, "harmonicity": harm, "f0": f0,
            "fingerprint": quality.fingerprint(waves).astype(np.float32)}


def _job_render(args) -> dict:
    """Render all notes of one preset into ``audio/``; returns per-note outcomes."""
    path, bank, program, notes, audio_dir, s = args
    font = load_font(path)
    out = {"key": (path, bank, program), "written": [], "existing": [], "silent": [],
           "rescaled": [], "peak": 0.0}
    for note_str, pitch, velocity in notes:
        wav = Path(audio_dir) / f"{note_str}.wav"
        if wav_is_valid(wav):
            out["existing"].append(note_str)
            continue
        wave, rescaled = _render_float(font, bank, program, pitch, velocity, s["gain"])
        if quality.rms(wave) < s["silence_rms"]:
            out["silent"].append(note_str)
            continue
        out["peak"] = max(out["peak"], float(np.max(np.abs(wave))))
        if rescaled:
            out["rescaled"].append(note_str)
        write_wav(wav, quantize(wave), fsync=False)
        out["written"].append(note_str)
    return out


# ----------------------------------------------------------------------------- dataset


class _Runner:
    """Run jobs inline (jobs=1) or in a spawn pool; ``imap`` yields results as they finish."""

    def __init__(self, jobs: int):
        self.jobs = max(1, int(jobs))
        self.pool = None

    def __enter__(self):
        if self.jobs > 1:
            self.pool = mp.get_context("spawn").Pool(self.jobs)
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            if exc[0] is None:
                self.pool.close()
            else:
                self.pool.terminate()
            self.pool.join()

    def imap(self, fn, items, chunksize=1):
        if self.pool is None:
            return map(fn, items)
        return self.pool.imap_unordered(fn, items, chunksize=chunksize)

    def map(self, fn, items):
        if self.pool is None:
            return list(map(fn, items))
        return self.pool.map(fn, items)


def _check_fonts(soundfonts: Sequence[str | os.PathLike]) -> list[str]:
    if not soundfonts:
        raise DataError("no SoundFont given and none of the default ones is installed "
                        "(apt install fluid-soundfont-gm, or pass --soundfont FILE)")
    paths, names = [], {}
    for sf_path in soundfonts:
        p = Path(sf_path)
        if not p.exists():
            raise DataError(f"{p}: SoundFont not found")
        if not p.is_file():
            raise DataError(f"{p}: not a file (expected a .sf2/.sf3 SoundFont)")
        if not os.access(p, os.R_OK):
            raise DataError(f"{p}: SoundFont not readable (permission denied)")
        with open(p, "rb") as f:
            head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise DataError(f"{p}: not a SoundFont (no RIFF/sfbk header)")
        if p.name in names:
            raise DataError(f"{p}: two SoundFonts share the file name {p.name} ({names[p.name]})")
        names[p.name] = str(p)
        paths.append(str(p.absolute()))
    return paths


def _check_settings(s: RenderSettings) -> None:
    if not s.pitches:
        raise DataError("no pitches to render")
    if not s.velocities:
        raise DataError("no velocities to render")
    for v in s.pitches:
        if not 0 <= v <= 127:
            raise DataError(f"pitch {v}: expected MIDI 0-127")
    for v in s.velocities:
        if not 1 <= v <= 127:
            raise DataError(f"velocity {v}: expected 1-127")
    for v in s.programs or []:
        if not 0 <= v <= 127:
            raise DataError(f"program {v}: expected 0-127")
    for v in s.banks or []:
        if not 0 <= v <= 127:
            raise DataError(f"bank {v}: expected a melodic bank 0-127 (128 holds drum kits)")


_DATASET_FILES = ("examples.json", "splits.json", "render_report.json", PLAN_FILE)


def _clear(out: Path) -> None:
    """Delete a previous dataset's files (only ours: WAVs in audio/ and the json files)."""
    for name in _DATASET_FILES:
        (out / name).unlink(missing_ok=True)
    audio = out / "audio"
    if audio.is_dir():
        for p in audio.iterdir():
            if p.suffix in (".wav", ".tmp") and p.is_file():
                p.unlink()


def render_dataset(out: str | os.PathLike, soundfonts: Sequence[str | os.PathLike] | None = None,
                   programs: Iterable[int] | None = None, banks: Iterable[int] | None = None,
                   pitches: Iterable[int] = DEFAULT_PITCHES,
                   velocities: Iterable[int] = DEFAULT_VELOCITIES, split: str = "instrument",
                   seed: int = 0, jobs: int = 2, force: bool = False, gain: float = DEFAULT_GAIN,
                   harmonicity_threshold: float = 0.6, dup_threshold: float = 0.95,
                   dup_threshold_same_font: float = 0.99, progress: bool = True,
                   verbose: bool = True) -> dict:
    """Render an NSynth-layout dataset into ``out``; returns the report (also ``render_report.json``).

    Args:
        out: dataset folder (created). Layout: ``examples.json``, ``audio/<note_str>.wav``
            (16 kHz mono PCM_16, 64000 samples), ``splits.json``, ``render_report.json``.
        soundfonts: .sf2/.sf3 files, in priority order for duplicates (default:
            :func:`darkgan.paths.default_soundfonts`).
        programs: GM programs to render (default: every pitched one).
        banks: melodic banks to render (default: all of 0-127 present in each font).
        pitches, velocities: the note grid (MIDI numbers).
        split: ``"instrument"`` (80/10/10 train/valid/test of instruments, stratified by family)
            or ``"random"`` (90/10 train/valid of notes); ``seed`` makes it reproducible.
        jobs: worker processes (1 = render in this process).
        force: overwrite a complete dataset / an interrupted one with other settings.
        gain, harmonicity_threshold, dup_threshold, dup_threshold_same_font: see module doc.

    Raises:
        DataError: bad SoundFont, bad settings, ``out`` already holds a dataset (without
            ``force``), nothing left to render.
    """
    from darkgan.paths import default_soundfonts

    t0 = time.time()
    out = Path(out)
    settings = RenderSettings(
        soundfonts=_check_fonts(soundfonts if soundfonts else default_soundfonts()),
        programs=sorted({int(p) for p in programs}) if programs is not None else None,
        banks=sorted({int(b) for b in banks}) if banks is not None else None,
        pitches=sorted({int(p) for p in pitches}), velocities=sorted({int(v) for v in velocities}),
        gain=float(gain), harmonicity_threshold=float(harmonicity_threshold),
        dup_threshold=float(dup_threshold), dup_threshold_same_font=float(dup_threshold_same_font))
    _check_settings(settings)
    if split not in ("instrument", "random"):
        raise DataError(f"split scheme {split!r}: expected 'instrument' or 'random'")
    plan = _prepare_folder(out, settings.signature(), force, verbose)
    s = {"probe_pitches": settings.probe_pitches, "probe_velocity": settings.probe_velocity,
         "gain": settings.gain, "silence_rms": settings.silence_rms}
    with _Runner(jobs) as runner:
        t_probe = time.time()
        if plan is None:  # 1. probe
            plan = {**_make_plan(settings, runner, s, progress), "signature": settings.signature()}
            write_json(out / PLAN_FILE, plan)
        t_probe = time.time() - t_probe
        if not plan["kept"]:
            raise DataError("no preset left to render (all dropped: see the reasons with --debug "
                            f"or in {out / PLAN_FILE})")
        t_render = time.time()
        results = _render_notes(runner, plan["kept"], settings, out, s, progress)  # 2. render
        t_render = time.time() - t_render
    records, notes = _collect(plan["kept"], results, settings)  # 3. examples, splits, report
    if not records:
        raise DataError(f"{out}: every rendered note was silent; nothing to write")
    report = _write_dataset(out, records, plan, settings, notes, split=split, seed=seed, jobs=jobs,
                            wall={"probe": round(t_probe, 1), "render": round(t_render, 1),
                                  "total": round(time.time() - t0, 1)})
    c = report["counts"]
    _say(verbose, f"{out}: {c['notes']} notes, {c['instruments']} instruments from "
                  f"{len(plan['soundfonts'])} SoundFonts; presets kept {c['presets_kept']}, "
                  f"dropped {c['presets_dropped']} {c['dropped_by_reason']}; silent notes dropped "
                  f"{c['notes_silent_dropped']}; splits {c['splits']}; "
                  f"{report['wall_time_s']['total']:.0f} s")
    return report


def _prepare_folder(out: Path, signature: str, force: bool, verbose: bool) -> dict | None:
    """Check and clear ``out`` for a render; return the plan of an interrupted render with the
    same settings (to resume), else ``None``.

    Raises:
        DataError: ``out`` is a file, holds a dataset or an interrupted render with other
            settings (without ``force``).
    """
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    plan = None
    if (out / "examples.json").exists():
        if not force:
            raise DataError(f"{out}: already holds a rendered dataset (examples.json); "
                            "use --force to delete it and render again")
        _clear(out)
    elif (out / PLAN_FILE).exists():
        old = read_json(out / PLAN_FILE)
        if old.get("signature") == signature:
            plan = old
            _say(verbose, f"{out}: resuming an interrupted render")
        elif not force:
            raise DataError(f"{out}: holds an interrupted render with other settings; rerun with "
                            "the same settings to resume, or use --force to start over")
        else:
            _clear(out)
    elif force:
        _clear(out)
    (out / "audio").mkdir(parents=True, exist_ok=True)
    for tmp in (out / "audio").glob(".*.tmp"):  # leftovers of a killed atomic write
        tmp.unlink(missing_ok=True)
    return plan


def _render_notes(runner: _Runner, kept: list[dict], settings: RenderSettings, out: Path, s: dict,
                  progress: bool) -> dict:
    """Render every kept preset's note grid into ``out/audio``; ``{(path, bank, program): result}``."""
    work = []
    for inst in kept:
        notes = [(_note_str(inst["instrument_str"], p, v), p, v)
                 for p in settings.pitches for v in settings.velocities]
        work.append((inst["path"], inst["bank"], inst["program"], notes, str(out / "audio"), s))
    results = {}
    bar = _bar(sum(len(w[3]) for w in work), "render", progress)
    n_notes = {(w[0], w[1], w[2]): len(w[3]) for w in work}
    for res in runner.imap(_job_render, work):
        results[tuple(res["key"])] = res
        bar.update(n_notes[tuple(res["key"])])
    bar.close()
    return results


def _collect(kept: list[dict], results: dict, settings: RenderSettings) -> tuple[dict, dict]:
    """The ``examples.json`` records (numbered) of the notes on disk, and the note tallies
    (silent, rescaled, written now, already present, peak); sets each kept preset's ``n_notes``."""
    records = {}
    notes = {"silent": [], "rescaled": [], "written": 0, "existing": 0, "peak": 0.0}
    for inst in kept:
        res = results[(inst["path"], inst["bank"], inst["program"])]
        notes["silent"] += res["silent"]
        notes["rescaled"] += res["rescaled"]
        notes["written"] += len(res["written"])
        notes["existing"] += len(res["existing"])
        notes["peak"] = max(notes["peak"], res["peak"])
        ok = set(res["written"]) | set(res["existing"])
        inst["n_notes"] = len(ok)
        for p in settings.pitches:
            for v in settings.velocities:
                ns = _note_str(inst["instrument_str"], p, v)
                if ns in ok:
                    records[ns] = _record(inst, p, v)
    for i, rec in enumerate(records.values()):
        rec["note"] = i
    return records, notes


def _tally(values, sort: bool = True) -> dict[str, int]:
    """``{value: count}`` (sorted by value, or in order of first appearance)."""
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items())) if sort else out


def _write_dataset(out: Path, records: dict, plan: dict, settings: RenderSettings, notes: dict, *,
                   split: str, seed: int, jobs: int, wall: dict) -> dict:
    """Write ``splits.json``, ``render_report.json`` and, last (it marks the dataset complete),
    ``examples.json``; return the report."""
    from darkgan.data.splits import make_splits

    splits = make_splits(records, scheme=split, seed=seed)
    write_json(out / "splits.json", splits)
    kept, dropped = plan["kept"], plan["dropped"]
    report = {
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {**asdict(settings), "probe_pitches": settings.probe_pitches,
                     "probe_velocity": settings.probe_velocity, "split": split, "seed": seed,
                     "jobs": jobs, "note_samples": NOTE_SAMPLES, "note_off_samples": NOTE_OFF,
                     "sample_rate": SAMPLE_RATE, "mono": "mean of left and right",
                     "reverb": False, "chorus": False},
        "soundfonts": plan["soundfonts"],
        "counts": {
            "presets_considered": len(kept) + len(dropped),
            "presets_kept": len(kept), "presets_dropped": len(dropped),
            "dropped_by_reason": _tally((d["reason"] for d in dropped), sort=False),
            "instruments": sum(1 for i in kept if i["n_notes"] > 0), "notes": len(records),
            "notes_silent_dropped": len(notes["silent"]), "notes_rescaled": len(notes["rescaled"]),
            "notes_written_now": notes["written"], "notes_already_present": notes["existing"],
            "max_peak": round(notes["peak"], 4),
            "per_family": _tally(r["instrument_family_str"] for r in records.values()),
            "per_source": _tally(r["instrument_source_str"] for r in records.values()),
            "splits": _split_counts(splits),
        },
        "wall_time_s": wall,
        "kept": [{k: v for k, v in i.items() if k != "path"} for i in kept],
        "dropped": dropped,
        "silent_notes": notes["silent"],
        "rescaled_notes": notes["rescaled"],
    }
    write_json(out / "render_report.json", report)
    os.sync()  # the WAVs were renamed into place without fsync: make them durable first
    write_json(out / "examples.json", records)  # last: marks the dataset complete
    return report


def _ordered(runner: _Runner, fn, work: list):
    """Results of ``fn`` over ``work`` in order (computed unordered in the pool)."""
    if runner.pool is None:
        yield from map(fn, work)
        return
    indexed = list(enumerate(work))
    pending = {}
    nxt = 0
    for i, res in runner.pool.imap_unordered(_Indexed(fn), indexed):
        pending[i] = res
        while nxt in pending:
            yield pending.pop(nxt)
            nxt += 1


class _Indexed:
    def __init__(self, fn):
        self.fn = fn

    def __call__(self, item):
        i, args = item
        return i, self.fn(args)


def _make_plan(settings: RenderSettings, runner: _Runner, s: dict, progress: bool) -> dict:
    """Enumerate presets, probe them, and decide which are kept (instrument ids assigned):
    ``{"format_version", "soundfonts": [font info], "kept": [instrument], "dropped": [entry]}``."""
    candidates, dropped, fonts_info = _candidates(settings, runner)
    jobs = [(path, bank, program, pname, s) for path, bank, program, pname in candidates]
    bar = _bar(len(jobs), "probe", progress)
    probes = []
    for res in _ordered(runner, _job_probe, jobs):
        probes.append(res)
        bar.update(1)
    bar.close()
    survivors = _drop_duplicates(_screen(probes, settings, dropped), settings, dropped)
    return {"format_version": FORMAT_VERSION, "soundfonts": fonts_info, "kept": _instruments(survivors),
            "dropped": dropped}


def _entry(pr: dict) -> dict:
    return {"soundfont": Path(pr["path"]).name, "bank": pr["bank"], "program": pr["program"], "name": pr["name"]}


def _candidates(settings: RenderSettings, runner: _Runner) -> tuple[list, list, list]:
    """The pitched melodic presets of every font asked for: ``(candidates [(path, bank, program,
    name)], dropped [entry], fonts_info [font])``."""
    fonts_presets = runner.map(_job_enumerate, settings.soundfonts)
    candidates, dropped, fonts_info = [], [], []
    for path, presets in zip(settings.soundfonts, fonts_presets):
        name = Path(path).name
        melodic = [p for p in presets if p[0] != gm.DRUM_BANK]
        fonts_info.append({"name": name, "path": path, "size": Path(path).stat().st_size,
                           "presets": len(presets), "melodic_presets": len(melodic)})
        for bank, program, pname in melodic:
            if settings.programs is not None and program not in settings.programs:
                continue
            if settings.banks is not None and bank not in settings.banks:
                continue
            if not gm.is_pitched(program, bank):
                dropped.append({"soundfont": name, "bank": bank, "program": program, "name": pname,
                                "reason": "unpitched_program", "detail": f"GM {program} {gm.program_name(program)}"})
                continue
            candidates.append((path, bank, program, pname))
    return candidates, dropped, fonts_info


def _screen(probes: list[dict], settings: RenderSettings, dropped: list) -> list[dict]:
    """The probed presets that are audible and harmonic enough (the others go to ``dropped``)."""
    survivors = []
    for pr in probes:
        audible = [h for h, r in zip(pr["harmonicity"], pr["rms"]) if r >= settings.silence_rms]
        if not audible:
            dropped.append({**_entry(pr), "reason": "silent",
                            "detail": f"probe RMS {[round(r, 6) for r in pr['rms']]}"})
            continue
        h = float(np.median(audible))
        if h < settings.harmonicity_threshold:
            dropped.append({**_entry(pr), "reason": "inharmonic",
                            "detail": f"median harmonicity {h:.2f} < {settings.harmonicity_threshold} "
                                      f"(probes {pr['harmonicity']})"})
            continue
        survivors.append(pr)
    return survivors


def _drop_duplicates(survivors: list[dict], settings: RenderSettings, dropped: list) -> list[dict]:
    """In font order, drop a preset whose log-mel fingerprint correlates above the threshold with
    an earlier kept one (``dup_threshold_same_font`` within a font)."""
    if not survivors:
        return survivors
    corr = quality.correlation_matrix(np.stack([p["fingerprint"] for p in survivors]))
    kept_idx: list[int] = []
    for j, pr in enumerate(survivors):
        best, best_c = None, -1.0
        for i in kept_idx:
            same = survivors[i]["path"] == pr["path"]
            thr = settings.dup_threshold_same_font if same else settings.dup_threshold
            if corr[i, j] > thr and corr[i, j] > best_c:
                best, best_c = i, float(corr[i, j])
        if best is None:
            kept_idx.append(j)
            continue
        o = survivors[best]
        dropped.append({**_entry(pr), "reason": "duplicate",
                        "detail": f"log-mel correlation {best_c:.4f} with {Path(o['path']).name} bank "
                                  f"{o['bank']} program {o['program']} ({o['name']})"})
    return [survivors[i] for i in kept_idx]


def _instruments(survivors: list[dict]) -> list[dict]:
    """The kept presets as instruments: ids, NSynth-style names (``family_source_NNN``), labels."""
    kept = []
    counters: dict[tuple[str, str], int] = {}
    for idx, pr in enumerate(survivors):
        labels = gm.gm_labels(pr["program"], pr["bank"], pr["path"])
        key = (labels["instrument_family_str"], labels["instrument_source_str"])
        n = counters.get(key, 0)
        counters[key] = n + 1
        kept.append({
            "instrument": idx, "instrument_str": f"{key[0]}_{key[1]}_{n:03d}",
            "path": pr["path"], "soundfont": Path(pr["path"]).name, "bank": pr["bank"],
            "program": pr["program"], "preset_name": pr["name"], **labels,
            "probe_harmonicity": pr["harmonicity"], "probe_f0": pr["f0"],
            "probe_peak": [round(p, 4) for p in pr["peak"]]})
    return kept


def _note_str(instrument_str: str, pitch: int, velocity: int) -> str:
    return f"{instrument_str}-{pitch:03d}-{velocity:03d}"


def _record(inst: dict, pitch: int, velocity: int) -> dict:
    return {
        "note": -1,  # filled in once all notes are known
        "note_str": _note_str(inst["instrument_str"], pitch, velocity),
        "instrument": inst["instrument"], "instrument_str": inst["instrument_str"],
        "pitch": pitch, "velocity": velocity, "sample_rate": SAMPLE_RATE,
        "instrument_family": inst["instrument_family"],
        "instrument_family_str": inst["instrument_family_str"],
        "instrument_source": inst["instrument_source"],
        "instrument_source_str": inst["instrument_source_str"],
        "qualities": [0] * 10, "qualities_str": [],
        "soundfont": inst["soundfont"], "bank": inst["bank"], "program": inst["program"],
        "preset_name": inst["preset_name"],
    }


def _split_counts(splits: dict) -> dict:
    c: dict[str, int] = {}
    for v in splits["splits"].values():
        c[v] = c.get(v, 0) + 1
    return dict(sorted(c.items()))


def _bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="note" if desc == "render" else "preset",
                disable=not enabled, leave=False)


def _say(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, flush=True)
