"""Fault injection: kill -9 a training run at random moments, flip bits and truncate files.

Usage::

    python benchmarks/fault_injection.py --out /tmp/fi [--kills 20] [--seed 0] [--json FILE]

1. Renders a small real dataset itself (5 GM programs x 2 SoundFonts x 3 pitches = 30 notes,
   like the test suite's ``rendered_dataset``), then ``prepare`` -> ``label`` -> ``attributes``.
2. Reference: one uninterrupted ``tiny``-preset run (:func:`darkgan.training.loop.train`, the
   function behind ``darkgan train``; 1 thread, all 6 scales, 80 steps, a checkpoint every
   ``--checkpoint-every`` steps).
3. Kills: the same run in a second folder, resumed after each ``kill -9`` (SIGKILL: no handler
   runs) of the process training it (forked from this one, so restarts skip ``import torch``).
   A third of the kills land at a uniformly random time in the first 2 s of a process (lock,
   clean-up, checkpoint and data loading, first steps), a third in the first 2 s of its training
   loop, a third within 50 ms after a new checkpoint appeared (in or near checkpoint writes).
   After every kill: the run folder's latest checkpoint must load with every checksum verified;
   the steps lost are the last step the progress bar showed (refreshed every 0.1 s) minus the
   step of that checkpoint. At the end the killed-and-resumed run must equal an uninterrupted
   one bit for bit (weights, EMA, critic, Adam states, step).
4. Corruptions, each on a fresh copy: a random bit flipped (``--flips`` positions) and a
   truncation to half of every kind of file of a training checkpoint, of the run folder's
   ``LATEST`` and of the dataset (cache, labels, vocabulary). Each probe loads the file the way
   the commands do (``load_training_state`` for ``--resume``, ``load_generator``, ``NoteCache``,
   ``load_labels``, ``load_vocabulary``) and is classed as *detected* (a one-line DarkGANError),
   *crash* (another exception), *harmless* (loaded, same content: a byte no reader uses) or
   *silent* (loaded, different content).

Prints a table and writes JSON (``--json``, default ``OUT/fault_injection.json``).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ITERATIONS = "[16,16,16,12,10,10]"
os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: forked children start no thread pool
sys.path.insert(0, str(REPO))


def make_dataset(root: Path) -> Path:
    """Render, prepare, label and choose 16 attributes (skipped when already done)."""
    from darkgan.data.prepare import prepare
    from darkgan.data.render import render_dataset
    from darkgan.paths import find_soundfont
    from darkgan.teacher.labels import label_dataset
    from darkgan.teacher.vocabulary import build_vocabulary

    if not (root / "vocabulary.json").is_file():
        fonts = [find_soundfont(n) for n in ("FluidR3_GM.sf2", "TimGM6mb.sf2")]
        render_dataset(root, soundfonts=fonts, programs=[0, 24, 40, 56, 73], banks=[0], pitches=[48, 60, 67],
                       velocities=[100], split="instrument", seed=0, jobs=1, progress=False, verbose=False)
        prepare(root, progress=False)
        label_dataset(root, progress=False)
        build_vocabulary(root, n=16)
    return root


def fork_train(data: Path, out: Path, every: int, log: Path) -> int:
    """Fork a child that runs :func:`darkgan.training.loop.train` (as ``darkgan train`` does,
    resuming when ``out`` has a checkpoint) with stdout/stderr (the progress bar) in ``log``.
    Forking skips the seconds of ``import torch`` of every restart; the child is a separate
    process, so ``kill -9`` and the folder lock behave as for the command."""
    pid = os.fork()
    if pid:
        return pid
    code = 3
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1), os.dup2(fd, 2)
        from darkgan.training.loop import run_has_checkpoint, train

        resume = out.is_dir() and run_has_checkpoint(out)
        kw = {} if resume else {"preset": "tiny", "overrides": [f"train.iterations={ITERATIONS}",
                                                                f"train.checkpoint_every={every}", "train.log_every=1"]}
        res = train(data, out, resume=resume, threads=1, progress=True, **kw)
        code = 0 if res.finished else 1
    except BaseException:  # noqa: BLE001 - the parent reads the log
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)


def latest_step(run: Path) -> int:
    """Step of the run's latest checkpoint, loaded with every checksum verified (0: none)."""
    from darkgan.models.checkpoint import load_training_state
    from darkgan.training.loop import run_has_checkpoint

    if not run.is_dir() or not run_has_checkpoint(run):
        return 0
    return int(load_training_state(run)["train_state"]["step"])


def _exited(pid: int, state: dict) -> bool:
    """Whether child ``pid`` has ended (reaped once; its status kept in ``state``)."""
    if "status" not in state:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            state["status"] = status
    return "status" in state


def _wait_for(pred, pid: int, state: dict, limit: float = 300.0) -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and not pred() and not _exited(pid, state):
        time.sleep(0.005)


