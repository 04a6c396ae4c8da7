"""The SING paper's Table 1 on our pitch-completion split, plus issue 18's generalisation numbers.

    python benchmarks/sing_table1.py --runs spectral=RUN [wav=RUN] [notime=RUN] [--n 200]
                                     [--generalization spectral] [--n-gen 96] [--darkgan default]
                                     [--json out.json]

Runs are trained by ``darkgan sing train`` (docs/sing.md lists the commands): ``spectral`` the
default settings, ``wav`` with ``--set train.loss=wav``, ``notime`` with ``--set
model.time_embedding=false --init-ae <spectral run>`` (or, with ``--sing-only wav``, a ``wav`` run
branched from the spectral run after stage 2: a copy of its checkpoint resumed with ``--set
train.loss=wav``). Table 1: spectral loss (Eq. 3.3) and
waveform MSE (Eq. 3.1) of each run's autoencoder and SING on ``--n`` train and ``--n`` test notes
(evenly spread; 0 = all). Generalisation (the run named by ``--generalization``, ``--n-gen`` test
notes): pitch accuracy (pYIN, 50 cents) of SING / the real notes / DarkGAN, FAD and KID (x1e4) to
the real test notes in the teacher's embedding (first second), and the embedding ABX share.
Paper, test column: AE wav 0.028, SING wav 0.084, AE spectral 0.032, SING spectral 0.051,
SING without time embedding 0.063.
"""
from __future__ import annotations

import argparse
import json
import os

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", required=True, metavar="NAME=RUN")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--sing-only", nargs="*", default=[], metavar="NAME",
                    help="rows branched from another run after stage 2 (no autoencoder row of their own)")
    ap.add_argument("--ae-only", nargs="*", default=[], metavar="NAME",
                    help="rows that are a run's end-of-stage-1 checkpoint: their autoencoder row only")
    ap.add_argument("--generalization", default=None, metavar="NAME", help="row name whose run gets the report")
    ap.add_argument("--n-gen", type=int, default=96)
    ap.add_argument("--gen-split", default="test", help="split of the generalisation notes (train: trained pairs)")
    ap.add_argument("--darkgan", default="default")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--png", default=None, help="real vs SING spectrograms of 3 test notes (the --generalization run)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from darkgan.sing.evaluate import format_table1, generalization, plot_examples, table1

    runs = dict(item.split("=", 1) for item in a.runs)
    rows = table1(runs, n=a.n, sing_only=tuple(a.sing_only), ae_only=tuple(a.ae_only))
    print(format_table1(rows), flush=True)
    out = {"rows": rows, "n": a.n, "load": os.getloadavg()[0]}
    if a.generalization:
        out["generalization"] = generalization(runs[a.generalization], n=a.n_gen, darkgan_checkpoint=a.darkgan or None,
                                           split=a.gen_split)
        g = out["generalization"]
        print(json.dumps({"n": g["n"], "pitch_accuracy": {k: v["pitch_accuracy"] for k, v in g["pitch_accuracy"].items()},
                          "fad": g["fad"], "kid_x1e4": g["kid"], "abx_sing_share": g.get("abx_sing_share")}, indent=1))
    if a.png and a.generalization:
        plot_examples(a.png, runs[a.generalization])
    if a.json:
        from darkgan.utils.io import write_json

        write_json(a.json, out)


if __name__ == "__main__":
    main()
