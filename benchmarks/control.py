"""Attribute control of a checkpoint, in one command: the numbers of issue 15's targets.

    python benchmarks/control.py [--checkpoint default|student|control|PATH] [--data DIR] [--n 2000]
                                 [--rise-notes 64] [--rise-attributes all|table2|N]
                                 [--rise-minutes M] [--retrieval-notes 64] [--fast]
                                 [--max-notes N] [--seed 0] [--no-yamnet] [--threads T]
                                 [--oracle std|white|linear [--oracle-ridge R] [--oracle-gain G]]
                                 [--add-effects GAIN] [--json OUT.json]

Conditioning: rows of the checkpoint's attribute bank (validation notes of its dataset, with
their pitches), ``alpha = sigmoid(z / T)`` (paper Eq. 1), noise z ~ N(0, I) from ``--seed``.
Printed (and written to ``--json``):

1. **rho** (paper Sec. 4.4.2, Table 2): ``--n`` notes conditioned on validation vectors drawn
   with replacement; rho_i = corr(F_i, alpha_i) for the teacher and YAMNet (the K attributes
   YAMNet shares, same AudioSet class), F at T = 1; bootstrap 95 % intervals (1,000 replicates)
   of each rho_i and of the mean over attributes; the Table-2 instruments in the vocabulary, and
   how many reach issue 15's 0.35 by rho_i and by the lower end of its interval
   (:func:`darkgan.evaluation.metrics.control.table2_count`: at 2,048 notes an instrument near the
   bar passes or fails by the draw).
   **rho_train** (with ``--data``): the same on ``--n`` training-set vectors (the teacher's labels
   of training notes of ``--data``, with their pitches): Tables 1-2's second conditioning column.
2. **rise**: for each attribute i, ``--rise-notes`` validation vectors with alpha_i set to its
   5th, then its 99th percentile (over ``--data``'s labelled notes, else over the bank), same z,
   pitch and other attributes; one-sided paired t-test per attribute (p < 0.01) of the YAMNet
   and of the teacher probability for class i; the count of significant rises. Attributes are
   tested in order: the Table-2 instruments, then by teacher rho; ``--rise-minutes M`` stops
   after M minutes and reports how many were tested (the count is then a lower bound).
   **rise_steered**: the same notes, seeds and percentiles, but the other attributes move with
   alpha_i as they do in the data (``steer="data"``, the generation API's default:
   :class:`darkgan.teacher.prior.AttributePrior`); what a user of ``generate(attributes=
   {name: value})`` gets. Not the issue's definition ("everything else fixed"): reported beside it.
3. **real-data reference** (with ``--data``): ``--real-notes`` validation notes rebuilt from the
   MAG-IF cache (as the generator's output is), their labels at T against the teacher's and
   YAMNet's predictions on them: the ceiling of rho (README: "real notes 0.84 / 0.18").
4. **retrieval** (timbre transfer): ``--retrieval-notes`` distinct validation notes; note j is
   generated from note j's attributes and pitch, re-labelled by the teacher (at the checkpoint's
   T), and the rank of note j among all of them by Euclidean distance of attribute vectors is
   recorded (median rank, top-5 share; chance (n + 1) / 2 and 5 / n). ``--retrieval-groups G``
   repeats it on G - 1 further groups of distinct notes (each ranked within its own group) and
   reports the means and a 95 % interval of top-5 over the groups
   (:func:`darkgan.evaluation.metrics.control.pooled_retrieval`); group 0 is the single run's.

``--oracle std|white``: every stage measures, instead of the generator, the nearest real training
note of ``--data`` at the asked pitch (:class:`darkgan.evaluation.oracle.NearestNoteGenerator`;
distance in standardised logits, or whitened): what a generator that answered every request with
the data itself would score, the ceiling of these measures on our data. ``--oracle linear``: that
nearest note (standardised) moved the rest of the way to the request along the data's partial
effects (:class:`darkgan.evaluation.oracle.LinearEffectGenerator`; the regression of the training
notes' MAG-IF on every attribute and the pitch, ``--oracle-ridge``, scaled by ``--oracle-gain``):
what a generator whose single edits change a note as the attribute alone changes the data would score.
``--add-effects GAIN``: the checkpoint's own notes with GAIN x those effects added to their MAG-IF
(:class:`darkgan.evaluation.oracle.EffectAddedGenerator`): its rise test is what YAMNet would hear if
every single edit also carried the attribute's own effect in the data (read the other stages with care:
between real requests the term counts the data's linear prediction once more).

Every number comes from the tested metric functions (:mod:`darkgan.evaluation.metrics.control`,
:mod:`darkgan.evaluation.metrics.correlation`). ``--fast`` (about 2-3 minutes on 2 quiet
cores): 256 rho notes, rises of the Table-2 instruments only on 24 notes, 32 retrieval notes;
``--max-notes N`` caps the rho notes. Cost of the defaults: n + 2 x K x rise-notes +
retrieval-notes generations (2,000 + 16,384 + 64 for K = 128).
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np


#: What the script measures, in this order (``--stages``).
STAGES = ("rho", "rho_train", "rise", "rise_steered", "real", "retrieval")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="default", help="checkpoint folder, or default / student / control")
    ap.add_argument("--data", default=None, help="labelled dataset: percentiles of the rise test over its notes")
    ap.add_argument("--n", type=int, default=2000, help="notes for rho (paper 10,000)")
    ap.add_argument("--rise-notes", type=int, default=64, help="notes per attribute in the rise test")
    ap.add_argument("--rise-attributes", default="all", help="all, table2, or N (the N with highest teacher rho)")
    ap.add_argument("--rise-minutes", type=float, default=None, help="time budget of the rise test")
    ap.add_argument("--retrieval-notes", type=int, default=64)
    ap.add_argument("--retrieval-groups", type=int, default=1,
                    help="independent groups of --retrieval-notes notes (default 1; 16 for a top-5 within ~0.03)")
    ap.add_argument("--real-notes", type=int, default=512, help="validation notes of --data for the real-data rho")
    ap.add_argument("--fast", action="store_true", help="256 / 24 notes, Table-2 rises, 32 retrieval notes")
    ap.add_argument("--max-notes", type=int, default=None, help="cap on the rho notes")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-yamnet", action="store_true")
    ap.add_argument("--oracle", choices=["std", "white", "linear"], default=None,
                    help="measure the nearest real training note of --data instead of the generator "
                         "(darkgan.evaluation.oracle; std: standardised logits, white: whitened; linear: "
                         "the std nearest note moved to the request along the data's partial effects)")
    ap.add_argument("--oracle-ridge", type=float, default=0.0, help="--oracle linear: the regression's ridge")
    ap.add_argument("--oracle-gain", type=float, default=1.0, help="--oracle linear: the effects' scale")
    ap.add_argument("--add-effects", type=float, default=None, metavar="GAIN",
                    help="measure the generator with GAIN x the data's partial effects added to its MAG-IF "
                         "(darkgan.evaluation.oracle.EffectAddedGenerator; --oracle-ridge; needs --data)")
    ap.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    ap.add_argument("--batch-size", type=int, default=None, help="generator batch (default: the API's)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    if args.fast:
        args.n, args.rise_notes, args.rise_attributes, args.retrieval_notes = 256, 24, "table2", 32
        args.n_boot = min(args.n_boot, 200)
    if args.max_notes:
        args.n = min(args.n, args.max_notes)
    args.stages = tuple(x.strip() for x in args.stages.split(",") if x.strip())
    bad = [x for x in args.stages if x not in STAGES]
    if bad:
        ap.error(f"--stages: unknown {', '.join(bad)}; choose from {', '.join(STAGES)}")
    if args.retrieval_groups < 1 or args.retrieval_notes < 2:
        ap.error(f"--retrieval-groups {args.retrieval_groups} / --retrieval-notes {args.retrieval_notes}: "
                 "need >= 1 group of >= 2 notes")
    return args


def percentiles(model, data, qs=None) -> tuple[np.ndarray, np.ndarray, str]:
    """alpha_i percentiles ``[K]`` x 2 over the dataset's labelled notes (or the bank); ``qs``: default
    :data:`darkgan.training.terms.RISE_PERCENTILES`."""
    if qs is None:
        from darkgan.training.terms import RISE_PERCENTILES as qs
    T = model.temperature
    if data:
        from darkgan.teacher.labels import load_labels

        z = np.asarray(load_labels(data, str(model.config.teacher["id"])).logits)[:, model.config.class_indices]
        src = f"{data} ({len(z)} labelled notes)"
    else:
        z, src = model.bank.logits, f"attribute bank ({len(model.bank)} validation notes)"
    a = model.bank.alpha(np.arange(len(model.bank)), T) if not data else 1 / (1 + np.exp(-z.astype(np.float64) / T))
    lo, hi = np.percentile(a, qs, axis=0)
    return lo.astype(np.float32), hi.astype(np.float32), src


def rise_attributes(spec: str, names: list[str], rho: np.ndarray) -> list[int]:
    """Attribute order of the rise test: the Table-2 instruments, then by teacher rho."""
    from darkgan.evaluation.taggers import TABLE2_INSTRUMENTS

    table2 = [names.index(n) for n in TABLE2_INSTRUMENTS if n in names]
    if spec == "table2":
        return table2
    rest = [int(i) for i in np.argsort(-np.nan_to_num(rho, nan=-2.0), kind="stable") if int(i) not in table2]
    order = table2 + rest
    return order if spec == "all" else order[:int(spec)]


def rise(args, gen, preds, pitch, alpha, which, lo, hi, names, set_level=None, desc="rise") -> dict:
    """run_attribute_rise over ``which`` in chunks of 4 attributes, within ``--rise-minutes``;
    the chunks' results are concatenated per tagger."""
    from tqdm import tqdm

    from darkgan.evaluation.metrics.control import run_attribute_rise

    t0, out = time.perf_counter(), {}
    bar = tqdm(total=len(which) * 2 * len(pitch), desc=desc, unit="note")
    for c in range(0, len(which), 4):
        if args.rise_minutes and time.perf_counter() - t0 > 60 * args.rise_minutes:
            break
        part = run_attribute_rise(gen, preds, pitch, alpha, which[c:c + 4], lo, hi, seed=args.seed + 1,
                                  names=names, progress=bar, set_level=set_level)
        for tag, r in part.items():
            if tag not in out:
                out[tag] = r
                continue
            for k in ("p", "mean_low", "mean_high", "mean_rise", "significant", "attributes", "names",
                      "low_value", "high_value"):
                out[tag][k] = list(out[tag][k]) + list(r[k])
            out[tag]["n_significant"] += r["n_significant"]
    bar.close()
    for r in out.values():
        r["tested"] = len(r["p"])
    return out


