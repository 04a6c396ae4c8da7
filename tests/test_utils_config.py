"""The shared typed-config helpers (darkgan.utils.config) on the real presets."""
from dataclasses import dataclass, field

import pytest

from darkgan.errors import DarkGANError
from darkgan.models.config import ModelConfig, TrainConfig, get_preset
from darkgan.utils.config import apply_overrides, config_from_dict, config_to_dict


@dataclass
class _Both:
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def test_presets_round_trip_through_json_dicts():
    for name in ("paper", "small", "tiny"):
        c = get_preset(name)
        assert config_from_dict(ModelConfig, config_to_dict(c.model)) == c.model
        assert config_from_dict(TrainConfig, config_to_dict(c.train)) == c.train


def test_overrides_are_typed_and_scalars_fill_per_item_fields():
    c = get_preset("small")
    b = apply_overrides(_Both(c.model, c.train), ["train.lr=5e-4", "model.channels=[8,8,8,8,8,8]",
                                                 "train.loss_weights.g_f0=0.5", "train.batch_size=4"],
                        per_item={"train.batch_size": 6})
    assert b.train.lr == 5e-4 and b.model.channels == (8,) * 6 and b.train.batch_size == (4,) * 6
    assert b.train.loss_weights["g_f0"] == 0.5 and isinstance(b.model, ModelConfig)
    assert c.train.lr == 0.001  # the original is untouched


@pytest.mark.parametrize("bad, words", [(["train.lr=abc"], "train.lr"), (["model.nope=1"], "model.nope"),
                                        (["nope.x=1"], "nope"), (["no-equals"], "section.key=value"),
                                        (["train.iterations=[1,\"a\"]"], "train.iterations")])
def test_bad_overrides_name_the_key(bad, words):
    c = get_preset("tiny")
    with pytest.raises(DarkGANError, match=words.replace(".", r"\.")):
        apply_overrides(_Both(c.model, c.train), bad)


def test_override_syntax_of_the_command_line():
    """Today's ``--set`` forms: parentheses for lists, any-case none/true, word lists, scalars
    repeated for every per-scale field, in order (the model's scale count at that override)."""
    from darkgan.models.config import apply_overrides as set_model

    c = set_model(get_preset("tiny"), ["train.betas=(0.5,0.9)", "train.ema=False", "model.critic_channels=None",
                                       "train.teacher_transforms=shift,noise", "train.batch_size=3"])
    assert c.train.betas == (0.5, 0.9) and c.train.ema is False and c.model.critic_channels is None
    assert c.train.teacher_transforms == ("shift", "noise") and c.train.batch_size == (3,) * 6
    four = set_model(get_preset("tiny"), ["model.channels=[8,8,8,8]", "model.down_factors=[[8,2],[4,1],[2,1],[1,1]]",
                                          "train.batch_size=2", "train.iterations=1", "train.fade_in_jumps=0"])
    assert four.train.batch_size == (2,) * 4 and four.model.n_scales == 4


def test_shipped_and_older_saved_configs_load_with_defaults_for_new_fields():
    import json
    from pathlib import Path

    from darkgan.models.config import Config

    assets = Path(__file__).parent.parent / "darkgan" / "assets"
    for name in ("darkgan-default", "darkgan-student", "darkgan-paper-small"):
        saved = json.loads((assets / name / "config.json").read_text())
        c = Config.from_dict(saved).validate()
        assert c.to_dict()["model"]["channels"] == saved["model"]["channels"]
        for k, v in saved["train"]["loss_weights"].items():
            assert c.train.loss_weights[k] == v
    # fields paper-small's file (2026-11-24) predates take their defaults: no g_teacher weight, no trainable
    assert "g_teacher" not in saved["train"]["loss_weights"] and c.train.loss_weights["g_teacher"] == 0.0
    assert "trainable" not in saved["train"] and c.train.trainable == "all"
    assert "g_envelope" not in saved["train"]["loss_weights"] and c.train.loss_weights["g_envelope"] == 0.0


def test_unknown_keys_list_the_known_ones():
    c = get_preset("tiny")
    with pytest.raises(DarkGANError, match="unknown key 'train.nope'; known train keys: .*batch_size"):
        apply_overrides(_Both(c.model, c.train), ["train.nope=1"])
    with pytest.raises(DarkGANError, match=r"^train\.lr: expected a number, got 'fast'$"):
        config_from_dict(TrainConfig, {"lr": "fast"}, "train")
