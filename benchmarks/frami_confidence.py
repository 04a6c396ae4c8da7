"""How sure a FRAMI/ADI teacher is of its synthesized samples, against its real test notes (issue 19).

    python benchmarks/frami_confidence.py RUN [RUN ...] [--data DIR]

Each ``RUN`` is a data-free ``distill-tagger`` folder (``memory.safetensors``, its ``config.json``
naming the teacher). For its teacher: the mean top-1 softmax probability and the mean entropy
(nats) of the teacher's outputs on the synthesized memory and on the test notes of the teacher's
own split: whether the samples' soft labels are as soft as real notes' (near one-hot labels carry
little dark knowledge). On the note task's 30-epoch teachers they were far sharper (0.86-0.93
against 0.59-0.67); ``inversion.w_bn=0.5`` matched them to the real notes without helping the
students (docs/frami.md, "A second task").
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch


def confidence(probs: torch.Tensor) -> tuple[float, float]:
    """``(mean top-1 probability, mean entropy in nats)`` of ``probs [N, C]``."""
    entropy = -(probs * probs.clamp_min(1e-9).log()).sum(1)
    return float(probs.max(1).values.mean()), float(entropy.mean())


def main() -> None:
    from safetensors.torch import load_file

    from darkgan.frami.checkpoint import read_run_config
    from darkgan.frami.features import load_mel_split
    from darkgan.frami.run import load_teacher

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--data", default="data/default")
    a = ap.parse_args()
    print("| run | teacher | synthesized: top-1 p / entropy | real test notes: top-1 p / entropy |\n|---|---|---|---|")
    for run in map(Path, a.runs):
        if not (run / "memory.safetensors").is_file():
            raise SystemExit(f"{run}: no memory.safetensors (not a data-free distill-tagger run)")
        teacher_dir = read_run_config(run)[1]["teacher"]
        teacher, cfg, extra = load_teacher(teacher_dir)
        teacher.eval()
        d = cfg.data
        test, _ = load_mel_split(a.data, "test", d.n_mels, d.per_class, d.seed, tuple(extra["mel_stats"]), d.split)
        with torch.no_grad():
            synth = confidence(torch.softmax(teacher(load_file(run / "memory.safetensors")["x"]), 1))
            real = confidence(torch.softmax(teacher(test.x), 1))
        print(f"| {run} | {teacher_dir} | {synth[0]:.3f} / {synth[1]:.3f} | {real[0]:.3f} / {real[1]:.3f} |")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
