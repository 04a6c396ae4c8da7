"""SING in the toolkit's shared commands: a row of ``darkgan evaluate`` (conditioning on the
evaluation's notes, 1 s scored) and of ``darkgan bench`` — on the real rendered notes of the
``rendered_dataset`` / ``prepared_dataset`` fixtures (tiny preset, 1 s notes)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from darkgan.cli import main


@pytest.fixture(scope="module")
def sing_1s(rendered_dataset, tmp_path_factory):
    """A tiny SING run with 1 s notes (the length the evaluation scores), one step per stage."""
    from darkgan.sing.train import train

    out = tmp_path_factory.mktemp("sing1s") / "run"
    train(rendered_dataset, out, preset="tiny", n_instruments=0, progress=False,
          overrides=["model.n_samples=16000", "model.n_frames=74", "train.ae_steps=1", "train.lstm_steps=1",
                     "train.e2e_steps=1"])
    return out


def test_stand_in_instruments_follow_the_family(rendered_dataset):
    from darkgan.data.nsynth import NoteDataset
    from darkgan.sing.eval_model import ANY, FAMILY, SAME, family_of, nearest_velocities, stand_in_instruments

    names = sorted({r["instrument_str"] for r in NoteDataset(rendered_dataset).records})
    flutes = [n for n in names if family_of(n) == "flute"]
    assert len(flutes) == 2 and family_of("synth_lead_synthetic_003") == "synth_lead"  # one per SoundFont
    known = [n for n in names if n != flutes[0]]
    got, how = stand_in_instruments([flutes[0], names[0], flutes[0]], known, np.array([0.0, 0.5, 0.99]))
    assert got == [flutes[1], names[0], flutes[1]] and how.tolist() == [FAMILY, SAME, FAMILY]
    no_flute = [n for n in names if n not in flutes]
    got, how = stand_in_instruments([flutes[0]] * 3, no_flute, np.array([0.0, 0.5, 0.999]))
    assert how.tolist() == [ANY] * 3 and got == [sorted(no_flute)[i] for i in (0, len(no_flute) // 2, -1)]
    assert nearest_velocities([64, 127, 1], [25, 50, 75, 100, 127]) == [75, 127, 25]


def test_sing_is_a_row_of_darkgan_evaluate(prepared_dataset, sing_1s, tmp_path):
    from darkgan.data.magif import fade_out
    from darkgan.evaluation.context import EvalContext, load_eval_data
    from darkgan.evaluation.runner import load_model, resolve_protocol
    from darkgan.sing.eval_model import SAME, SingModel

    data = tmp_path / "ds"
    shutil.copytree(prepared_dataset, data)  # the evaluation trains its inception classifier into it
    out = tmp_path / "report"
    assert main(["evaluate", "--checkpoint", str(sing_1s), "--name", "sing", "--data", str(data), "--out", str(out),
                 "--protocol", "demo", "--n", "8", "--metrics", "pis,iis,kid,kad,pitch,tail", "--skip", "yamnet",
                 "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    rows = m["results"]["rows"]
    assert set(rows) == {"real train", "real valid", "sing"}, m["missing"]
    for key in ("pis", "iis", "kid", "kad_teacher", "pitch_accuracy", "tail"):
        assert key in rows["sing"] and key in rows["real valid"], (key, m["missing"])
    assert 0.0 <= rows["sing"]["pitch_accuracy"]["pitch_accuracy"] <= 1.0
    assert rows["real valid"]["pitch_accuracy"]["pitch_accuracy"] > rows["sing"]["pitch_accuracy"]["pitch_accuracy"]
    md = (out / "report.md").read_text()
    assert m["models"][0]["family"] == "sing" and "| sing |" in md and "SING, 10 instruments" in md

    model = load_model(sing_1s)
    assert isinstance(model, SingModel)
    ctx = EvalContext(load_eval_data(data, [model]), [model], resolve_protocol("demo", 8), tmp_path / "ctx",
                      progress=False)
    waves = ctx.waves(ctx.gen_set(model))
    r, c = ctx.plan.cond_rows["valid"], ctx.data.cache
    # each conditioning note's own instrument (SING trained on them all), pitch and velocity; first second, faded
    _, _, how = model.conditioning(ctx.plan.z[1], ctx.cond_notes())
    assert (how == SAME).all()
    full = model.synth.generate_batch(list(c.instrument_str[r]), [int(p) for p in c.pitch[r]],
                                      [int(v) for v in c.velocity[r]])
    assert full.shape == (8, 16000) and waves.shape == (8, 16000)
    np.testing.assert_allclose(waves, fade_out(torch.from_numpy(full)).numpy(), atol=1e-6)


def test_short_sing_notes_are_refused_by_evaluate(prepared_dataset, rendered_dataset, tmp_path, capsys):
    from darkgan.sing.train import train

    run = tmp_path / "half-second"
    train(rendered_dataset, run, preset="tiny", n_instruments=0, progress=False, max_steps=1)  # 8000 samples
    assert main(["evaluate", "--checkpoint", str(run), "--data", str(prepared_dataset), "--out",
                 str(tmp_path / "r"), "--metrics", "pitch", "--n", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "8000 samples are shorter than the 16000 (1 s)" in err[0]
    assert not (tmp_path / "r").exists()


def test_bench_times_sing_through_its_api(sing_1s, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--checkpoint", str(sing_1s), "--threads", "1", "--runs", "3", "--batch", "4",
                 "--batch-runs", "1", "--json", str(out)]) == 0
    assert "(SING)" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["rows"]
    assert "error" not in row, row["error"]
    assert row["kind"] == "sing" and row["note_seconds"] == 1.0 and row["batch"] == 4 and row["macs"] is None
    assert row["params"] > 0 and row["latency_ms_1thread_runs"] == 3
    # real-time factors: seconds of audio per second, one note (1 thread) and the batch
    assert row["x_realtime_batch1"] == pytest.approx(1000.0 / row["latency_ms_1thread"], rel=1e-2)
    assert row["x_realtime"] == pytest.approx(row["notes_per_s_batch64"] * row["note_seconds"], rel=1e-2)