def counted(gen, total: int, desc: str):
    """``gen`` with a progress bar over ``total`` notes."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="note")

    def generate(pitch, attrs, seed):
        w = gen(pitch, attrs, seed)
        bar.update(len(pitch))
        return w

    return generate


def save(args, out: dict) -> None:
    """Write what is measured so far to ``--json`` (each stage rewrites it)."""
    if args.json:
        from darkgan.evaluation.runner import _jsonable
        from darkgan.utils.io import write_json

        write_json(args.json, _jsonable(out))


def train_conditioning(args, model, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """``n`` training-set conditioning vectors of ``--data``, drawn with replacement: pitch ``[n]``
    (MIDI) and alpha ``[n, K]`` = sigmoid(z / T) of the teacher's logits (paper Eq. 1)."""
    from darkgan.evaluation.data import labelled_training_notes

    cache, rows, z = labelled_training_notes(args.data, str(model.config.teacher["id"]),
                                             model.config.class_indices, model.pitch_range)
    pick = rng.integers(0, len(rows), n)
    alpha = 1.0 / (1.0 + np.exp(-z[pick].astype(np.float64) / model.temperature))
    return cache.pitch[rows[pick]].astype(np.int64), alpha.astype(np.float32)


def real_reference(args, model, preds) -> dict:
    """rho of the teacher's labels (at T) against the taggers on ``--real-notes`` real validation notes."""
    from darkgan.data.cache import NoteCache
    from darkgan.evaluation.data import real_waves
    from darkgan.evaluation.metrics.control import bootstrap_correlation
    from darkgan.teacher.labels import load_labels

    cache = NoteCache(args.data)
    labels = load_labels(args.data, str(model.config.teacher["id"]))
    row = {s: i for i, s in enumerate(np.asarray(labels.note_str).tolist())}
    lo, hi = model.pitch_range
    rows = [r for r in cache.rows("valid") if lo <= cache.pitch[r] <= hi and cache.note_str[r] in row]
    rows = np.sort(np.random.default_rng(args.seed).permutation(rows)[:args.real_notes])
    z = np.asarray(labels.logits)[[row[s] for s in cache.note_str[rows].tolist()]][:, model.config.class_indices]
    target = 1.0 / (1.0 + np.exp(-z.astype(np.float64) / model.temperature))
    syn = model.synthesiser  # a checkpoint that stopped at a coarser scale: the real notes at its resolution
    down = model.generator.cfg.down_factors[syn.scale] if syn.scale < model.generator.n_scales - 1 else None
    waves = real_waves(cache, rows, down=down)
    return {k: bootstrap_correlation(fn(waves), target, names=model.attributes, n_boot=args.n_boot, seed=args.seed)
            for k, fn in preds.items()}


