"""Student generator presets for distillation (issue 6; DrumGAN compression study, Sec. 3).

A student keeps the teacher's interface (latent size, pitch range, attributes, scales and output
shape: the same inputs map to the same ``[B, 2, 1024, 32]`` output) and shrinks its body: fewer
3x3 convolutions per scale block and/or fewer feature maps. MACs per note (format layer as a
linear layer, counted with ``torch.utils.flop_counter``; ``paper`` = 11.86 G, the reference's
12.6 G counts its zero-padded format convolution):

=============  ==============================  ======  =========  ==============
preset         channels (low -> high res)      convs   GMAC/note  vs ``paper``
=============  ==============================  ======  =========  ==============
student-m      128, 96, 64, 48, 32, 16         2       1.33       8.9x fewer
student-s      128, 96, 64, 48, 32, 16         1       0.80       14.9x fewer
student-xs     64, 48, 32, 24, 16, 8           1       0.20       59x fewer
student-half   teacher's // 2                  1       paper: 1.65 (7.2x); small: 0.078 (6.5x)
student-tiny   8, 8, 8, 4, 4, 4                1       ~0.002     (tests)
=============  ==============================  ======  =========  ==============

``student-half`` is relative to the teacher (half its maps at every scale, one convolution per
block: 6.5-7x fewer MACs than a two-conv teacher; 4x from the widths, ~2x from the convs), for teachers other than ``paper`` such as
the CPU-trained ``small`` preset. The high-resolution scales hold most
of the cost (a 3x3 conv at 1024x32 with C maps costs 9 C^2 x 32768 MACs), so the students narrow
them most. Any preset can be refined with ``model.<field>=value`` overrides
(:func:`darkgan.models.config.apply_overrides` syntax).
"""
from __future__ import annotations

import copy
import dataclasses

from darkgan.errors import DarkGANError

#: name -> (description, ModelConfig fields replaced in the teacher's configuration)
STUDENT_PRESETS: dict[str, tuple[str, dict]] = {
    "student-m": ("narrow high-resolution scales, 2 convs per block (8.9x fewer MACs than paper)",
                  {"channels": (128, 96, 64, 48, 32, 16), "convs_per_block": 2}),
    "student-s": ("as student-m, 1 conv per block (14.9x fewer MACs than paper)",
                  {"channels": (128, 96, 64, 48, 32, 16), "convs_per_block": 1}),
    "student-xs": ("half of student-s's widths, 1 conv per block (59x fewer MACs than paper)",
                   {"channels": (64, 48, 32, 24, 16, 8), "convs_per_block": 1}),
    "student-half": ("half the teacher's maps at every scale, 1 conv per block (relative to the teacher)",
                     {"channels": "half", "convs_per_block": 1}),
    "student-tiny": ("a few maps, for tests", {"channels": (8, 8, 8, 4, 4, 4), "convs_per_block": 1}),
}


def list_student_presets() -> str:
    """Printable table of the student presets (``darkgan distill --list-presets``)."""
    lines = []
    for name, (desc, fields) in STUDENT_PRESETS.items():
        f = ", ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in fields.items())
        f = f.replace("channels=half", "channels=teacher's // 2")
        lines.append(f"{name:13s} {desc}\n{'':13s} {f}")
    return "\n".join(lines)


def student_config(teacher_config, preset: str, overrides: list[str] | tuple[str, ...] = ()):
    """The student's full :class:`~darkgan.models.config.Config`.

    Args:
        teacher_config: the teacher checkpoint's ``Config`` (latent size, scales, output shape,
            training settings are inherited).
        preset: a :data:`STUDENT_PRESETS` name.
        overrides: extra ``model.field=value`` strings.

    Raises:
        DarkGANError: unknown preset (the message lists them), a preset whose number of scales
            differs from the teacher's, or a bad override.
    """
    from darkgan.models.config import apply_overrides

    if preset not in STUDENT_PRESETS:
        raise DarkGANError(f"unknown student preset {preset!r}; choose one of {', '.join(STUDENT_PRESETS)}")
    cfg = copy.deepcopy(teacher_config)
    fields = dict(STUDENT_PRESETS[preset][1])
    if fields["channels"] == "half":
        fields["channels"] = tuple(max(1, c // 2) for c in cfg.model.channels)
    if len(fields["channels"]) != cfg.model.n_scales:
        raise DarkGANError(f"student preset {preset!r} has {len(fields['channels'])} scales, the teacher "
                           f"{cfg.model.n_scales}; override model.channels")
    cfg.model = dataclasses.replace(cfg.model, critic_channels=cfg.model.critic_channels or cfg.model.channels,
                                    **fields)
    cfg.preset = preset
    cfg.overrides = []
    if overrides:
        cfg = apply_overrides(cfg, list(overrides))
    cfg.validate()
    return cfg
