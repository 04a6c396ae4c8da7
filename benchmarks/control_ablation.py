"""Word-control ablation at the coarse scales (issue 15): which conditioning does a generator learn
from scratch, at equal steps? One row per recipe, each trained and measured the same way.

    python benchmarks/control_ablation.py --data DIR --out RUNS [--variants A,B,...] [--threads 1]
                                          [--iterations 600,600,1000] [--max-minutes 40] [--table]

A row is a recipe of :data:`VARIANTS`, or ``RECIPE+seedN``: the same recipe trained with
``train.seed=N`` (``Q-final-seed1`` is ``Q-final+seed1``'s older name). ``--table`` then adds the
mean and the range over each recipe's seeds, the seed spread the rows' differences are read against.

Every variant is the ``small`` preset trained from scratch over scales 0-2 (32x4 -> 64x8 ->
128x16; ``--iterations`` steps per scale, 25-jump fade-ins), T = 2, seed 0, then measured on its
last checkpoint, whose 128x16 output is nearest-up-sampled to 1024x32 and inverted:

- ``benchmarks/control.py`` (1,024 validation-conditioned notes): mean rho over the 128 attributes
  for the teacher and for YAMNet (the independent tagger) with bootstrap 95 % intervals, the
  Table-2 instruments, the significant 5th -> 99th percentile rises of those 10 attributes (48
  notes, p < 0.01), timbre-transfer retrieval (64 notes); and the ceiling: real validation
  notes average-pooled to the same 128x16 resolution and labelled the same way;
- ``darkgan evaluate --metrics fad,kad`` (600 notes vs 600 training notes, teacher embedding):
  quality at equal steps (every row is blurred alike, so rows compare; pitch accuracy is not
  measurable at 128x16, pYIN finds no stable f0 in the up-sampled notes).

Steps are cheap at these scales (a run is 10-20 minutes on one core), which is why the recipe is
chosen here (the issue's "iterate where it is cheap"). ``--table`` only prints the Markdown table
from what ``RUNS`` holds. Each stage is skipped when its output exists (resumable).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from darkgan.evaluation.taggers import TABLE2_INSTRUMENTS, TABLE2_TARGET  # noqa: E402

#: the word-control recipe of the shipped default, its first stage (docs/training.md, "A fresh critic, float32
#: and Tuning fork / Percussion at 8", stop 54) as ``--set`` overrides of ``small``; rows ``Q-*`` take one part
#: away each
FINAL = ["model.attr_input=std_logit", "train.attr_loss=std_mse", "train.output_terms_from_scale=2",
         "train.precision=fp32", "train.memory_format=channels_last", "train.gp_every=4",
         "train.loss_weights.g_f0=5", "train.loss_weights.g_consistency=60", "train.loss_weights.g_retrieval=2",
         "train.loss_weights.g_steer=5", "train.steer_loss=projection", "train.envelope_quantile=0.05",
         "train.teacher_attribute_weights=" + json.dumps({"Brass instrument": 5, "Chime": 5, "Percussion": 8,
                                                          "Tuning fork": 8, "Saxophone": 3}),
         "train.envelope_bands_hz=[1000,4000]", "train.envelope_match_steps=3", "train.loss_weights.g_envelope=40",
         "train.teacher_loss=corr", "train.teacher_gradient=magnitude", "train.loss_weights.g_teacher=20",
         "train.loss_weights.g_tail=20"]

#: the second stage of the shipped default (docs/training.md, "The end of the note shipped", stops 63-64):
#: FINAL's generator fine-tuned to end its notes as the data does, its body held to FINAL's own notes
#: (``train.anchor_generator``: stop 54's default, the FINAL stage's product). The ablation rows train
#: FINAL alone: this stage needs a trained generator to hold, and without a critic (``g_adv`` 0) it
#: cannot train one from scratch.
FINAL_END = ["model.synthesis_fade=512", "train.envelope_match_tail_steps=15", "train.lr=5e-4",
             "train.loss_weights.g_adv=0", "train.loss_weights.g_attr=0", "train.loss_weights.g_pitch=0",
             "train.loss_weights.g_envelope=80", "train.teacher_attribute_weights={}",
             "train.loss_weights.g_anchor=20", "train.loss_weights.g_anchor_body=1000",
             "train.anchor_generator=default", "train.anchor_free_frames=8"]

#: name -> (what it is, overrides on top of the common ones)
VARIANTS = {
    "A-paper": ("paper recipe: probabilities in, auxiliary attribute head (Eq. 2 BCE)", []),
    "D-std": ("standardised logits in (model.attr_input=std_logit)", ["model.attr_input=std_logit"]),
    "E-std-attrmse": ("std_logit + the attribute head in standardised logit units (train.attr_loss=std_mse)",
                      ["model.attr_input=std_logit", "train.attr_loss=std_mse"]),
    "B-std-proj": ("std_logit + projection critic (model.critic_projection)",
                   ["model.attr_input=std_logit", "model.critic_projection=true"]),
    "C-std-proj-teacher": ("std_logit + projection + teacher in the loop from 128x16 (g_teacher=1)",
                           ["model.attr_input=std_logit", "model.critic_projection=true",
                            "train.loss_weights.g_teacher=1", "train.output_terms_from_scale=2"]),
    "G-std-proj-teacher-notransforms": ("C without the random transforms before the teacher",
                                        ["model.attr_input=std_logit", "model.critic_projection=true",
                                         "train.loss_weights.g_teacher=1", "train.output_terms_from_scale=2",
                                         "train.teacher_transforms=none"]),
    "H-no-projection": ("F without the projection critic: preset small-control", ["model.attr_input=std_logit", "train.attr_loss=std_mse",
                                                            "train.loss_weights.g_teacher=1",
                                                            "train.output_terms_from_scale=2"]),
    "I-no-teacher": ("F without the teacher in the loop", ["model.attr_input=std_logit", "model.critic_projection=true",
                                                          "train.attr_loss=std_mse"]),
    "J-fast": ("H (small-control) with the fast CPU step: bf16 autocast, channels-last, lazy gradient penalty every 4",
               ["model.attr_input=std_logit", "train.attr_loss=std_mse", "train.loss_weights.g_teacher=1",
                "train.output_terms_from_scale=2", "train.precision=bf16", "train.memory_format=channels_last",
                "train.gp_every=4"]),
    "K-fast-retrieval": ("J-fast + the timbre-transfer retrieval term from 128x16 (g_retrieval=2)",
                         ["model.attr_input=std_logit", "train.attr_loss=std_mse", "train.loss_weights.g_teacher=1",
                          "train.output_terms_from_scale=2", "train.precision=bf16", "train.memory_format=channels_last",
                          "train.gp_every=4", "train.loss_weights.g_retrieval=2"]),
    "L-fast-retrieval-steer": ("K + single edits pulled onto steered ones from 128x16 (g_steer=5)",
                               ["model.attr_input=std_logit", "train.attr_loss=std_mse",
                                "train.loss_weights.g_teacher=1", "train.output_terms_from_scale=2",
                                "train.precision=bf16", "train.memory_format=channels_last", "train.gp_every=4",
                                "train.loss_weights.g_retrieval=2", "train.loss_weights.g_steer=5"]),
    "M-fast-retrieval-increment": ("K + the teacher must hear single raised attributes from 128x16 (g_increment=5)",
                                   ["model.attr_input=std_logit", "train.attr_loss=std_mse",
                                    "train.loss_weights.g_teacher=1", "train.output_terms_from_scale=2",
                                    "train.precision=bf16", "train.memory_format=channels_last", "train.gp_every=4",
                                    "train.loss_weights.g_retrieval=2", "train.loss_weights.g_increment=5"]),
    "P-fast-retrieval-white": ("K with the attributes whitened (model.attr_input=white_logit, eps 1)",
                               ["model.attr_input=white_logit", "train.attr_loss=std_mse",
                                "train.loss_weights.g_teacher=1", "train.output_terms_from_scale=2",
                                "train.precision=bf16", "train.memory_format=channels_last", "train.gp_every=4",
                                "train.loss_weights.g_retrieval=2"]),
    "N-fast-retrieval-steer-projection": ("L with only the steered direction asked of a single edit (train.steer_loss=projection)",
                                          ["model.attr_input=std_logit", "train.attr_loss=std_mse",
                                           "train.loss_weights.g_teacher=1", "train.output_terms_from_scale=2",
                                           "train.precision=bf16", "train.memory_format=channels_last",
                                           "train.gp_every=4", "train.loss_weights.g_retrieval=2",
                                           "train.loss_weights.g_steer=5", "train.steer_loss=projection"]),
    "O-fast-retrieval-steer-table2": ("N with the single edits of the 10 Table-2 instruments only (train.steer_attributes)",
                                      ["model.attr_input=std_logit", "train.attr_loss=std_mse",
                                       "train.loss_weights.g_teacher=1", "train.output_terms_from_scale=2",
                                       "train.precision=bf16", "train.memory_format=channels_last",
                                       "train.gp_every=4", "train.loss_weights.g_retrieval=2",
                                       "train.loss_weights.g_steer=5", "train.steer_loss=projection",
                                       "train.steer_attributes=" + json.dumps(list(TABLE2_INSTRUMENTS))]),
    **{f"Q-final{suffix}": (what, FINAL + extra) for suffix, (what, extra) in {
        "": ("the shipped default's recipe, its first stage (stop 54; its last-scale terms g_f0, g_tail, g_envelope wait for 1024x32)", []),
        "-no-corr": ("Q without the correlation loss (train.teacher_loss=std_mse at g_teacher 10, the form before stop 52)",
                     ["train.teacher_loss=std_mse", "train.loss_weights.g_teacher=10"]),
        "-no-magnitude": ("Q with the teacher's gradient on the IF too (train.teacher_gradient=magif)",
                          ["train.teacher_gradient=magif"]),
        "-no-consistency": ("Q without the timbre consistency term (g_consistency=0)", ["train.loss_weights.g_consistency=0"]),
        "-no-weights": ("Q without the per-attribute teacher weights (train.teacher_attribute_weights={})",
                        ["train.teacher_attribute_weights={}"]),
        "-no-transforms": ("Q without the random transforms before the teacher", ["train.teacher_transforms=none"]),
        "-no-retrieval": ("Q without the retrieval term (g_retrieval=0)", ["train.loss_weights.g_retrieval=0"]),
        "-no-steer": ("Q without the steered single edits (g_steer=0)", ["train.loss_weights.g_steer=0"]),
        "-seed1": ("Q trained again with another seed (train.seed=1): the rows' noise floor", ["train.seed=1"]),
    }.items()},
    "F-all": ("C + the attribute head in standardised logit units (train.attr_loss=std_mse)", ["model.attr_input=std_logit", "model.critic_projection=true",
                                        "train.attr_loss=std_mse", "train.loss_weights.g_teacher=1",
                                        "train.output_terms_from_scale=2"]),
}


#: the rows measured for docs/training.md (E-std-attrmse is defined but was not run; the J-P rows
#: are run by name, docs/training.md gives each command)
MEASURED = ("A-paper", "D-std", "B-std-proj", "C-std-proj-teacher", "G-std-proj-teacher-notransforms",
            "H-no-projection", "I-no-teacher", "F-all",
            # stop 56: the shipped default's recipe and its parts
            "Q-final", "Q-final-seed1", "Q-final-no-corr", "Q-final-no-magnitude", "Q-final-no-consistency",
            "Q-final-no-transforms", "Q-final-no-weights", "Q-final-no-retrieval", "Q-final-no-steer",
            # stop 57: a third seed of the recipe, a second of the parts whose reading was unsure
            "Q-final+seed2", "Q-final-no-corr+seed1", "Q-final-no-transforms+seed1", "Q-final-no-weights+seed1",
            "Q-final-no-steer+seed1")


#: older row names that are another seed of a recipe: name -> (recipe, seed)
SEED_ALIASES = {"Q-final-seed1": ("Q-final", 1)}


def recipe(name: str) -> tuple[str, int]:
    """``(recipe, seed)`` of a row name: a :data:`VARIANTS` key (seed 0), ``RECIPE+seedN`` (seed N) or
    an alias of :data:`SEED_ALIASES`.

    Raises:
        ValueError: the recipe is unknown or the seed is not a non-negative integer.
    """
    if name in SEED_ALIASES:
        return SEED_ALIASES[name]
    base, plus, seed = name.partition("+seed")
    if base not in VARIANTS or (plus and not seed.isdigit()):
        raise ValueError(f"unknown row {name!r}: use a recipe of {', '.join(VARIANTS)}, optionally +seedN")
    return base, int(seed or 0)


def overrides(name: str) -> list[str]:
    """The ``--set`` overrides of ``small`` that train row ``name`` (its recipe's, plus ``train.seed``)."""
    if name in VARIANTS:
        return VARIANTS[name][1]
    base, seed = recipe(name)
    return VARIANTS[base][1] + [f"train.seed={seed}"]


def describe(name: str) -> str:
    """What row ``name`` is, for the table."""
    base, seed = recipe(name)
    return VARIANTS[name][0] if name in VARIANTS else f"{VARIANTS[base][0]}; seed {seed}"


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True, help="folder of the runs, measurements and table")
    ap.add_argument("--variants", default=",".join(MEASURED),
                    help=f"comma-separated, of {', '.join(VARIANTS)} (default: the rows of docs/training.md)")
    ap.add_argument("--iterations", default="600,600,1000", help="steps at scales 0, 1, 2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-minutes", type=float, default=40.0, help="per training call (resumed by a rerun)")
    ap.add_argument("--table", action="store_true", help="only print the table of what --out holds")
    args = ap.parse_args(argv)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in args.variants:
        try:
            recipe(v)
        except ValueError as e:
            ap.error(f"--variants: {e}")
    return args


