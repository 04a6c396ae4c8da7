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
                                        (["nope.x=1"], "nope"), (["no-equals"], "section.field=value"),
                                        (["train.iterations=[1,\"a\"]"], "train.iterations")])
def test_bad_overrides_name_the_key(bad, words):
    c = get_preset("tiny")
    with pytest.raises(DarkGANError, match=words.replace(".", r"\.")):
        apply_overrides(_Both(c.model, c.train), bad)
