"""FRAMI's Table 2 (methods) and Table 3 (ablation) on our task, over seeds: run them, or summarise.

Run every cell (resumable; rerun the same command to continue a cut run)::

    python benchmarks/frami_table.py run --out R --seeds 0 1 [--preset small] [--data DIR] \\
        [--set KEY=VALUE ...]         # every run (teacher and students)
        [--synth-set KEY=VALUE ...]   # the data-free runs only (adi, frami and its ablations)
        [--teacher efficientat]       # the AudioSet teacher instead of a trained one (no teacher, no data row)
        [--max-minutes M]             # per training phase; a cut run is continued by the next call
        [--cells data kd adi frami]   # only these cells (default: every cell of both tables)

Summarise what is there (also done at the end of ``run``)::

    python benchmarks/frami_table.py R     # or: table R

Runs, one folder each in ``R``: ``teacher-s<S>`` (``train_teacher``), then ``<method>-s<S>`` for
Table 2 (``data``, ``kd``, ``adi``, ``frami``) and Table 3's ablation of FRAMI: ``frami-nofinv``
(``inversion.use_finv=false``: without T_finv), ``frami-noreuse`` (``train.w_hidden=0``: without
the reused hidden states) and ``frami-noboth``. An ablation whose inversion settings equal another
run's starts from a copy of that run's synthesized memory (synthesis is deterministic per seed and
settings, so the copy is what it would synthesize; not with ADI's competition term in interleaved
rounds, whose samples depend on the student). Writes ``R/table.json`` and ``R/table.md``.

The number of each cell: the student's test accuracy (instrument family; on the instrument-disjoint
split, or with ``--set data.split=note`` on held-out notes of the training instruments) for a trained teacher; for the AudioSet teacher, the mean rho over the vocabulary's classes
(see :func:`darkgan.frami.audioset.agreement`). Means over the seeds, and each seed's value.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from collections import defaultdict
from pathlib import Path

from darkgan.utils.io import atomic_write, read_json, write_json

TABLE2 = ("teacher", "data", "kd", "adi", "frami")
#: Table 3: name -> (label, overrides of the full FRAMI run).
ABLATIONS = {
    "frami": ("FRAMI (full)", []),
    "frami-nofinv": ("w/o T_finv", ["inversion.use_finv=false"]),
    "frami-noreuse": ("w/o reused hidden states", ["train.w_hidden=0"]),
    "frami-noboth": ("w/o both", ["inversion.use_finv=false", "train.w_hidden=0"]),
}


def _score(r: dict) -> tuple[str, float]:
    if "student_test_acc" in r:
        return "test acc %", 100 * r["student_test_acc"]
    if "teacher_test_acc" in r:
        return "test acc %", 100 * r["teacher_test_acc"]
    return "mean rho (vocabulary)", r["mean_rho_vocab"]


def collect(root: str | Path) -> dict:
    """``{run name: [results of each finished seed]}`` of the ``<name>-s<seed>`` folders under ``root``."""
    runs = defaultdict(list)
    for path in sorted(Path(root).glob("*-s*/results.json")):
        r = read_json(path)
        if r.get("done"):
            runs[path.parent.name.rsplit("-s", 1)[0]].append({**r, "seed": int(path.parent.name.rsplit("-s", 1)[1])})
    return runs


def _cell(rs: list[dict]) -> dict:
    scores = [_score(r)[1] for r in rs]
    cell = {"measure": _score(rs[0])[0], "mean": sum(scores) / len(scores), "per_seed": scores,
            "seeds": [r["seed"] for r in rs]}
    for key in ("agreement", "agreement_vocab", "synth_per_cpu_s", "inversion_cpu_s", "train_cpu_s",
                "student_notes_per_s", "teacher_notes_per_s"):
        if all(key in r for r in rs):
            cell[key] = sum(r[key] for r in rs) / len(rs)
    return cell


def paired(runs: dict, a: str, b: str) -> dict | None:
    """``a`` against ``b`` on the seeds both have (>= 2): per-seed differences of the score, their
    mean, and a one-sided paired t-test of ``a > b`` (scipy). Seeds share a teacher, so pairing
    removes the teacher-to-teacher spread that dominates the means. ``None`` with < 2 common seeds."""
    from scipy.stats import ttest_rel

    sa = {r["seed"]: _score(r)[1] for r in runs.get(a, [])}
    sb = {r["seed"]: _score(r)[1] for r in runs.get(b, [])}
    seeds = sorted(set(sa) & set(sb))
    if len(seeds) < 2:
        return None
    diff = [sa[s] - sb[s] for s in seeds]
    p = float(ttest_rel([sa[s] for s in seeds], [sb[s] for s in seeds], alternative="greater").pvalue)
    return {"a": a, "b": b, "seeds": seeds, "diff": diff, "mean_diff": sum(diff) / len(diff), "p_one_sided": p}


def tables(root: str | Path) -> dict:
    """Table 2 and Table 3 (``{"table2": {name: cell}, "table3": {name: cell + delta}, "paired":
    FRAMI - ADI per seed (:func:`paired`)}``) of ``root``."""
    runs = collect(root)
    t2 = {name: _cell(runs[name]) for name in TABLE2 if runs.get(name)}
    t3 = {name: {"label": label, **_cell(runs[name])} for name, (label, _) in ABLATIONS.items() if runs.get(name)}
    if "frami" in t3:
        for name, cell in t3.items():  # on the seeds both have: a variant run on fewer seeds is not compared to others
            full = dict(zip(t3["frami"]["seeds"], t3["frami"]["per_seed"]))
            diffs = [v - full[s] for s, v in zip(cell["seeds"], cell["per_seed"]) if s in full]
            cell["delta_vs_full"] = sum(diffs) / len(diffs) if diffs else float("nan")
    return {"table2": t2, "table3": t3, "paired": paired(runs, "frami", "adi")}


def _fmt(cell: dict) -> str:
    return f"{cell['mean']:.2f} ({', '.join(f'{v:.2f}' for v in cell['per_seed'])})"


def markdown(t: dict) -> str:
    """Both tables as Markdown."""
    lines = ["Table 2", "", "| run | seeds | measure: mean (per seed) | top-1 agreement with teacher % | inversion samples / CPU s | student notes/s vs teacher |",
             "|---|---|---|---|---|---|"]
    for name, c in t["table2"].items():
        agree = f"{100 * c['agreement']:.2f}" if "agreement" in c else "-"
        synth = f"{c['synth_per_cpu_s']:.2f}" if "synth_per_cpu_s" in c else "-"
        speed = f"{c['student_notes_per_s']:.0f} vs {c['teacher_notes_per_s']:.0f}" if "student_notes_per_s" in c else "-"
        lines.append(f"| {name} | {len(c['seeds'])} | {c['measure']}: {_fmt(c)} | {agree} | {synth} | {speed} |")
    pr = t.get("paired")
    if pr:
        per = ", ".join(f"{d:+.2f}" for d in pr["diff"])
        lines += ["", f"FRAMI - ADI, paired over seeds {', '.join(map(str, pr['seeds']))}: mean {pr['mean_diff']:+.2f} "
                      f"points ({per}); one-sided paired t-test p = {pr['p_one_sided']:.3f}"]
    lines += ["", "Table 3 (ablation of FRAMI)", "", "| variant | seeds | measure: mean (per seed) | change vs full (same seeds) |", "|---|---|---|---|"]
    for c in t["table3"].values():
        delta = f"{c['delta_vs_full']:+.2f}" if "delta_vs_full" in c else "-"
        lines.append(f"| {c['label']} | {len(c['seeds'])} | {c['measure']}: {_fmt(c)} | {delta} |")
    return "\n".join(lines)


def write_tables(root: str | Path) -> str:
    """Write ``root/table.json`` and ``root/table.md``; returns the Markdown."""
    t = tables(root)
    md = markdown(t)
    write_json(Path(root) / "table.json", t)
    with atomic_write(Path(root) / "table.md", "w") as f:
        f.write(md + "\n")
    return md


def _cfg(args, extra: list[str]):
    from darkgan.frami.config import get_preset
    from darkgan.utils.config import apply_overrides

    cfg = apply_overrides(get_preset(args.preset), [*args.set, *extra])
    if args.max_minutes:
        cfg.train.max_minutes = args.max_minutes
    return cfg.validate()


def _seed_memory(out: Path, seed: int, name: str, cfg) -> None:
    """Copy the synthesized memory of an earlier run with the same inversion settings into ``name``'s folder."""
    from darkgan.frami.checkpoint import read_run_config
    from darkgan.utils.config import config_to_dict

    dst = out / f"{name}-s{seed}"
    if (dst / "memory.safetensors").exists() or (cfg.inversion.rounds > 1 and cfg.inversion.w_adv > 0):
        return  # with the competition term the samples depend on the student, so on train.w_hidden
    for other in ABLATIONS:
        src = out / f"{other}-s{seed}"
        if other == name or not _done(src):
            continue
        if config_to_dict(read_run_config(src)[0].inversion) == config_to_dict(cfg.inversion):
            dst.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / "memory.safetensors", dst / "memory.safetensors")
            return


