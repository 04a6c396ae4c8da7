"""``darkgan evaluate``: the report metrics selected by name, on one shared context, into a report.

Flow of :func:`evaluate` (after NVlabs/stylegan2-ada-pytorch ``metrics/metric_main.py``):

1. **Models**: checkpoints (:func:`load_model`: :class:`darkgan.evaluation.models.DarkGANModel`,
   or :class:`darkgan.sing.eval_model.SingModel` for a SING checkpoint) or ready
   :class:`~darkgan.evaluation.models.EvalModel` objects; one report's generators share pitch
   range and vocabulary (:func:`check_compatible`).
2. **Context** (:class:`darkgan.evaluation.context.EvalContext`): the dataset's cache, labels
   and vocabulary, the seeded sample plan, and the feature cache ``REPORT_DIR/cache/`` (sets of
   notes generated and featurized once per checkpoint and input; a rerun reuses them).
3. **Metrics** selected by name (``--metrics``, minus ``--skip``;
   :mod:`darkgan.evaluation.suite` lists them), each gathering its inputs through the context;
   one that cannot be computed is recorded under ``missing`` with the reason.
4. **Report**: ``metrics.json``, ``report.md``, ``report.html`` + PNG plots, example WAVs and the
   listening page (:mod:`darkgan.evaluation.report`).

Protocols (:mod:`darkgan.evaluation.protocol`): ``paper`` (the paper's sizes, a GPU job),
``cpu`` (tens of minutes on 2 cores), ``demo`` (``make demo``: a few minutes), ``auto`` =
``paper`` with CUDA, else ``cpu``.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from darkgan.evaluation.models import DarkGANModel, EvalModel, check_compatible
from darkgan.evaluation.protocol import PROTOCOLS, Protocol, kid_subset_size, resolve_protocol  # noqa: F401 (API)
from darkgan.evaluation.taggers import yamnet_mapping  # noqa: F401 (API)

__all__ = ["evaluate", "load_model", "EvalModel", "DarkGANModel", "check_compatible", "resolve_protocol", "Protocol", "PROTOCOLS",
           "kid_subset_size", "yamnet_mapping"]


def load_model(path, device: str = "cpu", name: str | None = None) -> EvalModel:
    """The :class:`EvalModel` of a checkpoint, by its kind: a SING checkpoint (config.json kind
    ``sing-checkpoint``, or ``sing-default``) -> :class:`darkgan.sing.eval_model.SingModel`,
    anything else (``None``: the shipped default) -> :class:`DarkGANModel`. The same dispatch as
    ``darkgan generate``'s; SING is imported only here, inside the function (it comes after this
    stage).

    Raises:
        CheckpointError: a missing or unreadable checkpoint (from the loader).
    """
    from darkgan.sing.checkpoint import is_sing_checkpoint

    if is_sing_checkpoint(path):
        from darkgan.sing.eval_model import SingModel

        return SingModel(path, device=device, name=name)
    return DarkGANModel(path, device=device, name=name)


def _models(checkpoints, models, names, device) -> list[EvalModel]:
    """Ready models, unique display names (a repeated name gets ``-2``, ``-3`` ...)."""
    if models is None:
        cps = list(checkpoints) if checkpoints else [None]
        models = [load_model(p, device=device, name=(names[i] if names and i < len(names) else None))
                  for i, p in enumerate(cps)]
    check_compatible(models)
    seen: dict[str, int] = {}
    for m in models:
        seen[m.name] = seen.get(m.name, 0) + 1
        if seen[m.name] > 1:
            m.name = f"{m.name}-{seen[m.name]}"
    return models


def plan_text(ctx, selected: list[str]) -> str:
    """One line: sizes, generations per metric and an estimate (one timed batch per model)."""
    p, n_att = ctx.proto, len(ctx.att_models)
    gens = {"main": p.n * len(ctx.models) + (p.n * n_att if "rho" in selected else 0)}
    if "ood" in selected:
        gens["ood"] = n_att * min(p.ood_attributes or ctx.data.K, ctx.data.K) * p.ood_levels * min(p.ood_n, p.n)
    if "increment" in selected:
        gens["increment"] = n_att * min(p.ic_attributes, ctx.data.K) * p.ic_steps * min(p.ic_n, p.n)
    if "listening" in selected:
        gens["listening"] = n_att * min(p.listening_attributes, ctx.data.K) * 9
    rates = {}
    for m in ctx.models:
        b = min(8, p.n)
        pitch, alpha = ctx.cond(m)
        t0 = time.time()
        notes = {k: v[:b] for k, v in ctx.cond_notes().items()} if m.uses_notes else None
        ctx.generate(m, ctx.plan.z[m.latent_dim][:b], pitch[:b], None if alpha is None else alpha[:b], notes)
        rates[m.name] = b / max(time.time() - t0, 1e-6)
    total = sum(gens.values())
    real = len(ctx.plan.ref_rows) + len(ctx.plan.trb_rows) + len(ctx.plan.va_rows)
    est = total / float(np.mean(list(rates.values()))) + (total + real) / 60.0 * (1 if ctx.device == "cpu" else 0.1)
    return (f"evaluate: protocol {p.name}, device {ctx.device}, {len(ctx.models)} model(s), n={p.n} per model, "
            f"metrics {','.join(selected)}, real sets {len(ctx.plan.ref_rows)}/{len(ctx.plan.trb_rows)}/"
            f"{len(ctx.plan.va_rows)} (reference/train/valid), {total} generations "
            f"({', '.join(f'{k} {v}' for k, v in gens.items())}); estimated {_fmt_s(est)} on this machine "
            f"(generation {', '.join(f'{k} {v:.1f} notes/s' for k, v in rates.items())}; cached results are reused)")


def _metrics_json(ctx, selected: list[str], plan: str) -> dict:
    from darkgan.evaluation.metrics.correlation import increment_steps, ood_levels

    d, p = ctx.data, ctx.proto
    return {
        "darkgan_evaluation": 2, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": {"dir": str(d.dir.resolve()), "notes": int(len(d.cache)), "train": int(len(d.train_rows)),
                 "valid": int(len(d.valid_rows)), "teacher_labels": d.teacher_id,
                 "teacher_labels_sha256": d.table.teacher_sha256, "pitch_range": list(ctx.models[0].pitch_range)},
        "protocol": asdict(p), "protocol_paper": asdict(PROTOCOLS["paper"]), "metrics": selected,
        "seed": ctx.seed, "device": ctx.device,
        "sizes": {"reference": int(len(ctx.plan.ref_rows)), "real train": int(len(ctx.plan.trb_rows)),
                  "real valid": int(len(ctx.plan.va_rows)), "generated": p.n, "ood_n": min(p.ood_n, p.n),
                  "ic_n": min(p.ic_n, p.n), "ood_levels": ood_levels(p.ood_levels),
                  "ic_steps": increment_steps(p.ic_steps)},
        "models": [m.info for m in ctx.models], "embedding_models": ctx.feats.model_ids(),
        "attributes": {"names": d.names, "mids": d.mids, "teacher_class_indices": d.class_idx.tolist()},
        "results": ctx.results, "missing": ctx.missing,
        "cache": {"hits": ctx.fc.hits, "computed": ctx.fc.misses, "dir": str(ctx.fc.root)},
        "plan": plan, "wall_time_s": round(time.time() - ctx.t_start, 1),
    }


def evaluate(checkpoints: list | None, data_dir: str | Path, out_dir: str | Path, n: int | None = None,
             protocol: str = "auto", device: str | None = None, seed: int = 0, names: list[str] | None = None,
             models: list[EvalModel] | None = None, dry_run: bool = False, progress: bool = True,
             log: Callable = print, skip: tuple[str, ...] = (), metrics: str | list[str] | None = None,
             inception_epochs: int = 4, protocol_overrides: dict | None = None) -> dict:
    """Evaluate generators against ``data_dir``; write ``out_dir/{metrics.json, report.md,
    report.html}`` and return the metrics dict.

    Args:
        checkpoints: checkpoint folders (``None`` entries / empty list: the shipped checkpoint).
        data_dir: dataset folder with ``cache/``, ``labels/<teacher>.npz``, ``vocabulary.json``.
        out_dir: report folder (created; ``cache/`` inside holds generations and features).
        n: generations per model and conditioning (overrides the protocol's n).
        protocol: ``auto`` | ``cpu`` | ``demo`` | ``paper`` (:data:`PROTOCOLS`).
        device: ``cpu``/``cuda``; default CUDA when available.
        seed: seeds every draw (rows, z, subsets, bootstrap); recorded.
        names: display names of the checkpoints (default: folder names).
        models: ready :class:`EvalModel` objects instead of checkpoints (tests, sweeps).
        dry_run: print the plan and the cost estimate, write nothing else.
        skip: report metrics to leave out (:func:`darkgan.evaluation.suite.list_report_metrics`),
            and/or ``"yamnet"`` (no YAMNet features).
        metrics: report metrics to run (comma text or list; default: the protocol's, else all).
        protocol_overrides: :class:`Protocol` fields to override (e.g. ``{"ood_n": 16}``).

    Raises:
        DarkGANError: incompatible checkpoints, unknown metric names, a dataset without cache /
            labels / vocabulary / validation notes, too few notes for the requested sizes.
    """
    import torch

    from darkgan.evaluation.context import EvalContext, load_eval_data
    from darkgan.evaluation.report import write_report
    from darkgan.evaluation.suite import run_metrics, select_metrics
    from darkgan.utils.io import write_json

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    proto = resolve_protocol(protocol, n, **(protocol_overrides or {}))
    selected = select_metrics(metrics or proto.metrics or None, tuple(skip))
    from darkgan.data.cache import NoteCache

    NoteCache(data_dir)  # a dataset without cache: its own one-line error before any model loads
    models = _models(checkpoints, models, names, device)
    out_dir = Path(out_dir)
    ctx = EvalContext(load_eval_data(data_dir, models), models, proto, out_dir, seed=seed, device=device,
                      use_yamnet="yamnet" not in skip, progress=progress, log=log, inception_epochs=inception_epochs)
    plan = plan_text(ctx, selected)
    log(plan)
    if dry_run:
        return {"plan": plan, "protocol": asdict(proto), "metrics": selected}
    out_dir.mkdir(parents=True, exist_ok=True)
    run_metrics(ctx, selected)
    result = _metrics_json(ctx, selected, plan)
    write_json(out_dir / "metrics.json", _jsonable(result))
    write_report(out_dir, _jsonable(result))
    log(f"evaluate: wrote {out_dir / 'report.html'}, report.md, metrics.json ({_fmt_s(time.time() - ctx.t_start)}"
        + (f"; {len(ctx.missing)} result(s) missing, see the report" if ctx.missing else "") + ")")
    return result


def _fmt_s(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _jsonable(o):
    """NaN/inf -> None, numpy -> python, recursively (strict JSON)."""
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.floating, float)):
        v = float(o)
        return v if math.isfinite(v) else None
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, Path):
        return str(o)
    return o