def _run(cmd: list[str], log: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    with open(log, "a") as f:
        subprocess.run(cmd, check=True, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)


def _latest(run: Path) -> Path:
    return run / (run / "LATEST").read_text().strip()


def run_variant(args, name: str) -> None:
    """Train (or resume) ``name``, then measure it; each stage skipped when done."""
    out, py = Path(args.out), sys.executable
    its = [int(x) for x in args.iterations.split(",")] + [0, 0, 0]
    common = [f"train.iterations={json.dumps(its).replace(' ', '')}", "train.fade_in_jumps=[0,25,25,25,25,25]",
              "train.checkpoint_every=200", "train.sample_every=0", "train.log_every=50"]
    run = out / name
    train = [py, "-m", "darkgan", "train", "--data", args.data, "--out", str(run), "--threads", str(args.threads),
             "--max-minutes", str(args.max_minutes), "--no-progress"]
    if (run / "LATEST").is_file():
        train += ["--resume"]
    else:
        train += ["--preset", "small", "--temperature", "2"]
        for s in common + overrides(name):
            train += ["--set", s]
    _run(train, out / f"{name}.log")
    ck = str(_latest(run))
    if not (out / f"{name}.control.json").is_file():
        _run([py, "benchmarks/control.py", "--checkpoint", ck, "--data", args.data, "--n", "1024",
              "--rise-notes", "48", "--rise-attributes", "table2", "--retrieval-notes", "64", "--n-boot", "300",
              "--real-notes", "512", "--threads", str(args.threads), "--json", str(out / f"{name}.control.json")],
             out / f"{name}.eval.log")
    if not (out / f"report-{name}" / "metrics.json").is_file():
        _run([py, "-m", "darkgan", "evaluate", "--checkpoint", ck, "--name", name, "--data", args.data,
              "--out", str(out / f"report-{name}"), "--n", "600", "--metrics", "fad,kad", "--skip", "yamnet",
              "--no-progress"], out / f"report-{name}.log")


def _ci(d: dict) -> str:
    return f"{d['mean_rho']:.3f} [{d['mean_rho_low']:.3f}, {d['mean_rho_high']:.3f}]"


def table(out: Path, names: list[str]) -> str:
    """The Markdown ablation table of the variants measured in ``out``."""
    head = ("| recipe | teacher rho | YAMNet rho | Table-2 instruments, teacher rho >= 0.35 | significant rises "
            "teacher / YAMNet (of 10) | retrieval median rank / top-5 (64) | FAD / KAD (teacher) |\n"
            "|---|---|---|---|---|---|---|")
    rows, real = [head], None
    for n in names:
        if (got := _load(out, n)) is None:
            continue
        c, q = got
        real = real or c.get("real")
        t2 = _table2(c)
        rise = " / ".join(str(c["rise"][k]["n_significant"]) for k in ("teacher", "yamnet"))
        r = c["retrieval"]
        rows.append(f"| {n}: {describe(n)} | {_ci(c['rho']['teacher'])} | {_ci(c['rho']['yamnet'])} | "
                    f"{t2} of {len(c['table2'])} | {rise} | {r['median_rank']:.1f} / {r['top5']:.2f} | "
                    f"{q['fad_teacher']['fad']:.2f} / {q['kad_teacher']['kad']:.0f} |")
    if real:
        rows.append(f"| real validation notes at 128x16 (the ceiling) | {_ci(real['teacher'])} | "
                    f"{_ci(real['yamnet'])} | | | | |")
    return "\n".join(rows)


def _load(out: Path, name: str) -> tuple[dict, dict] | None:
    """Row ``name``'s control measures (``NAME.control.json``) and its report's metrics row, or None
    until both exist in ``out``."""
    c, m = out / f"{name}.control.json", out / f"report-{name}" / "metrics.json"
    if not (c.is_file() and m.is_file()):
        return None
    return json.loads(c.read_text()), json.loads(m.read_text())["results"]["rows"][name]


def _table2(control: dict) -> int:
    """How many Table-2 instruments reach their target teacher rho (TABLE2_TARGET)."""
    return sum(1 for v in control["table2"].values() if v is not None and v >= TABLE2_TARGET)


def _measured(out: Path, name: str) -> dict | None:
    """Row ``name``'s headline numbers from ``out`` (None until both its measurements exist)."""
    if (got := _load(out, name)) is None:
        return None
    c, q = got
    return {"teacher rho": c["rho"]["teacher"]["mean_rho"], "YAMNet rho": c["rho"]["yamnet"]["mean_rho"],
            "Table-2 >= 0.35": _table2(c), "retrieval top-5": c["retrieval"]["top5"], "FAD": q["fad_teacher"]["fad"]}


def seed_table(out: Path, names: list[str]) -> str:
    """Mean (min-max) of each recipe's headline numbers over its measured seeds, for every recipe of
    ``names`` with at least two seeds measured in ``out`` (rows of other seeds found in ``out`` count
    too); empty when none has."""
    groups: dict[str, dict[int, dict]] = {}
    rows = sorted({n.name[:-len(".control.json")] for n in out.glob("*.control.json")} | set(names))
    for n in rows:
        try:
            base, seed = recipe(n)
        except ValueError:
            continue
        if (got := _measured(out, n)) is not None:
            groups.setdefault(base, {})[seed] = got
    wanted = {recipe(n)[0] for n in names}
    keys = ["teacher rho", "YAMNet rho", "Table-2 >= 0.35", "retrieval top-5", "FAD"]
    lines = ["| recipe | seeds | " + " | ".join(f"{k}: mean (min-max)" for k in keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for base in [b for b in VARIANTS if b in wanted and len(groups.get(b, {})) >= 2]:
        g = groups[base]
        cells = []
        for k in keys:
            v = np.array([g[s][k] for s in sorted(g)], float)
            f = "{:.1f}" if k == "Table-2 >= 0.35" else "{:.2f}" if k == "FAD" else "{:.3f}"
            cells.append(f"{f.format(v.mean())} ({f.format(v.min())}-{f.format(v.max())})")
        lines.append(f"| {base} | {', '.join(map(str, sorted(g)))} | " + " | ".join(cells) + " |")
    return "\n".join(lines) if len(lines) > 2 else ""


def main(argv=None) -> None:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if not args.table:
        for name in args.variants:
            run_variant(args, name)
    text = table(out, args.variants)
    if seeds := seed_table(out, args.variants):
        text += "\n\nOver seeds (the spread the rows' differences are read against):\n\n" + seeds
    (out / "ablation.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