def one_kill(data: Path, run: Path, every: int, rng: random.Random, mode: str) -> dict:
    """Start (or resume) the run, SIGKILL it at a random moment of ``mode`` ("anytime": from
    the fork on; "training": once the loop started; "checkpoint": right after a new checkpoint
    appeared), and check what it left."""
    start = latest_step(run)
    if start == 0 and run.exists():  # killed before its first checkpoint: nothing to resume
        shutil.rmtree(run)
    log = run.parent / "child.log"
    pid = fork_train(data, run, every, log)
    t0 = time.monotonic()
    latest = run / "LATEST"
    before = latest.stat().st_mtime_ns if latest.exists() else 0
    state: dict = {}
    if mode == "training":
        _wait_for(lambda: "darkgan train:" in log.read_text(errors="replace"), pid, state)
    elif mode == "checkpoint":
        _wait_for(lambda: latest.exists() and latest.stat().st_mtime_ns != before, pid, state)
    time.sleep(rng.uniform(0.0, {"anytime": 2.0, "training": 2.0, "checkpoint": 0.05}[mode]))
    finished = _exited(pid, state)
    during_write = False
    if not finished:
        os.kill(pid, signal.SIGKILL)
        during_write = any(run.glob(".checkpoint-*.tmp")) if run.exists() else False
        os.waitpid(pid, 0)
    shown = [int(m.group(1)) for m in re.finditer(r"\| (\d+)/\d+ \[", log.read_text(errors="replace"))]
    seen = max(shown + [start])
    try:
        after, intact = latest_step(run), True
    except Exception as e:  # noqa: BLE001 - any failure to load is what we are counting
        after, intact = -1, f"{type(e).__name__}: {e}"
    if finished and os.waitstatus_to_exitcode(state["status"]) not in (0, 1):
        raise SystemExit(f"training {run} failed:\n" + log.read_text(errors="replace")[-3000:])
    return {"mode": mode, "at_s": round(time.monotonic() - t0, 2), "finished": finished,
            "during_checkpoint_write": during_write, "resumed_from": start, "step_shown": seen,
            "checkpoint_after": after, "intact": intact, "steps_lost": max(0, seen - max(after, 0))}


def compare_runs(a: Path, b: Path) -> bool:
    import torch

    from darkgan.models.checkpoint import load_training_state

    A, B = load_training_state(a), load_training_state(b)
    for part in ("generator", "ema", "critic"):
        if A[part].keys() != B[part].keys() or not all(torch.equal(v, B[part][k]) for k, v in A[part].items()):
            return False
    for key in ("g", "d"):
        sa, sb = A["optim"][key]["state"], B["optim"][key]["state"]
        if not all(torch.equal(s["exp_avg_sq"], sb[p]["exp_avg_sq"]) for p, s in sa.items()):
            return False
    return A["train_state"]["step"] == B["train_state"]["step"]


def _run_to_end(data: Path, run: Path, every: int) -> None:
    pid = fork_train(data, run, every, run.parent / "child.log")
    if os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0:
        raise SystemExit(f"training {run} failed:\n" + (run.parent / "child.log").read_text()[-3000:])


def run_kills(data: Path, work: Path, kills: int, every: int, rng: random.Random) -> dict:
    ref = work / "reference"
    if not (ref / "LATEST").is_file():
        _run_to_end(data, ref, every)
    run = work / "killed"
    shutil.rmtree(run, ignore_errors=True)
    rows: list[dict] = []
    modes = ("anytime", "training", "checkpoint")
    while sum(not r["finished"] for r in rows) < kills and len(rows) < 3 * kills:
        rows.append(one_kill(data, run, every, rng, modes[len(rows) % 3]))
    _run_to_end(data, run, every)
    killed = [r for r in rows if not r["finished"]]
    return {"kills": len(killed), "survived": sum(r["intact"] is True for r in killed),
            "during_checkpoint_write": sum(r["during_checkpoint_write"] for r in killed),
            "steps_lost_max": max((r["steps_lost"] for r in killed), default=0),
            "checkpoint_every": every, "final_equals_uninterrupted": compare_runs(ref, run), "rows": rows}


# ------------------------------------------------------------------------------ corruptions

def _flip(path: Path, rng: random.Random) -> str:
    data = bytearray(path.read_bytes())
    i = rng.randrange(len(data))
    data[i] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))
    return f"bit flip at byte {i}"


def _truncate(path: Path, rng: random.Random) -> str:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    return "truncated to half"


def _readers(data_copy: Path, run_copy: Path):
    """name -> (function reading the probed thing the way the commands do, returning content)."""
    import numpy as np

    from darkgan.data.cache import NoteCache
    from darkgan.models.checkpoint import load_generator, load_training_state
    from darkgan.teacher.labels import load_labels
    from darkgan.teacher.vocabulary import load_vocabulary

    def resume():
        st = load_training_state(run_copy)
        parts = [st[k] for k in ("generator", "ema", "critic", "train_state", "rng", "optim")]
        return parts + [st["config"].to_json()]

    def cache():
        c = NoteCache(data_copy)
        return [np.array(c.magif), c.note_str, c.pitch, c.split, c.normalizer.to_dict()]  # a copy, not the map

    return {"resume": resume, "generator": lambda: [load_generator(run_copy)[0].state_dict()],
            "cache": cache, "labels": lambda: [load_labels(data_copy).logits, load_labels(data_copy).note_str],
            "vocabulary": lambda: [load_vocabulary(data_copy).data]}


