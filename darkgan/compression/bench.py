"""``darkgan bench``: cost of generators on this machine, end to end to the waveform (issue 6, item 5).

For each model (a checkpoint run eagerly and through the fast path, exported ONNX or
TorchScript files) and for 1 and 2 CPU threads:

- ``params``: generator parameters; ``macs``: multiply-accumulates per note of the generator
  (``torch.utils.flop_counter`` at batch 1, FLOPs / 2, the format layer counted as the linear
  layer it is; the fast path's *executed* MACs, lower because of the polyphase up-sampling
  convolutions, are ``macs_executed``; the waveform inverse is not counted: ``torch.istft`` is an
  FFT, ~2 M MACs; ONNX files add the 134 M-MAC matmul inverse);
- ``latency_ms_1thread`` / ``latency_ms_2threads``: one note, inputs -> waveform ``[1, 16000]``,
  median of ``runs`` calls after ``warmup`` calls;
- ``notes_per_s_batch64`` (2 threads; the last thread count asked for): batch 64, inputs ->
  waveforms; ``x_realtime`` = notes/s x 1 s of audio per note;
- ``gflops_batch64`` and ``ceiling_fraction``: ``2 x macs x notes/s`` against ``ceiling_gflops``,
  a large 3x3 convolution through oneDNN (``[16, 256, 32, 32]``, 256 -> 256 maps, channels-last)
  at the same thread count, sampled right before and after every timed batch (the fraction is
  the median over batches of batch GFLOP/s / mean of its two neighbouring ceiling samples, so
  load from other processes cancels out as far as possible; ``ceiling_gflops_max`` is the best
  ceiling seen);
- ``peak_mb``: peak resident memory of the measuring process (sampled every ms) minus its size
  before loading the model (each model is measured in its own subprocess; the peak is over the
  whole measurement, so it is set by the batch-64 run); ``file_mb``: size on disk;
- ``fad`` / ``fad_teacher`` / ``pitch_accuracy`` with ``--data`` (:mod:`darkgan.compression.quality`);
- ``note_seconds`` and ``x_realtime_batch1``: seconds of audio per second for one note on the first
  thread count (``note_seconds`` / latency), beside ``x_realtime`` (the batch).

A SING checkpoint (``--checkpoint sing-default``) is one row timed through its API
(:func:`darkgan.sing.speed.bench_row`: 4 s notes, so ``x_realtime`` = notes/s x 4; no MACs,
ceiling or quality columns; its quality rows are in ``darkgan evaluate``).

Timings are wall-clock on a shared machine: the minimum over repeats is closer to the machine's
capability, the median (reported) to what a user sees; both are in the JSON (``*_min``).
Never used in tests (speed is not asserted).
"""
from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CEILING_SHAPE = (16, 256, 32, 32)  # input [B, C, H, W] of the ceiling conv (256 -> 256 maps, 3x3)
JSON_KEYS = ("model", "params", "macs", "latency_ms_1thread", "latency_ms_2threads", "notes_per_s_batch64",
             "x_realtime", "x_realtime_batch1", "note_seconds", "ceiling_gflops", "fad", "pitch_accuracy")