def _done(folder: Path) -> bool:
    return (folder / "results.json").exists() and bool(read_json(folder / "results.json").get("done"))


def run(args) -> str:
    """Every cell of both tables for every seed of ``args`` (see the module docstring); finished
    runs are not touched again."""
    from darkgan.frami.run import distill_tagger, train_teacher

    out = Path(args.out)
    for s in args.seeds:
        teacher = args.teacher
        if teacher is None:
            teacher = out / f"teacher-s{s}"
            if not _done(teacher):
                train_teacher(args.data, teacher, _cfg(args, [f"seed={s}"]), resume=(teacher / "config.json").exists())
            if not _done(teacher):
                continue
        methods = ["kd", "adi", *ABLATIONS] if args.teacher else ["data", "kd", "adi", *ABLATIONS]
        for name in [m for m in methods if not args.cells or m in args.cells]:
            synth = name not in ("data", "kd")
            cfg = _cfg(args, [f"seed={s}", *(args.synth_set if synth else []), *ABLATIONS.get(name, ("", []))[1]])
            dst = out / f"{name}-s{s}"
            if _done(dst):
                continue
            if name in ABLATIONS:
                _seed_memory(out, s, name, cfg)
            distill_tagger(teacher, args.data, dst, name.split("-")[0], cfg, resume=(dst / "config.json").exists())
    return write_tables(out)


def main(argv: list[str]) -> str:
    if argv and argv[0] not in ("run", "table", "-h", "--help"):
        argv = ["table", *argv]
    p = argparse.ArgumentParser(prog="frami_table.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("table", help="summarise the runs in ROOT")
    t.add_argument("root", nargs="?", default="/work/runs/frami/micro")
    r = sub.add_parser("run", help="run every cell of Table 2 and Table 3, then summarise")
    r.add_argument("--out", required=True)
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    r.add_argument("--preset", default="small")
    r.add_argument("--data", default="/work/data/default")
    r.add_argument("--teacher", help="an AudioSet teacher name (efficientat) instead of training one")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--synth-set", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--max-minutes", type=float, default=0.0)
    r.add_argument("--cells", nargs="+", choices=["data", "kd", "adi", *ABLATIONS], metavar="NAME",
                   help="run only these cells (after the teacher), e.g. Table 2's `data kd adi frami` for "
                        "every seed first and Table 3's ablations later; default: all")
    args = p.parse_args(argv)
    return run(args) if args.cmd == "run" else write_tables(args.root)


if __name__ == "__main__":
    print(main(sys.argv[1:]))
