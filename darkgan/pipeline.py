"""``darkgan pipeline``: the project's main job, end to end, on its defaults (``make demo``).

Steps, each a call of the stage's own Python function (the one behind the command named), each
skipped when its output is complete (so an interrupted run resumes and a second run is quick):

1. render      :func:`darkgan.data.render.render_dataset`      (``darkgan data render --out DIR``)
2. prepare     :func:`darkgan.data.prepare.prepare`             (``darkgan data prepare DIR``)
3. label       :func:`darkgan.teacher.labels.label_dataset`     (``darkgan label DIR``)
4. attributes  :func:`darkgan.teacher.vocabulary.build_vocabulary` (``darkgan attributes DIR``)
5. generate    :meth:`darkgan.generation.api.DarkGAN.generate`  (``darkgan generate --pitch 60 -n 4``)
6. inception   :func:`darkgan.evaluation.inception.load_or_train` (a CPU-sized classifier), then
   evaluate    :func:`darkgan.evaluation.runner.evaluate`, protocol ``demo`` (a few CPU minutes:
               every Table-1 number with a 95 % interval, rho with bootstrap intervals, the
               out-of-distribution and increment curves on 4 attributes, the listening page)
7. info        :func:`darkgan.data.cli.dataset_info`            (``darkgan data info DIR``)

A failing step raises its own error (e.g. the teacher's "weights not found" line), so
``darkgan pipeline`` prints the stage's message, not a generic "step failed".
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable


def _generate_examples(out: Path) -> None:
    """Four notes at MIDI 60 from the shipped checkpoint (seed 0), WAV + spectrogram PNG each."""
    from darkgan.generation.api import DarkGAN
    from darkgan.generation.cli import write_spectrogram_png, write_wav

    model = DarkGAN.load(None)
    waves = model.generate(pitch=60, n=4, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    for i, wave in enumerate(waves):
        write_wav(out / f"note_{i:05d}_p060.wav", wave)
        write_spectrogram_png(out / f"note_{i:05d}_p060.png", wave, f"note {i} (seed 0)")
    print(f"wrote {len(waves)} notes to {out}")


def _info(out: Path) -> None:
    from darkgan.data.cli import dataset_info

    info = dataset_info(out)
    print(f"{info['root']}: {info['notes']} notes, {info['instruments']} instruments; splits: "
          + ", ".join(f"{k} {v}" for k, v in info["splits"].items()))


def pipeline_steps(out: Path, pitches: str = "44-70", eval_n: int | None = None, skip_eval: bool = False,
                   device: str = "cpu") -> list[tuple[str, Callable[[], object], bool]]:
    """The steps as ``(name, call, done)``; ``done``: the output is complete, the step is skipped."""
    from darkgan.data.cli import parse_int_list

    def render():
        from darkgan.data.render import render_dataset

        return render_dataset(out, pitches=parse_int_list(pitches, "pitches", 0, 127))

    def inception():
        from darkgan.evaluation.inception import load_or_train

        # 2,000 training notes, 2 epochs: the demo stays within minutes; `darkgan inception
        # train --data DIR --force` trains the full classifier
        return load_or_train(out, device=device, epochs=2, max_train=2000)

    def evaluate():
        from darkgan.evaluation.runner import evaluate as run

        return run(None, out, out / "report", n=eval_n, protocol="demo", device=device)

    from darkgan.data.prepare import prepare
    from darkgan.teacher.labels import label_dataset
    from darkgan.teacher.vocabulary import build_vocabulary

    steps = [("render", render, (out / "examples.json").is_file() and (out / "render_report.json").is_file()),
             ("prepare", lambda: prepare(out), (out / "cache" / "magif.npy").is_file()),
             ("label", lambda: label_dataset(out, device=device), False),  # skips itself when done
             ("attributes", lambda: build_vocabulary(out), (out / "vocabulary.json").is_file()),
             ("generate", lambda: _generate_examples(out / "examples"), False)]
    if not skip_eval:
        steps += [("inception", inception, (out / "inception" / "model.safetensors").is_file()),
                  ("evaluate", evaluate, False)]
    return steps + [("info", lambda: _info(out), False)]


def run_pipeline(out: Path, pitches: str = "44-70", eval_n: int | None = None, skip_eval: bool = False,
                 device: str = "cpu") -> None:
    """Run every stage into ``out`` (see the module docstring).

    Raises:
        DarkGANError: the failing stage's own error (its one-line message), after naming the step.
    """
    out = Path(out)
    t0 = time.time()
    timings: dict[str, float] = {}
    for name, call, done in pipeline_steps(out, pitches, eval_n, skip_eval, device):
        if done:
            print(f"\n[{name}] already done, skipping")
            continue
        print(f"\n[{name}]", flush=True)
        t = time.time()
        try:
            call()
        except BaseException:
            print(f"[{name}] failed", file=sys.stderr, flush=True)
            raise
        timings[name] = round(time.time() - t, 1)
    print(f"\npipeline done in {time.time() - t0:.0f} s; step times (s): {timings}")
    print(f"dataset: {out}\nexamples: {out / 'examples'}\nreport: {out / 'report' / 'report.html'}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="the main job: render -> prepare -> label -> attributes -> "
                                        "generate -> evaluate -> summary")
    p.add_argument("--out", type=Path, default=Path("data/default"), help="dataset folder")
    p.add_argument("--pitches", default="44-70", help="MIDI pitch range LO-HI (paper: 44-70)")
    p.add_argument("--eval-n", type=int, default=None, help="generations per evaluated model (default: the demo "
                                                            "protocol's 256)")
    p.add_argument("--skip-eval", action="store_true", help="stop after generating examples")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.set_defaults(func=lambda a: run_pipeline(a.out, a.pitches, a.eval_n, a.skip_eval, a.device))