def conv_ceiling_gflops(threads: int, repeats: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution through oneDNN (best of ``repeats`` after warm-up).

    ``x [16, 256, 32, 32]`` channels-last, 256 -> 256 maps, padding 1: 19.3 GFLOP per call.
    """
    torch.set_num_threads(threads)
    b, c, h, w = CEILING_SHAPE
    x = torch.randn(b, c, h, w).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).eval().to(memory_format=torch.channels_last)
    flops = 2.0 * c * c * 9 * b * h * w
    with torch.inference_mode():
        conv(x)
        best = min(_timed(lambda: conv(x)) for _ in range(repeats))
    return flops / best / 1e9


class _Ceiling:
    """The ceiling convolution prepared once; :meth:`sample` times one call (GFLOP/s)."""

    def __init__(self):
        b, c, h, w = CEILING_SHAPE
        self.x = torch.randn(b, c, h, w).contiguous(memory_format=torch.channels_last)
        self.conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False).eval().to(memory_format=torch.channels_last)
        self.flops = 2.0 * c * c * 9 * b * h * w
        with torch.inference_mode():
            self.conv(self.x)

    def sample(self) -> float:
        with torch.inference_mode():
            return self.flops / _timed(lambda: self.conv(self.x)) / 1e9


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def count_macs(gen, n_attributes: int) -> tuple[int, int]:
    """``(macs, params)`` of a generator per note (batch 1; see the module docstring)."""
    from torch.utils.flop_counter import FlopCounterMode

    z = torch.randn(1, gen.cfg.latent_dim)
    p = torch.zeros(1, dtype=torch.long)
    a = torch.rand(1, n_attributes) if n_attributes else None
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        gen(z, p, a)
    return int(fc.get_total_flops() // 2), int(sum(q.numel() for q in gen.parameters()))


def count_macs_module(fn, *inputs) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc, torch.no_grad():
        fn(*inputs)
    return int(fc.get_total_flops() // 2)


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    from darkgan.models.checkpoint import GENERATOR_FILE

    f = path / GENERATOR_FILE
    return f.stat().st_size if f.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------------- worker

def _rss_mb() -> float:
    """Current resident set size (MiB) from /proc (``ru_maxrss`` where /proc is absent)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _PeakRSS:
    """Samples the RSS every millisecond on a thread; ``peak`` is the largest value seen.

    (``ru_maxrss`` is a lifetime maximum that importing torch already sets higher than a small
    model ever reaches, so it cannot measure a model's peak.)"""

    def __init__(self):
        import threading

        self.peak = _rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, _rss_mb())

    def stop(self) -> float:
        self._stop.set()
        self._t.join()
        return max(self.peak, _rss_mb())


