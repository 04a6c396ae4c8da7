"""Quality metrics at checkpoints (issue 16): metrics.jsonl, TensorBoard, the kept best checkpoint,
and exact resume unaffected. Real tiny runs on the suite's prepared dataset and the real teacher."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from darkgan.models.checkpoint import load_generator, load_training_state
from darkgan.training.checkpoint_metrics import CheckpointMetrics
from darkgan.training.data import load_training_data
from darkgan.training.loop import train

#: 12 steps, a checkpoint every 4 (steps 4, 8, 12; only the last at the final scale with alpha 1),
#: metrics on 4 notes
METRICS = ["train.iterations=[2,2,2,1,1,4]", "train.checkpoint_every=4", "train.keep_checkpoints=5",
           "train.checkpoint_metrics=pitch_accuracy,teacher_rho", "train.metric_notes=4",
           "train.best_metric=pitch_accuracy"]


def _lines(run: Path) -> list[dict]:
    return [json.loads(s) for s in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # ~32 s: three short runs with metrics at 6 checkpoints
def test_metrics_at_checkpoints_best_copy_and_exact_resume(prepared_dataset, tmp_path):
    a = train(prepared_dataset, tmp_path / "a", preset="tiny", overrides=METRICS, progress=False, threads=1)
    lines = _lines(tmp_path / "a")
    assert [r["step"] for r in lines] == [4, 8, 12] and lines[-1]["scale"] == 5 and lines[-1]["alpha"] == 1.0
    for r in lines:
        assert 0.0 <= r["pitch_accuracy"] <= 1.0 and r["checkpoint"] == f"checkpoint-{r['step']:08d}"
        assert r["teacher_rho"] is None or -1.0 <= r["teacher_rho"] <= 1.0
    assert any(r["teacher_rho"] is not None for r in lines)
    # the best copy: only final-scale checkpoints (alpha 1) compete; here the one at step 12
    best = json.loads((tmp_path / "a" / "best.json").read_text())
    assert best == {"metric": "pitch_accuracy", "value": lines[-1]["pitch_accuracy"], "step": 12,
                    "checkpoint": "checkpoint-00000012"}
    g_best, c_best = load_generator(tmp_path / "a" / "best")
    g_last, _ = load_generator(a.checkpoint)
    assert c_best.step == 12 and all(torch.equal(p, q) for p, q in zip(g_best.parameters(), g_last.parameters()))
    assert list((tmp_path / "a" / "tb").glob("events.*"))

    # stopped at 5 and resumed: the same weights bit for bit, and the same metric lines
    train(prepared_dataset, tmp_path / "b", preset="tiny", overrides=METRICS, progress=False, threads=1,
          stop_at_step=5)
    assert [r["step"] for r in _lines(tmp_path / "b")] == [4, 5] and not (tmp_path / "b" / "best").exists()
    b = train(prepared_dataset, tmp_path / "b", resume=True, progress=False, threads=1)
    A, B = load_training_state(a.checkpoint), load_training_state(b.checkpoint)
    for part in ("generator", "ema", "critic"):
        for name, t in A[part].items():
            assert torch.equal(t, B[part][name]), (part, name)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs if r["step"] != 5]  # noqa: E731
    assert strip(_lines(tmp_path / "b")) == strip(lines)


def test_fixed_notes_are_fixed_and_metrics_follow_the_generator(prepared_dataset, tmp_path):
    """The same notes for every checkpoint (seeded), and a generator that outputs silence scores
    0 pitch accuracy while the measure itself leaves the global RNG untouched."""
    from darkgan.models.config import apply_overrides, get_preset
    from darkgan.models.generator import Generator

    data = load_training_data(prepared_dataset)
    cfg = apply_overrides(get_preset("tiny"), ["train.checkpoint_metrics=pitch_accuracy", "train.metric_notes=4"])
    m1, m2 = CheckpointMetrics(tmp_path, data, cfg), CheckpointMetrics(tmp_path, data, cfg)
    n_valid = len(data.cache.rows("valid"))  # 3 in the suite's dataset: all of them
    assert np.array_equal(m1.midi, m2.midi) and torch.equal(m1.z, m2.z) and len(m1.midi) == min(4, n_valid)
    g = Generator(cfg.model, data.n_pitches, data.n_attributes)
    with torch.no_grad():
        for p in g.to_magif[-1].parameters():
            p.zero_()
    state = torch.get_rng_state()
    got = m1.measure(g, 5, 1.0)
    assert torch.equal(state, torch.get_rng_state())
    assert got == {"pitch_accuracy": 0.0}  # zero normalised MAG-IF: the data's mean spectrum, no pitch
