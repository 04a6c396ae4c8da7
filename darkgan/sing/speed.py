"""SING's generation speed through its API (:meth:`darkgan.sing.api.SingSynth.generate_batch`):
seconds of audio per second of wall time, one batch size at a time. Used by
``benchmarks/sing_speed.py`` and by ``darkgan bench`` (a SING checkpoint is a row of its table,
:func:`bench_row`). The paper's figure: 512 s of audio per second on a P100 GPU (Sec. 5.4).
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path


def time_median(fn, reps: int, max_seconds: float | None = None) -> tuple[float, float, int]:
    """``(median s, min s, calls timed)`` of ``fn()`` over up to ``reps`` calls after one warm-up
    call, stopping early (after at least one) once ``max_seconds`` have passed."""
    fn()
    times: list[float] = []
    end = None if max_seconds is None else time.perf_counter() + max_seconds
    while len(times) < max(1, reps) and (not times or end is None or time.perf_counter() < end):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), len(times)


def audio_rate(synth, batch: int, reps: int = 3, max_seconds: float | None = None) -> dict:
    """Time ``synth.generate_batch`` on ``batch`` notes (the first instrument, pitch in the middle
    of the range, the loudest velocity: every input costs the same).

    Returns:
        ``{"batch", "seconds_per_batch" (median), "seconds_per_batch_min", "reps",
        "audio_s_per_s"}``: ``batch x note seconds / median`` (> 1: faster than real time).
    """
    lo, hi = synth.pitch_range
    args = ([synth.instruments[0]] * batch, [(lo + hi) // 2] * batch, [synth.velocities[-1]] * batch)
    sec, best, n = time_median(lambda: synth.generate_batch(*args, batch_size=batch), reps, max_seconds)
    note_s = synth.n_samples / synth.sample_rate
    return {"batch": batch, "seconds_per_batch": sec, "seconds_per_batch_min": best, "reps": n,
            "audio_s_per_s": batch * note_s / sec}


def random_synth(preset: str, n_instruments: int = 32, device: str = "cpu"):
    """A :class:`~darkgan.sing.api.SingSynth` of ``preset`` with random weights (the cost of a
    trained one): 5 velocities, ``n_instruments`` instruments, MIDI 44..70."""
    import torch

    from darkgan.sing.api import SingSynth
    from darkgan.sing.config import get_config
    from darkgan.sing.data import Vocabulary
    from darkgan.sing.model import Sing

    cfg = get_config(preset)
    vocab = Vocabulary([f"i{k}" for k in range(n_instruments)], [25, 50, 75, 100, 127], (44, 70))
    torch.manual_seed(0)
    model = Sing(cfg.model, 5, n_instruments, vocab.n_pitches).to(device).eval()
    return SingSynth(model, cfg, vocab, {"path": f"random {preset}"}, device)


def params_of(synth) -> int:
    """Parameters used to generate (LSTM generator + decoder; the encoder only trains)."""
    m = synth.model
    return sum(p.numel() for part in (m.generator, m.decoder) for p in part.parameters())


def bench_row(spec: dict) -> dict:
    """``darkgan bench``'s measurement of a SING checkpoint (``spec["kind"] == "sing"``; see
    :func:`darkgan.compression.bench.measure`): one note on each of ``spec["threads"]``
    (``latency_ms_<t>thread(s)``, up to ``runs`` calls within ``max_seconds``), a batch of
    ``batch`` notes on the last thread count (``notes_per_s_batch64``), and the real-time factors
    ``x_realtime_batch1`` (first thread count) / ``x_realtime`` (the batch) in seconds of 4 s
    notes per second. MACs and the convolution-ceiling columns are not measured for SING (None).
    """
    import gc

    import torch

    from darkgan.compression.bench import _dir_size, _PeakRSS, _rss_mb
    from darkgan.sing.api import SingSynth

    gc.collect()
    base_rss, sampler = _rss_mb(), _PeakRSS()
    synth = SingSynth.load(spec["path"])
    note_s = synth.n_samples / synth.sample_rate
    res = {"model": spec["name"], "kind": "sing", "path": spec["path"], "params": params_of(synth), "macs": None,
           "file_mb": round(_dir_size(Path(spec["path"])) / 2**20, 3), "preset": synth.config.preset,
           "note_seconds": note_s}
    threads = list(spec.get("threads", [1, 2]))
    with torch.inference_mode():
        for t in threads:
            torch.set_num_threads(t)
            r = audio_rate(synth, 1, int(spec.get("runs", 30)), float(spec.get("max_seconds", 60.0)))
            key = "latency_ms_1thread" if t == 1 else f"latency_ms_{t}threads"
            res.update({key: round(1000 * r["seconds_per_batch"], 3), key + "_min": round(1000 * r["seconds_per_batch_min"], 3),
                        key + "_runs": r["reps"]})
            if t == threads[0]:
                res.update(x_realtime_batch1=round(r["audio_s_per_s"], 3), x_realtime_batch1_threads=t)
        r = audio_rate(synth, int(spec.get("batch", 64)), int(spec.get("batch_runs", 2)))
    nps = r["batch"] / r["seconds_per_batch"]
    res.update(batch=r["batch"], batch_threads=threads[-1], notes_per_s_batch64=round(nps, 3),
               notes_per_s_batch64_max=round(r["batch"] / r["seconds_per_batch_min"], 3),
               x_realtime=round(r["audio_s_per_s"], 3), peak_mb=round(sampler.stop() - base_rss, 1))
    return res
