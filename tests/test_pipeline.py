"""``darkgan pipeline`` drives the stages as Python functions: a failing stage's own one-line
message reaches the user (exit status 2), not a generic "step failed"."""
from __future__ import annotations

from darkgan.cli import main


def test_failing_stage_shows_its_own_message(tmp_path, capsys):
    assert main(["pipeline", "--out", str(tmp_path / "ds"), "--pitches", "40-300"]) == 2
    err = capsys.readouterr().err
    assert "[render] failed" in err
    assert "darkgan: error: --pitches '40-300': 128 is outside 0-127" in err
    assert "exit status" not in err
    assert not (tmp_path / "ds" / "examples.json").exists()


def test_pipeline_steps_are_stage_functions_and_skip_what_is_done(rendered_dataset):
    from darkgan.pipeline import pipeline_steps

    steps = pipeline_steps(rendered_dataset)
    names = [s[0] for s in steps]
    assert names == ["render", "prepare", "label", "attributes", "generate", "inception", "evaluate", "info"]
    done = {name: d for name, _, d in steps}
    assert done["render"] and not done["prepare"]  # rendered, not yet prepared
    assert [s[0] for s in pipeline_steps(rendered_dataset, skip_eval=True)][-2:] == ["generate", "info"]
