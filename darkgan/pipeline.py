"""``darkgan pipeline``: the project's main job, end to end, on its defaults (``make demo``).

Steps, each the same command a user would type, each skipped when its output is complete
(so an interrupted run resumes and a second run is quick):

1. ``darkgan data render --out DIR``      NSynth-layout dataset from the default SoundFonts
2. ``darkgan data prepare DIR``           memory-mapped MAG-IF training cache
3. ``darkgan label DIR``                  teacher logits for every note (EfficientAT mn04)
4. ``darkgan attributes DIR``             the attribute vocabulary (paper, Sec. 4.2)
5. ``darkgan generate ...``               example notes from the shipped checkpoint
6. ``darkgan inception train`` + ``darkgan evaluate ...``  a quick evaluation report (CPU-sized:
   200 generations, no out-of-distribution / increment curves; run ``darkgan evaluate`` for all)
7. ``darkgan data info DIR``              a summary
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def _run(argv: list[str]) -> None:
    from darkgan.cli import main
    from darkgan.errors import DarkGANError

    print(f"\n$ darkgan {' '.join(argv)}", flush=True)
    code = main(argv)
    if code != 0:
        raise DarkGANError(f"step `darkgan {' '.join(argv)}` failed with exit status {code}")


def run_pipeline(out: Path, pitches: str = "44-70", eval_n: int = 200, skip_eval: bool = False,
                 device: str = "cpu") -> None:
    """Run every stage into ``out`` (see the module docstring); raises DarkGANError on failure."""
    t0 = time.time()
    timings: dict[str, float] = {}

    def step(name: str, argv: list[str], done: bool) -> None:
        if done:
            print(f"\n[{name}] already done, skipping")
            return
        t = time.time()
        _run(argv)
        timings[name] = round(time.time() - t, 1)

    step("render", ["data", "render", "--out", str(out), "--pitches", pitches],
         (out / "examples.json").is_file() and (out / "render_report.json").is_file())
    step("prepare", ["data", "prepare", str(out)], (out / "cache" / "magif.npy").is_file())
    step("label", ["label", str(out), "--device", device], False)  # label skips itself when done
    step("attributes", ["attributes", str(out)], (out / "vocabulary.json").is_file())
    step("generate", ["generate", "--pitch", "60", "-n", "4", "--seed", "0", "--plot",
                      "--out", str(out / "examples")], False)
    if not skip_eval:
        # a CPU-sized inception classifier (2,000 training notes, 2 epochs) so the demo stays
        # within 15 minutes; `darkgan inception train --data DIR --force` trains the full one
        step("inception", ["inception", "train", "--data", str(out), "--max-train", "2000", "--epochs", "2"],
             (out / "inception" / "model.safetensors").is_file())
        step("evaluate", ["evaluate", "--data", str(out), "--n", str(eval_n), "--out", str(out / "report"),
                          "--skip", "ood,increment", "--device", device], False)
    _run(["data", "info", str(out)])
    print(f"\npipeline done in {time.time() - t0:.0f} s; step times (s): {timings}")
    print(f"dataset: {out}\nexamples: {out / 'examples'}\nreport: {out / 'report' / 'report.html'}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="the main job: render -> prepare -> label -> attributes -> "
                                        "generate -> evaluate -> summary")
    p.add_argument("--out", type=Path, default=Path("data/default"), help="dataset folder")
    p.add_argument("--pitches", default="44-70", help="MIDI pitch range LO-HI (paper: 44-70)")
    p.add_argument("--eval-n", type=int, default=200, help="generations per evaluated model")
    p.add_argument("--skip-eval", action="store_true", help="stop after generating examples")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=lambda a: run_pipeline(a.out, a.pitches, a.eval_n, a.skip_eval, a.device))