def _same(a, b) -> bool:
    import numpy as np
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.shape == b.shape and torch.equal(a, b)
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def probe(data: Path, run: Path, work: Path, target: str, reader: str, damage, rng: random.Random) -> dict:
    """Copy dataset and run, damage ``target`` (relative to ``data:`` or ``run:``), read it."""
    from darkgan.errors import DarkGANError

    dc, rc = work / "probe-data", work / "probe-run"
    for src, dst in ((data, dc), (run, rc)):
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("audio", "tb"))
    readers_clean = _readers(dc, rc)
    want = readers_clean[reader]()
    root, rel = target.split(":", 1)
    from darkgan.models.checkpoint import read_checkpoint_config

    base = dc if root == "data" else (rc if rel == "LATEST" else read_checkpoint_config(rc).path)
    how = damage(base / rel, rng)
    try:
        got = _readers(dc, rc)[reader]()
    except DarkGANError as e:
        return {"file": target, "damage": how, "outcome": "detected", "message": str(e)[:160]}
    except Exception as e:  # noqa: BLE001
        return {"file": target, "damage": how, "outcome": "crash", "message": f"{type(e).__name__}: {e}"[:160]}
    return {"file": target, "damage": how, "outcome": "harmless" if _same(want, got) else "silent"}


TARGETS = [("run:generator.safetensors", "resume"), ("run:generator.safetensors", "generator"),
           ("run:generator_raw.safetensors", "resume"), ("run:critic.safetensors", "resume"),
           ("run:optim_g.pt", "resume"), ("run:optim_d.pt", "resume"), ("run:rng.safetensors", "resume"),
           ("run:train_state.json", "resume"), ("run:config.json", "resume"), ("run:LATEST", "resume"),
           ("data:cache/magif.npy", "cache"), ("data:cache/index.npz", "cache"), ("data:cache/stats.json", "cache"),
           ("data:labels/efficientat-mn04.npz", "labels"), ("data:vocabulary.json", "vocabulary")]


def run_corruptions(data: Path, run: Path, work: Path, flips: int, rng: random.Random) -> list[dict]:
    rows = []
    for target, reader in TARGETS:
        for damage in [_flip] * flips + [_truncate]:
            rows.append(probe(data, run, work, target, reader, damage, rng))
    shutil.rmtree(work / "probe-data", ignore_errors=True)
    shutil.rmtree(work / "probe-run", ignore_errors=True)
    return rows


def print_report(res: dict) -> None:
    k = res["kill_resume"]
    print(f"\nkill -9 at random moments: {k['kills']} kills ({k['during_checkpoint_write']} during a checkpoint "
          f"write), {k['survived']} left a loadable, checksum-verified checkpoint; steps lost at most "
          f"{k['steps_lost_max']} (checkpoint every {k['checkpoint_every']}); final weights equal the "
          f"uninterrupted run: {k['final_equals_uninterrupted']}")
    print(f"\n{'file':<36} {'damage':<8} {'detected':>8} {'harmless':>8} {'silent':>6} {'crash':>5}")
    table: dict = {}
    for r in res["corruptions"]:
        key = (r["file"], "truncate" if r["damage"].startswith("trunc") else "bit flip")
        table.setdefault(key, {"detected": 0, "harmless": 0, "silent": 0, "crash": 0})[r["outcome"]] += 1
    for (f, d), c in table.items():
        print(f"{f:<36} {d:<8} {c['detected']:>8} {c['harmless']:>8} {c['silent']:>6} {c['crash']:>5}")
    s = res["corruption_summary"]
    print(f"\ncorruptions: {s['probes']} probes, {s['detected']} detected, {s['harmless']} harmless, "
          f"{s['silent']} silent, {s['crash']} crashes")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="work folder (dataset, runs, JSON)")
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--flips", type=int, default=4, help="random bit flips per file (plus one truncation)")
    ap.add_argument("--checkpoint-every", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    t0 = time.time()
    data = make_dataset(args.out / "data")
    t1 = time.time()
    kills = run_kills(data, args.out, args.kills, args.checkpoint_every, rng)
    t2 = time.time()
    corr = run_corruptions(data, args.out / "reference", args.out, args.flips, rng)
    summary = {o: sum(r["outcome"] == o for r in corr) for o in ("detected", "harmless", "silent", "crash")}
    res = {"kill_resume": kills, "corruptions": corr, "corruption_summary": {"probes": len(corr), **summary},
           "wall_s": round(time.time() - t0, 1),
           "phase_wall_s": {"dataset": round(t1 - t0, 1), "kills": round(t2 - t1, 1),
                            "corruptions": round(time.time() - t2, 1)}}
    from darkgan.utils.io import write_json

    write_json(args.json or args.out / "fault_injection.json", res)
    print_report(res)
    print(f"\n{res['wall_s']} s ({res['phase_wall_s']}); JSON: {args.json or args.out / 'fault_injection.json'}")


if __name__ == "__main__":
    main()
