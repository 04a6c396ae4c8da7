"""Labelling and inversion speed of distilled taggers against their teacher, side by side (issue 19).

    python benchmarks/frami_speed.py --teacher R/teacher-s0 --student R/frami-s0 [--student R/data-s0 ...] \
        [--data data/default] [--threads 1] [--json OUT.json]

Labelling: notes per second of the teacher and of each student (``distill-tagger`` run folders,
their architectures from their ``config.json``) on the teacher's test notes as standardised
log-mel ``[N, 1, 64, 32]`` (the wave -> log-mel front end, which all share, is left out), one note
at a time (live use) and in batches of 256 (offline labelling); each the median of ``--repeats``
runs, the models timed in turn within each repeat so that a change of load hits them all.
Inversion: synthesized samples per second for ADI and FRAMI, one batch of the first student run's
``inversion`` settings (``batch_size`` x ``steps``; FRAMI's negatives: the teacher's embeddings of
a memory of 480 random log-mels, as many as Table 2's run holds at its end; the cost per step does
not depend on what they hold), timed after one warm-up batch. Prints a Markdown table with the 1-minute load
average before and after, as the project's benchmarks do: a speed measured under load is not one.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch


def notes_per_s(model: torch.nn.Module, x: torch.Tensor, batch: int) -> float:
    """Notes per second labelling ``x [N, 1, M, T]`` in batches of ``batch`` (no grad, eval mode)."""
    with torch.inference_mode():
        t0 = time.perf_counter()
        for s in range(0, len(x), batch):
            model(x[s:s + batch])
        return len(x) / (time.perf_counter() - t0)


def inversion_per_s(teacher, cfg, method: str, shape: tuple[int, int], n_classes: int) -> float:
    """Samples per second of one inversion batch (``cfg.inversion``), after a warm-up batch."""
    from darkgan.frami.inversion import SpectrogramGenerator, invert_batch, memory_embeddings, synthesizer_for

    ic = cfg.inversion
    gen = torch.Generator().manual_seed(0)
    net = (SpectrogramGenerator(shape, ic.z_dim, ic.g_channels).init_weights(gen)
           if synthesizer_for(method, ic) == "generator" else None)
    memory = torch.randn(480, 1, *shape, generator=gen)
    if method == "frami":
        memory = memory_embeddings(teacher, memory)
    y = torch.arange(ic.batch_size) % n_classes
    rates = []
    for _ in range(2):  # the first is a warm-up
        t0 = time.perf_counter()
        invert_batch(teacher, y, shape, ic, method, memory, gen, generator=net)
        rates.append(ic.batch_size / (time.perf_counter() - t0))
    return rates[-1]


def main() -> None:
    from darkgan.frami import checkpoint as ck
    from darkgan.frami.features import load_mel_split
    from darkgan.frami.models import SoundClassifier
    from darkgan.frami.run import load_teacher

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", required=True, help="train-tagger run folder")
    ap.add_argument("--student", action="append", required=True, help="distill-tagger run folder (repeatable)")
    ap.add_argument("--data", default="data/default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    load_before = os.getloadavg()[0]
    teacher, tcfg, _ = load_teacher(a.teacher)
    d = tcfg.data
    test, _ = load_mel_split(a.data, "test", d.n_mels, d.per_class, d.seed, (0.0, 1.0), d.split)
    models = {"teacher": teacher}
    configs = {}
    for folder in map(Path, a.student):
        cfg, _ = ck.read_run_config(folder)
        name = f"{folder.parent.name}/{folder.name}"  # the runs of one table share their folder names
        models[name] = ck.load_module(SoundClassifier(cfg.student), folder / "student.safetensors").eval()
        configs[name] = cfg
    params = {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}
    speed = {k: {1: [], 256: []} for k in models}
    for _ in range(a.repeats):
        for k, m in models.items():
            for b in (1, 256):
                speed[k][b].append(notes_per_s(m, test.x, b))
    first = next(iter(configs.values()))
    shape = tuple(test.x.shape[-2:])
    inversion = {m: inversion_per_s(teacher, first, m, shape, teacher.n_classes) for m in ("adi", "frami")}
    load_after = os.getloadavg()[0]
    rows = {k: {"params": params[k], "notes_per_s_batch1": statistics.median(v[1]),
                "notes_per_s_batch256": statistics.median(v[256])} for k, v in speed.items()}
    print(f"{len(test.x)} test notes, {a.threads} thread(s), median of {a.repeats}; "
          f"load average (1 min) {load_before:.2f} before, {load_after:.2f} after\n")
    print("| model | parameters | notes/s, one at a time | notes/s, batches of 256 | x teacher (256) |\n|---|---|---|---|---|")
    for k, r in rows.items():
        print(f"| {k} | {r['params']:,} | {r['notes_per_s_batch1']:.0f} | {r['notes_per_s_batch256']:.0f} | "
              f"{r['notes_per_s_batch256'] / rows['teacher']['notes_per_s_batch256']:.2f} |")
    ic = first.inversion
    print(f"\ninversion ({ic.batch_size} samples x {ic.steps} steps per batch): "
          + ", ".join(f"{m.upper()} {v:.2f} samples/s" for m, v in inversion.items()))
    if a.json:
        Path(a.json).write_text(json.dumps({"threads": a.threads, "n_notes": len(test.x), "labelling": rows,
                                            "inversion_samples_per_s": inversion,
                                            "load_average": [load_before, load_after]}, indent=1))


if __name__ == "__main__":
    main()
