"""Seconds the checkpoint quality metrics cost (issue 16): `small` G (random weights), the
default 16 fixed validation notes of a prepared dataset, pitch accuracy + teacher rho.

    DARKGAN_MODELS_DIR=../shared/models taskset -c 1 python benchmarks/checkpoint_metrics_cost.py data/default
"""
import sys
import tempfile
import time

import torch

from darkgan.models.config import get_preset
from darkgan.models.generator import Generator
from darkgan.training.checkpoint_metrics import CheckpointMetrics
from darkgan.training.data import load_training_data


def main(data_dir: str) -> None:
    torch.set_num_threads(1)
    data = load_training_data(data_dir)
    cfg = get_preset("small")
    with tempfile.TemporaryDirectory() as run:
        m = CheckpointMetrics(run, data, cfg)
        g = Generator(cfg.model, data.n_pitches, data.n_attributes)
        for i in range(2):  # the first call also loads the teacher
            t = time.perf_counter()
            r = m.measure(g, cfg.model.n_scales - 1, 1.0)
            print(f"call {i}: {time.perf_counter() - t:.2f} s on {len(m.midi)} notes, {r}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