def oracle_name(args) -> str:
    """How ``--oracle`` is named in the summary and the JSON."""
    if args.oracle == "linear":
        return (f"nearest training note + partial effects, ridge {args.oracle_ridge:g}, "
                f"gain {args.oracle_gain:g}")
    return f"nearest training note, {args.oracle}"


def setup(args):
    """The checkpoint, its generate function and the taggers' predictors (F at T = 1)."""
    from darkgan.evaluation.taggers import generator_fn, vocabulary_predictor, yamnet_columns
    from darkgan.generation.api import DarkGAN
    from darkgan.teacher import load_teacher

    model = DarkGAN.load(args.checkpoint, data=args.data)  # the bank of a run checkpoint comes from --data
    preds = {"teacher": vocabulary_predictor(model.teacher, model.config.class_indices)}
    if not args.no_yamnet:
        yam = load_teacher("yamnet")
        preds["yamnet"] = vocabulary_predictor(
            yam, yamnet_columns(model.attributes, model.teacher, model.config.class_indices, yam))
    if args.oracle:
        from darkgan.evaluation.oracle import NearestNoteGenerator

        if not args.data:
            raise SystemExit("control.py: --oracle needs --data (the training notes it answers with)")
        if args.oracle == "linear":
            from darkgan.evaluation.oracle import LinearEffectGenerator

            return model, LinearEffectGenerator(args.data, str(model.config.teacher["id"]), model.config.class_indices,
                                                model.temperature, model.pitch_range, args.oracle_ridge,
                                                args.oracle_gain), preds
        return model, NearestNoteGenerator(args.data, str(model.config.teacher["id"]), model.config.class_indices,
                                           model.temperature, metric=args.oracle,
                                           pitch_range=model.pitch_range), preds
    if args.add_effects is not None:
        from darkgan.evaluation.oracle import EffectAddedGenerator

        if not args.data:
            raise SystemExit("control.py: --add-effects needs --data (the training notes of the regression)")
        return model, EffectAddedGenerator(model, args.data, args.oracle_ridge, args.add_effects), preds
    return model, generator_fn(model, args.batch_size), preds


