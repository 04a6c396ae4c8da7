"""Report metrics, registered by name and selected with ``darkgan evaluate --metrics a,b,...``.

After NVlabs/stylegan2-ada-pytorch ``metrics/metric_main.py``: each report metric is a function
``fn(ctx)`` of one :class:`darkgan.evaluation.context.EvalContext` that gathers its own inputs
through the context (sets of notes and features are computed once per evaluation and cached
per checkpoint) and writes its results into ``ctx.results``. The arithmetic is in the tested
array metrics of :mod:`darkgan.evaluation.metrics` (called by name); the curves of the paper's
Figures 2 and 3 come from the tested drivers ``run_ood_correlation`` /
``run_increment_consistency`` (:mod:`darkgan.evaluation.metrics.correlation`).

==============  ==========================================================================
name            what (results key)
==============  ==========================================================================
``pis``         pitch inception score, bootstrap 95 % interval (``rows``)
``iis``         instrument inception score, bootstrap 95 % interval (``rows``)
``kid``         KID x1e-4 on the inception embedding, jackknife 95 % interval (``rows``)
``kad``         kernel audio distance, teacher + YAMNet embeddings, any n (``rows``)
``fad``         FAD, teacher + YAMNet embeddings; needs n > D (``rows``)
``fad_inf``     FAD-inf (``rows``)
``pitch``       pitch accuracy (pYIN, 50 cents), Wilson 95 % interval (``rows``)
``tail``        the ends of the note: onset burst, HF burst in the last 50 ms, fade-out envelope (``rows``)
``rho``         rho_i, teacher + YAMNet, validation and training conditioning, real-data
                reference rows, bootstrap intervals (``correlation``, ``correlation_train``)
``ood``         out-of-distribution mean rho, paper Fig. 2 (``ood``)
``increment``   increment consistency, paper Fig. 3 (``increment``)
``examples``    audio examples (``examples``)
``listening``   listening page: strongest attributes at user values 0 / 0.5 / 1 (``listening``)
==============  ==========================================================================
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from darkgan.errors import DarkGANError
from darkgan.evaluation import metrics as M
from darkgan.evaluation.metrics import correlation as C

_REPORT: dict[str, Callable] = {}


def report_metric(name: str) -> Callable[[Callable], Callable]:
    """Decorator: register ``fn(ctx) -> None`` as report metric ``name``."""

    def deco(fn: Callable) -> Callable:
        _REPORT[name] = fn
        return fn

    return deco


def list_report_metrics() -> list[str]:
    """Registered report metrics, in report order."""
    return list(_REPORT)


def select_metrics(names: str | list[str] | tuple[str, ...] | None, skip: tuple[str, ...] = ()) -> list[str]:
    """The metrics to run: ``names`` (comma text or list; default all) minus ``skip``, in report
    order. ``skip`` may also hold ``"yamnet"`` (no YAMNet features; handled by the context).

    Raises:
        DarkGANError: an unknown name (the message lists the known ones).
    """
    if isinstance(names, str):
        names = [p.strip() for p in names.split(",") if p.strip()]
    wanted = list(names) if names else list(_REPORT)
    bad = [n for n in list(wanted) + [s for s in skip if s != "yamnet"] if n not in _REPORT]
    if bad:
        raise DarkGANError(f"unknown metric(s) {', '.join(bad)}; choose from {', '.join(_REPORT)}")
    return [n for n in _REPORT if n in wanted and n not in skip]


def run_metrics(ctx, names: list[str]) -> None:
    """Run the report metrics ``names`` (from :func:`select_metrics`) on ``ctx``, in order."""
    for name in names:
        _REPORT[name](ctx)


# ------------------------------------------------------------------------------ Table 1
@report_metric("pis")
def _pis(ctx) -> None:
    for row in ctx.row_names():
        ctx.record(row, "pis", lambda: M.compute("pis", pitch_probs=ctx.row_features(row, "inception")["pitch_probs"],
                                                 n_boot=ctx.proto.n_boot, seed=ctx.seed))


@report_metric("iis")
def _iis(ctx) -> None:
    for row in ctx.row_names():
        ctx.record(row, "iis", lambda: M.compute("iis", family_probs=ctx.row_features(row, "inception")["family_probs"],
                                                 n_boot=ctx.proto.n_boot, seed=ctx.seed))


@report_metric("kid")
def _kid(ctx) -> None:
    from darkgan.evaluation.metrics.kid import reference_scale
    from darkgan.evaluation.protocol import kid_subset_size

    try:
        ref = ctx.row_features("reference", "inception")["embedding"]
    except KeyError:
        return ctx.add_missing("kid", "reference", "inception features unavailable")
    s = reference_scale(ref)  # one scale for every row: the reference at unit mean square
    for row in ctx.row_names():
        def one() -> dict:
            f = ctx.row_features(row, "inception")["embedding"]
            return M.compute("kid", real=s * ref, fake=s * f, num_subsets=ctx.proto.kid_subsets, seed=ctx.seed,
                             subset_size=kid_subset_size(ctx.proto.kid_subset, len(f), len(ref)))
        ctx.record(row, "kid", one)


def _distance(ctx, metric: str, **kw) -> None:
    """``metric`` (fad / fad_inf / kad) of every row against the reference, per tagger embedding."""
    for emb in ctx.taggers:
        for row in ctx.row_names():
            ctx.record(row, f"{metric}_{emb}", lambda: M.compute(
                metric, real=ctx.row_features("reference", emb)["embedding"],
                fake=ctx.row_features(row, emb)["embedding"], **kw))


@report_metric("kad")
def _kad(ctx) -> None:
    _distance(ctx, "kad")


@report_metric("fad")
def _fad(ctx) -> None:
    _distance(ctx, "fad")


@report_metric("fad_inf")
def _fad_inf(ctx) -> None:
    _distance(ctx, "fad_inf", steps=ctx.proto.fad_inf_steps, seed=ctx.seed)


@report_metric("pitch")
def _pitch(ctx) -> None:
    for row in ctx.row_names():
        def one() -> dict:
            f0 = ctx.row_features(row, "f0")["f0"]
            return M.compute("pitch_accuracy", f0_hz=f0, pitch=ctx.row_set(row).pitch[:len(f0)])
        ctx.record(row, "pitch_accuracy", one)


@report_metric("tail")
def _tail(ctx) -> None:
    for row in ctx.row_names():
        ctx.record(row, "tail", lambda: M.compute("tail", wave=ctx.waves(ctx.row_set(row))))


# ------------------------------------------------------------------------------ Table 2
def _rho_of(ctx, ns, target: np.ndarray, row: str, key: str) -> None:
    fe = ctx.features(ns, ctx.feature_names)
    res = {}
    for tagger in ctx.taggers:
        try:
            res[tagger] = M.compute("attribute_correlation_ci", predicted=ctx.pred(fe, tagger), target=target,
                                    names=ctx.data.names, n_boot=ctx.proto.n_boot, seed=ctx.seed)
        except (DarkGANError, KeyError) as e:
            ctx.add_missing(f"attribute correlation ({tagger}, {key})", row, str(e))
    ctx.results[key][row] = res


@report_metric("rho")
def _rho(ctx) -> None:
    if not ctx.att_models:
        return
    T = ctx.att_models[0].temperature  # real rows: the labels at the (first) model's temperature
    for row, key, rows in (("real valid", "correlation", ctx.plan.va_rows),
                           ("real train", "correlation_train", ctx.plan.trb_rows)):
        target = ctx.alpha(ctx.att_models[0], ctx.data.note_logits(rows))
        _rho_of(ctx, ctx.real_set(row), target, row, key)
        ctx.results[key][row]["temperature"] = T
    for m in ctx.att_models:
        for cond, key in (("valid", "correlation"), ("train", "correlation_train")):
            _rho_of(ctx, ctx.gen_set(m, cond), ctx.cond(m, cond)[1], m.name, key)
    if ctx.ymap is not None:
        ctx.results["yamnet_mapping"] = {n: (int(j) if j >= 0 else None) for n, j in zip(ctx.data.names, ctx.ymap)}


# ------------------------------------------------------------------------------ Figures 2, 3
def _curve(ctx, m, kind: str, attributes: list[int], n: int, grid: np.ndarray) -> dict:
    """One curve per tagger from the tested driver (``kind``: "ood" or "increment")."""
    run = C.run_ood_correlation if kind == "ood" else C.run_increment_consistency
    pitch, alpha = ctx.cond(m, "valid")
    res = {}
    for tagger in ctx.taggers:
        att = [i for i in attributes if tagger == "teacher" or ctx.ymap[i] >= 0]
        if not att:
            continue
        bar = ctx.bar(len(att) * len(grid) * n, f"{m.name}: {kind} ({tagger})")
        res[tagger] = run(ctx.generate_fn(m, kind), ctx.predict_fn(tagger), pitch[:n], alpha[:n], att, grid,
                          seed=ctx.seed, batch=256, progress=bar, input_std=m.input_std)
        bar.close()
    res["attribute_names"] = [ctx.data.names[i] for i in attributes]
    res["n"] = n
    res["delta_units"] = "probability (paper)" if m.input_std is None else "std of the attribute's logit (model input)"
    return res


@report_metric("ood")
def _ood(ctx) -> None:
    levels = C.ood_levels(ctx.proto.ood_levels)
    for m in ctx.att_models:
        rho = ctx.teacher_rho(m)
        pos = [i for i in ctx.order_by_rho(m) if rho[i] > 0][:ctx.proto.ood_attributes or ctx.data.K]
        if not pos:
            ctx.add_missing("out-of-distribution correlation", m.name, "no attribute with rho > 0")
            continue
        n = min(ctx.proto.ood_n, ctx.proto.n)
        ctx.results["ood"][m.name] = dict(_curve(ctx, m, "ood", pos, n, C.ood_deltas(levels)), levels=levels)


@report_metric("increment")
def _increment(ctx) -> None:
    steps = C.increment_steps(ctx.proto.ic_steps)
    for m in ctx.att_models:
        rho = ctx.teacher_rho(m)
        best = [i for i in ctx.order_by_rho(m) if np.isfinite(rho[i])][:ctx.proto.ic_attributes]
        if not best:
            ctx.add_missing("increment consistency", m.name, "no attribute with a defined rho")
            continue
        n = min(ctx.proto.ic_n, ctx.proto.n)
        ctx.results["increment"][m.name] = dict(_curve(ctx, m, "increment", best, n, C.increment_deltas(steps)),
                                                steps=steps)


# ------------------------------------------------------------------------------ audio
@report_metric("examples")
def _examples(ctx) -> None:
    from darkgan.evaluation.report import write_examples

    try:
        ctx.results["examples"] = write_examples(ctx)
    except (DarkGANError, OSError) as e:
        ctx.add_missing("audio examples", "all", str(e))


@report_metric("listening")
def _listening(ctx) -> None:
    from darkgan.evaluation.listening import write_listening

    for m in ctx.att_models:
        try:
            ctx.results["listening"][m.name] = write_listening(ctx, m)
        except (DarkGANError, OSError, ValueError) as e:
            ctx.add_missing("listening page", m.name, str(e))