def measure(spec: dict) -> dict:
    """Measure one model (runs in a subprocess; see :func:`run_bench`).

    ``spec``: ``{"name", "kind": "eager"|"fast"|"onnx"|"torchscript", "path", "checkpoint"
    (the source checkpoint for onnx/torchscript), "threads": [1, 2], "runs", "warmup", "batch",
    "batch_runs", "max_seconds"}``.
    """
    import gc

    from darkgan.models.checkpoint import load_generator

    kind, path = spec["kind"], Path(spec["path"])
    if kind == "sing":  # the SING family times itself through its API (imported here: it comes later)
        from darkgan.sing.speed import bench_row

        return bench_row(spec)
    gc.collect()
    base_rss = _rss_mb()
    sampler = _PeakRSS()
    gen, cfg = load_generator(Path(spec.get("checkpoint") or path))
    k = cfg.n_attributes if cfg.attributes_enabled else 0
    macs, params = count_macs(gen, k)
    res = {"model": spec["name"], "kind": kind, "path": str(path), "params": params, "macs": macs,
           "file_mb": round(_dir_size(path) / 2**20, 3), "preset": cfg.config.preset,
           "channels": list(cfg.config.model.channels), "convs_per_block": cfg.config.model.convs_per_block}
    fn, res["macs_executed"] = _synth_fn(kind, path, gen, cfg, k, macs)
    lo = cfg.pitch_range[0]

    def inputs(b: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(b, cfg.config.model.latent_dim, generator=g)
        p = lo + torch.randint(0, cfg.n_pitches, (b,), generator=g)
        a = torch.rand(b, k, generator=g) if k else None
        return z, p, a

    threads = list(spec.get("threads", [1, 2]))
    with torch.inference_mode():
        for t in threads:
            res.update(_latency(fn, inputs(1, 0), t, spec))
        res.update(_throughput(fn, inputs, threads[-1], macs, spec))
    first = "latency_ms_1thread" if threads[0] == 1 else f"latency_ms_{threads[0]}threads"
    res.update(note_seconds=1.0, x_realtime_batch1=round(1000.0 / res[first], 3), x_realtime_batch1_threads=threads[0])
    if res.get("macs_executed"):
        res["ceiling_fraction_executed"] = round(2 * res["macs_executed"] * res["notes_per_s_batch64"] / 1e9
                                                 / res["ceiling_gflops"], 3)
    if 1 in threads:
        res["ceiling_gflops_1thread"] = round(conv_ceiling_gflops(1), 2)
    res["peak_mb"] = round(sampler.stop() - base_rss, 1)
    return res


def _synth_fn(kind: str, path: Path, gen, cfg, k: int, macs: int):
    """``(fn(z, midi_pitch, alpha) -> audio [B, 16000], MACs it executes or None)`` for ``kind``."""
    lo, norm = cfg.pitch_range[0], cfg.get_normalizer()
    if kind == "eager":
        from darkgan.data.magif import magif_to_note

        return (lambda z, p, a: magif_to_note(norm.denormalize(gen(z, p - lo, a)), gen.cfg.synthesis_fade)), macs
    if kind == "fast":
        from darkgan.compression.fast import FastSynth, fast_generator

        fg = fast_generator(gen)
        synth = FastSynth(fg, norm, fade=gen.cfg.synthesis_fade)
        executed = count_macs_module(fg, torch.randn(1, gen.cfg.latent_dim), torch.zeros(1, dtype=torch.long),
                                     torch.rand(1, k) if k else None)
        return (lambda z, p, a: synth(z, p - lo, a)), executed
    if kind == "onnx":
        from darkgan.compression.export import load_onnx_session, run_onnx

        sessions = {}

        def fn(z, p, a):
            t = torch.get_num_threads()
            if t not in sessions:
                sessions[t] = load_onnx_session(path, t)
            return run_onnx(sessions[t], (z, p) if a is None else (z, p, a))
        return fn, None
    if kind == "torchscript":
        ts = torch.jit.load(str(path))
        return (lambda z, p, a: ts(z, p) if a is None else ts(z, p, a)), None
    raise ValueError(kind)


def _latency(fn, zpa, t: int, spec: dict) -> dict:
    """Single-note latency on ``t`` threads: median and min (ms) of up to ``runs`` timed calls
    (at least 5, then until ``max_seconds``)."""
    torch.set_num_threads(t)
    z, p, a = zpa
    for _ in range(int(spec.get("warmup", 3))):
        fn(z, p, a)
    times = []
    t_end = time.perf_counter() + float(spec.get("max_seconds", 60.0))
    while len(times) < int(spec.get("runs", 30)) and (len(times) < 5 or time.perf_counter() < t_end):
        times.append(_timed(lambda: fn(z, p, a)))
    key = "latency_ms_1thread" if t == 1 else "latency_ms_2threads" if t == 2 else f"latency_ms_{t}threads"
    return {key: round(1000 * statistics.median(times), 3), key + "_min": round(1000 * min(times), 3),
            key + "_runs": len(times)}


def _throughput(fn, inputs, t: int, macs: int, spec: dict) -> dict:
    """Batch throughput on ``t`` threads (notes/s, x real time, GFLOP/s) and its fraction of the
    machine's convolution ceiling measured around every timed batch."""
    torch.set_num_threads(t)
    bsz = int(spec.get("batch", 64))
    z, p, a = inputs(bsz, 1)
    fn(z, p, a)  # warm-up
    # the ceiling is sampled right before and after every timed batch, so that load from
    # other processes on a shared machine affects both sides of the fraction alike
    ceil = _Ceiling()
    bt, fracs, ceils = [], [], []
    for _ in range(int(spec.get("batch_runs", 2))):
        c0 = max(ceil.sample(), ceil.sample())
        dt = _timed(lambda: fn(z, p, a))
        c1 = max(ceil.sample(), ceil.sample())
        bt.append(dt)
        ceils += [c0, c1]
        fracs.append(2 * macs * bsz / dt / 1e9 / (0.5 * (c0 + c1)))
    nps = bsz / statistics.median(bt)
    return {"batch": bsz, "batch_threads": t, "notes_per_s_batch64": round(nps, 3),
            "notes_per_s_batch64_max": round(bsz / min(bt), 3),
            "x_realtime": round(nps * 1.0, 3),  # 1 s of audio per note
            "gflops_batch64": round(2 * macs * nps / 1e9, 2), "ceiling_gflops": round(statistics.median(ceils), 2),
            "ceiling_gflops_max": round(max(ceils + [conv_ceiling_gflops(t)]), 2),
            "ceiling_fraction": round(statistics.median(fracs), 3)}


def _worker_main() -> None:  # python -c "from darkgan.compression.bench import _worker_main; _worker_main()" SPEC
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(max(spec.get("threads", [1, 2])))
    print("DARKGAN_BENCH " + json.dumps(measure(spec)), flush=True)


def measure_in_subprocess(spec: dict, timeout: float = 1800) -> dict:
    """Run :func:`measure` in a fresh Python process (own peak memory, own thread pool)."""
    from darkgan.errors import DarkGANError

    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(spec.get("threads", [1, 2]))))
    cmd = [sys.executable, "-c", "from darkgan.compression.bench import _worker_main; _worker_main()", json.dumps(spec)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    for line in proc.stdout.splitlines():
        if line.startswith("DARKGAN_BENCH "):
            return json.loads(line[len("DARKGAN_BENCH "):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    raise DarkGANError(f"benchmark of {spec['name']} failed: {tail[0]}")


# ------------------------------------------------------------------------------- orchestration

def model_specs(checkpoints: list[str], onnx: list[str] = (), torchscript: list[str] = (),
                eager: bool = True, source: str | None = None) -> list[dict]:
    """Bench entries: each checkpoint eager (optional) and fast, a SING checkpoint once (kind
    ``sing``); each exported file."""
    from darkgan.models.checkpoint import resolve_checkpoint
    from darkgan.sing.checkpoint import is_sing_checkpoint, resolve

    specs = []
    for c in checkpoints:
        if is_sing_checkpoint(c):
            p = resolve(c)
            specs.append({"name": f"{p.name} (SING)", "kind": "sing", "path": str(p)})
            continue
        p = resolve_checkpoint(c)
        name = p.name if p.name not in ("", ".") else str(p)
        if eager:
            specs.append({"name": f"{name} (eager)", "kind": "eager", "path": str(p)})
        specs.append({"name": f"{name} (fast)", "kind": "fast", "path": str(p)})
    for kind, files in (("onnx", onnx), ("torchscript", torchscript)):
        for f in files:
            src = _export_source(f, source)
            specs.append({"name": Path(f).name, "kind": kind, "path": str(f), "checkpoint": src})
    return specs


def _export_source(path: str, fallback: str | None) -> str:
    """The checkpoint an exported file came from (its metadata), for params/MACs/inputs."""
    from darkgan.errors import DarkGANError

    src = None
    try:
        if str(path).endswith(".onnx"):
            import onnx

            m = onnx.load(str(path), load_external_data=False)
            src = {p.key: p.value for p in m.metadata_props}.get("source_checkpoint")
        else:
            extra = {"darkgan.json": ""}
            torch.jit.load(str(path), _extra_files=extra)
            src = json.loads(extra["darkgan.json"] or "{}").get("source_checkpoint")
    except Exception as e:
        raise DarkGANError(f"{path}: not a darkgan export ({type(e).__name__})") from None
    src = src if src and Path(src).exists() else fallback
    if not src:
        raise DarkGANError(f"{path}: its source checkpoint is gone; pass --source-checkpoint")
    return src


def run_bench(specs: list[dict], threads=(1, 2), runs: int = 30, warmup: int = 3, batch: int = 64,
              batch_runs: int = 2, max_seconds: float = 60.0, data: str | None = None, quality_n: int = 256,
              teacher: str | None = None, seed: int = 0, progress: bool = True) -> list[dict]:
    """Measure every spec (each in a subprocess) and, with ``data`` or ``teacher``, its quality."""
    rows = []
    for spec in specs:
        spec = dict(spec, threads=list(threads), runs=runs, warmup=warmup, batch=batch, batch_runs=batch_runs,
                    max_seconds=max_seconds)
        if progress:
            print(f"bench: {spec['name']} ...", file=sys.stderr, flush=True)
        try:
            rows.append(measure_in_subprocess(spec))
        except Exception as e:  # one failing model must not lose the others' numbers
            print(f"bench: {spec['name']}: {e}", file=sys.stderr, flush=True)
            rows.append({"model": spec["name"], "kind": spec["kind"], "path": spec["path"], "error": str(e),
                         "params": None, "macs": None})
    gans = [sp for sp in specs if sp["kind"] != "sing"]  # quality columns are DarkGAN's (SING's: darkgan evaluate)
    if (data is not None or teacher is not None) and gans:
        add_quality(rows, specs, teacher or gans[0].get("checkpoint") or gans[0]["path"], data, quality_n, seed)
    else:
        for r in rows:
            r.setdefault("fad", None)
            r.setdefault("pitch_accuracy", None)
    return rows


def add_quality(rows: list[dict], specs: list[dict], teacher: str, data: str | None, n: int, seed: int) -> None:
    """Fill ``fad``, ``fad_teacher``, ``pitch_accuracy`` (same inputs for every model)."""
    from darkgan.compression.quality import QualityStudy, onnx_synth, torch_synth
    from darkgan.models.checkpoint import load_generator, resolve_checkpoint

    study = QualityStudy(teacher, data, n=n, seed=seed)
    teacher_path = resolve_checkpoint(teacher)
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    cache: dict[tuple, dict] = {}
    for r, spec in zip(rows, specs):
        if r.get("error") or spec["kind"] == "sing":
            continue
        path = Path(spec["path"])
        if spec["kind"] in ("eager", "fast"):
            key = ("torch", str(path.resolve()))
            if key not in cache:
                is_t = path.resolve() == teacher_path.resolve()
                g, c = load_generator(path)
                cache[key] = study.evaluate(torch_synth(g, c), is_teacher=is_t)
        elif spec["kind"] == "onnx":
            key = ("onnx", str(path))
            if key not in cache:
                cache[key] = study.evaluate(onnx_synth(path))
        else:
            ts = torch.jit.load(str(path))
            key = ("ts", str(path))
            if key not in cache:
                cache[key] = study.evaluate(lambda z, p, a: (ts(z, p) if a is None else ts(z, p, a)).float().numpy())
        r.update(cache[key])


def format_table(rows: list[dict]) -> str:
    """A table like the DrumGAN compression study's Table 6 (plus machine-relative columns)."""
    head = ["model", "params (M)", "GMAC/note", "ms 1 thr", "ms 2 thr", "notes/s b64", "x RT b1", "x RT",
            "GFLOP/s", "ceiling", "frac", "peak MB", "file MB", "FAD", "FAD vs T", "pitch acc"]

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = [head]
    for r in rows:
        if r.get("error"):
            lines.append([r["model"], "error: " + r["error"][:60]] + [""] * (len(head) - 2))
            continue
        lines.append([r["model"], f(r["params"] / 1e6, ".2f"), f(None if r.get("macs") is None else r["macs"] / 1e9, ".3f"),
                      f(r.get("latency_ms_1thread"), ".1f"), f(r.get("latency_ms_2threads"), ".1f"),
                      f(r.get("notes_per_s_batch64"), ".1f"), f(r.get("x_realtime_batch1"), ".1f"),
                      f(r.get("x_realtime"), ".1f"),
                      f(r.get("gflops_batch64"), ".1f"), f(r.get("ceiling_gflops"), ".0f"),
                      f(r.get("ceiling_fraction"), ".2f"), f(r.get("peak_mb"), ".0f"), f(r.get("file_mb"), ".1f"),
                      f(r.get("fad"), ".3f"), f(r.get("fad_teacher"), ".3f"), f(r.get("pitch_accuracy"), ".2f")])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = []
    for j, line in enumerate(lines):
        out.append("| " + " | ".join(str(c).ljust(w) for c, w in zip(line, widths)) + " |")
        if j == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def bench(checkpoints: list[str] | None = None, onnx: list[str] = (), torchscript: list[str] = (),
          json_out: str | None = None, eager: bool = True, **kw) -> list[dict]:
    """``darkgan bench``: measure, print the table, optionally write ``json_out`` atomically.

    Without checkpoints, a random-weight ``paper`` checkpoint (the facts file's reference case)
    is written to a temporary folder and measured eagerly and through the fast path.
    """
    from darkgan.utils.io import write_json

    tmp = None
    if not checkpoints and not onnx and not torchscript:
        from darkgan.compression.synthetic import random_checkpoint

        tmp = tempfile.TemporaryDirectory(prefix="darkgan-bench-")
        checkpoints = [str(random_checkpoint(Path(tmp.name) / "paper-random", "paper", 128, critic=False))]
    try:
        specs = model_specs(list(checkpoints or []), onnx, torchscript, eager=eager,
                            source=(checkpoints or [None])[0])
        rows = run_bench(specs, **kw)
    finally:
        if tmp is not None:
            tmp.cleanup()
    for r in rows:
        for k in JSON_KEYS:
            r.setdefault(k, None)
    print(format_table(rows))
    if json_out:
        write_json(json_out, {"machine": machine_info(), "rows": rows})
    return rows


def machine_info() -> dict:
    import platform

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "load_avg": list(os.getloadavg()),
            "numpy": np.__version__}