def run(args) -> dict:
    from darkgan.evaluation.metrics import control as C
    from darkgan.evaluation.taggers import TABLE2_INSTRUMENTS, TABLE2_TARGET, vocabulary_predictor

    t0 = time.perf_counter()
    model, gen, preds = setup(args)
    names, T, bank, rng = model.attributes, model.temperature, model.bank, np.random.default_rng(args.seed)
    out = {"checkpoint": str(model.checkpoint_path) + (f" (oracle: {oracle_name(args)})" if args.oracle else "")
           + (f" (+ {args.add_effects:g} x the data's partial effects)" if args.add_effects is not None else ""),
           "step": model.config.step, "temperature": T, "seed": args.seed,
           "attributes": len(names), "stages": list(args.stages),
           "sizes": {"rho": args.n, "rise": args.rise_notes, "retrieval": args.retrieval_notes}, "seconds": {}}
    rho, rrows = np.full(len(names), np.nan), None
    for stage in STAGES:
        if stage not in args.stages or (stage in ("real", "rho_train") and not args.data):
            continue
        t = time.perf_counter()
        if stage == "rho":
            rows = rng.integers(0, len(bank), args.n)
            out["rho"] = C.run_correlation_ci(counted(gen, args.n, "rho"), preds, bank.pitch[rows],
                                              bank.alpha(rows, T), seed=args.seed, names=names, n_boot=args.n_boot)
            rho = np.array([np.nan if v is None else v for v in out["rho"]["teacher"]["rho"]], float)
            out["table2"] = {n: rho[names.index(n)] for n in TABLE2_INSTRUMENTS if n in names}
            out["table2_count"] = C.table2_count(out["rho"]["teacher"], TABLE2_INSTRUMENTS, TABLE2_TARGET)
        elif stage == "rho_train":
            tp, ta = train_conditioning(args, model, args.n, np.random.default_rng(args.seed + 3))
            out["rho_train"] = C.run_correlation_ci(counted(gen, args.n, "rho (training conditioning)"), preds, tp,
                                                    ta, seed=args.seed, names=names, n_boot=args.n_boot)
            rt = [np.nan if v is None else v for v in out["rho_train"]["teacher"]["rho"]]
            out["table2_train"] = {n: rt[names.index(n)] for n in TABLE2_INSTRUMENTS if n in names}
        elif stage in ("rise", "rise_steered"):
            lo, hi, out["rise_percentiles_from"] = percentiles(model, args.data)
            if rrows is None:  # one draw for both rise stages (the same notes)
                rrows = rng.choice(len(bank), args.rise_notes, replace=len(bank) < args.rise_notes)
            steer = None
            if stage == "rise_steered":
                prior = model.conditioner.prior
                steer = lambda a, i, v: prior.steer(a, [i], [v])  # noqa: E731
            out[stage] = rise(args, gen, preds, bank.pitch[rrows], bank.alpha(rrows, T),
                              rise_attributes(args.rise_attributes, names, rho), lo, hi, names, steer, stage)
        elif stage == "real":
            out["real"] = real_reference(args, model, preds)
        else:
            vrows = rng.choice(len(bank), args.retrieval_notes, replace=False)
            relabel = vocabulary_predictor(model.teacher, model.config.class_indices, temperature=T)
            out["retrieval"] = C.run_retrieval(gen, relabel, bank.pitch[vrows], bank.alpha(vrows, T),
                                               seed=args.seed + 2)
            groups = [out["retrieval"]]
            for g in range(1, args.retrieval_groups):
                grng = np.random.default_rng([args.seed, 7, g])
                vrows = grng.choice(len(bank), args.retrieval_notes, replace=False)
                groups.append(C.run_retrieval(gen, relabel, bank.pitch[vrows], bank.alpha(vrows, T),
                                              seed=args.seed + 2 + 1000 * g))
            if len(groups) > 1:
                out["retrieval_pooled"] = C.pooled_retrieval(groups)
        out["seconds"][stage] = round(time.perf_counter() - t, 1)
        save(args, out)
    out["seconds"]["total"] = round(time.perf_counter() - t0, 1)
    out["argv"] = vars(args)
    return out


