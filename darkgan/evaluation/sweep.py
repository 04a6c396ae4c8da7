"""``darkgan sweep``: the paper's temperature study (Sec. 5, Tables 1-2, Figures 2-3).

Trains the no-attribute baseline and one DarkGAN per temperature with the training stage's
Python API (:func:`darkgan.training.loop.train`, one run folder each under ``OUT/runs/``;
interrupted runs resume), then evaluates all of them into one report (``OUT/report/``) with
:func:`darkgan.evaluation.runner.evaluate`. Budget estimates (seconds per step measured on a
few steps, times the preset's total steps) are printed before anything long starts.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from darkgan.errors import DarkGANError


def parse_temperatures(text: str) -> list[float]:
    """``"1,1.5,2"`` -> ``[1.0, 1.5, 2.0]``. Raises DarkGANError for non-numbers or T <= 0."""
    try:
        ts = [float(t) for t in str(text).split(",") if t.strip()]
    except ValueError:
        raise DarkGANError(f"--temperatures {text!r}: expected comma-separated numbers, e.g. 1,1.5,2,3,5") from None
    if not ts or any(t <= 0 for t in ts):
        raise DarkGANError(f"--temperatures {text!r}: need at least one temperature, all > 0")
    return ts


def _measure(data_dir: Path, out: Path, preset: str, overrides: list[str], device: str | None, steps: int = 3) -> float:
    """Seconds per training step of the preset (a throw-away run of ``steps`` steps)."""
    from darkgan.training.loop import train

    tmp = out / "_budget"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        t0 = time.time()
        res = train(data_dir, tmp, preset=preset, overrides=overrides, stop_at_step=steps, device=device,
                    progress=False, log=lambda m: None)
        wall = time.time() - t0
        return max(res.seconds / max(res.step, 1), 1e-4) if res.step else wall / steps
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sweep(data_dir: str | Path, temperatures: list[float], out: str | Path, preset: str = "small",
          overrides: list[str] | None = None, baseline: bool = True, device: str | None = None,
          max_minutes: float | None = None, n: int | None = None, protocol: str = "auto", seed: int = 0,
          dry_run: bool = False, progress: bool = True, log: Callable = print,
          protocol_overrides: dict | None = None) -> dict | None:
    """Train the baseline + one model per temperature, then evaluate all into ``out/report``.

    Args:
        temperatures: distillation temperatures T (paper: 1, 1.5, 2, 3, 5), one DarkGAN each.
        overrides: ``section.key=value`` settings for every run (used when a run starts; a run
            that resumes keeps its saved configuration).
        max_minutes: wall-time cap per training run (the run stops with a checkpoint).
        n, protocol, seed, protocol_overrides: the evaluation's (:func:`~darkgan.evaluation.runner.evaluate`).
        dry_run: print the budget and the plan only.

    Returns:
        The evaluation's metrics dict (None on a dry run).

    Raises:
        DarkGANError: bad temperatures, dataset errors (from training / evaluation).
    """
    from darkgan.training.loop import resolve_config, run_has_checkpoint, train

    data_dir, out = Path(data_dir), Path(out)
    overrides = list(overrides or [])
    runs = ([("baseline", None)] if baseline else []) + [(f"T={t:g}", t) for t in temperatures]
    cfg = resolve_config(preset, overrides)
    total = cfg.train.total_steps
    out.mkdir(parents=True, exist_ok=True)
    sps = _measure(data_dir, out, preset, overrides, device)
    per_run = total * sps
    if max_minutes:
        per_run = min(per_run, max_minutes * 60)
    log(f"sweep: {len(runs)} runs ({', '.join(r for r, _ in runs)}), preset {preset}, {total} steps each at "
        f"~{sps:.2f} s/step here -> ~{per_run / 60:.0f} min per run, ~{len(runs) * per_run / 3600:.1f} h of training"
        + (f" (capped at {max_minutes} min per run)" if max_minutes else "") + "; then the evaluation")
    if dry_run:
        return None
    folders, names = [], []
    for name, t in runs:
        folder = out / "runs" / name.replace("=", "")
        resume = run_has_checkpoint(folder)
        log(f"sweep: training {name} -> {folder}" + (" (resuming)" if resume else ""))
        res = train(data_dir, folder, preset=preset, overrides=() if resume else overrides, temperature=t,
                    attributes=t is not None,
                    resume=resume, max_minutes=max_minutes, device=device, progress=progress)
        if res.checkpoint is None and not run_has_checkpoint(folder):
            raise DarkGANError(f"{folder}: training {name} wrote no checkpoint ({res.reason})")
        folders.append(folder)
        names.append(name)
    from darkgan.evaluation.runner import evaluate

    return evaluate(folders, data_dir, out / "report", n=n, protocol=protocol, device=device, seed=seed,
                    names=names, progress=progress, log=log, protocol_overrides=protocol_overrides)