def summary(out: dict) -> list[str]:
    f = lambda v: "nan" if v is None or not np.isfinite(v) else f"{v:+.3f}"  # noqa: E731
    lines = [f"# {out['checkpoint']} (step {out['step']}, T={out['temperature']:g}), seed {out['seed']}, "
             f"sizes {out['sizes']}, {out['seconds']['total']:.0f} s ({out['seconds']})"]
    what = {"rho": " (validation conditioning)", "rho_train": " (training conditioning)", "real": " (real notes)"}
    for src in ("rho", "rho_train", "real"):
        for tag, r in out.get(src, {}).items():
            lines.append(f"{tag} mean rho{what[src]} {f(r['mean_rho'])} "
                         f"[95 % {f(r['mean_rho_low'])}, {f(r['mean_rho_high'])}] over "
                         f"{sum(v is not None for v in r['rho'])} attributes, n = {r['n']}")
    if "table2" in out:
        lines.append("Table-2 instruments, teacher rho (validation conditioning): "
                     + ", ".join(f"{k} {f(v)}" for k, v in out["table2"].items()))
    if "table2_count" in out:
        c = out["table2_count"]
        short = [f"{k} [{f(c['low'][k])}, {f(c['high'][k])}]" for k in c["rho"] if c["low"][k] < c["target"]]
        lines.append(f"Table-2 >= {c['target']:g}: {c['reached']} of {c['counted']} by rho, {c['reached_surely']} by "
                     "the lower end of the 95 % interval" + ("; " + ", ".join(short) if short else ""))
    if "table2_train" in out:
        lines.append("Table-2 instruments, teacher rho (training conditioning): "
                     + ", ".join(f"{k} {f(v)}" for k, v in out["table2_train"].items()))
    for stage, how in (("rise", "all else fixed"), ("rise_steered", "the others steered as in the data")):
        for tag, r in out.get(stage, {}).items():
            lines.append(f"{tag}: {r['n_significant']} of {r['tested']} attributes tested rise significantly "
                         f"(p < {r['p_max']}, {r['m']} notes, 5th -> 99th percentile, {how}): "
                         + ", ".join(n for n, s in zip(r["names"], r["significant"]) if s))
    if "retrieval" in out:
        r = out["retrieval"]
        lines.append(f"retrieval: median rank {r['median_rank']:.1f} of {r['n']} (chance {r['chance_median_rank']:.1f}), "
                     f"top-5 {r['top5']:.3f} (chance {r['chance_top5']:.3f}), top-1 {r['top1']:.3f}")
    if "retrieval_pooled" in out:
        r = out["retrieval_pooled"]
        lines.append(f"retrieval, {r['groups']} groups of {r['n']}: top-5 {r['top5']:.3f} "
                     f"[95 % {r['top5_low']:.3f}, {r['top5_high']:.3f}], top-1 {r['top1']:.3f}, "
                     f"median rank {r['median_rank']:.1f}")
    return lines


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    out = run(args)
    print("\n".join(summary(out)))
    save(args, out)
    if not args.json:
        print(json.dumps({k: out[k] for k in ("table2", "seconds") if k in out}))


if __name__ == "__main__":
    main()
