"""The typed configuration of an instrument export (stdlib dataclass + named presets).

Parsed, overridden and printed with :mod:`darkgan.utils.config`; saved in every export's
``instrument.json``.
"""
from __future__ import annotations

from dataclasses import dataclass

from darkgan.errors import DarkGANError
from darkgan.generation.steer import STEER_MODES
from darkgan.instrument.optimise import TARGETS


#: What :attr:`InstrumentConfig.select` compares candidates on.
SELECT = ("played", "generated", "path")


@dataclass
class InstrumentConfig:
    """How an instrument is chosen and laid out.

    Attributes:
        candidates: latent/base candidates tried; each is generated over every key and the one
            whose neighbouring keys sound most alike (teacher embedding) wins (1 = a fixed z).
        select: what the candidates are compared on. ``"generated"``: the generated roots,
            one candidate for all keys (the default until 2026-12-03); ``"played"``: each candidate is assembled into an instrument (repair,
            retune, loops, levels) and its neighbouring keys are compared as a player plays them,
            every key of the trained range re-pitched from its root (the measure of
            docs/instrument.md; +1-1.5 CPU s; a teacher-only gain there, not the default);
            ``"path"`` (the default): each root may come from a different candidate: the in-tune notes are
            chained root by root by dynamic programming (:func:`~darkgan.instrument.export.path_sources`)
            for the least neighbour distance, anchored to the winning candidate by ``path_anchor``
            (the search already takes in-tune notes of other candidates, so ``repair`` is not used).
        path_anchor: with ``select = "path"``, the weight of each root's distance to the winning
            candidate's note of that root (keeps the chain near one timbre; 0 = neighbours only).
        steer: how a description sets the attributes it does not name: ``"data"`` (the default)
            moves them with the named ones as they move in the data, ``"none"`` keeps each
            candidate's bank draw (or ``like``) as it is (:mod:`darkgan.generation.steer`).
        pitch_weight: weight of the fraction of off-pitch keys (YIN screen, > ``pitch_cents``)
            added to the consistency score of a candidate (cosine distance units).
        pitch_cents: a key is off-pitch when its YIN f0 is further than this from the key (cents).
        min_stability: a key whose YIN frames lie within 50 cents of their median less often than
            this (a glide, noise) counts as off-pitch and is not retuned.
        verify_pitch: re-check the winner's roots with pYIN (the reported tracker); a root where
            pYIN and the YIN screen disagree by > 100 cents (a note heard an octave low) is
            repaired from a candidate both agree on, or dropped.
        repair: replace a key still off-pitch in the winner by the in-tune note of that key from
            another candidate, the one nearest (teacher embedding) to the winner's neighbours.
        retune_max_cents: keys whose YIN error is at most this (cents) are re-pitched by resampling
            (a baked pitch correction); 0 turns it off. Larger errors (octave errors) stay.
        key_spacing: a sample every this many semitones (and the highest key); the keys between
            play the nearest sample re-pitched, as multi-sampled libraries do (1 = every key; 3 keeps
            neighbouring keys twice as alike, docs/instrument.md).
        drop_unpitched: a sampled key still unpitched or gliding after repair is left out; the
            nearest kept samples play its keys, re-pitched.
        velocities: velocity layers (1..16). The models have no velocity input: layers are the
            same note low-passed more for softer layers (brightness); loudness comes from the
            player's velocity curve (SF2 default, SFZ ``amp_veltrack=100``; our renderer the same
            ``(v/127)^2``).
        soft_harmonics: harmonics of f0 kept by the softest layer's low-pass (the cut-off rises
            geometrically to the top layer, which is unfiltered).
        extend: semitones the lowest and highest generated keys are stretched (re-pitched by the
            player) beyond the trained range.
        loop: loop a stable region so notes sustain past the generated 1 s (else one-shot: the
            note ends with its own 64 ms fade-out).
        loop_min_s, loop_max_s: loop length bounds (seconds).
        loop_end_s: latest loop end (seconds; before the generated note's fade-out at 0.936 s).
        crossfade_s: crossfade baked into the sample before the loop end (seconds).
        release_s: release time after note-off (seconds; SF2 volEnvRelease, SFZ ampeg_release).
        optimise_steps: Adam steps of per-root latent optimisation after the candidate search
            (:mod:`darkgan.instrument.optimise`; 0 = off): every sampled root's z moves from the
            winner's z so that the roots sound alike to the teacher; the result joins the
            candidates (scored, repaired and retuned like them).
        optimise_lr: Adam's learning rate (latent units).
        optimise_target: ``"mean"`` (every root to the roots' mean embedding) or ``"neighbours"``.
        optimise_z_weight: weight of ``mean_p |z_p - z0|^2 / Z`` (keeps notes near the chosen one).
        optimise_spread: roots are embedded as played, re-pitched within +-this many semitones
            (3 random offsets a step; 0 = as generated).
    """

    candidates: int = 24
    select: str = "path"
    pitch_weight: float = 0.5
    pitch_cents: float = 50.0
    min_stability: float = 0.7
    verify_pitch: bool = True
    repair: bool = True
    retune_max_cents: float = 700.0
    drop_unpitched: bool = True
    key_spacing: int = 3
    velocities: int = 5
    soft_harmonics: float = 4.0
    extend: int = 12
    loop: bool = True
    loop_min_s: float = 0.15
    loop_max_s: float = 0.4
    loop_end_s: float = 0.9
    crossfade_s: float = 0.05
    release_s: float = 0.3
    optimise_steps: int = 0
    optimise_lr: float = 0.03
    optimise_target: str = "mean"
    optimise_z_weight: float = 0.1
    optimise_spread: float = 1.5
    path_anchor: float = 0.5
    steer: str = "data"

    def validate(self) -> "InstrumentConfig":
        """Raise :class:`DarkGANError` naming the first field out of range; return self."""
        checks = [
            ("candidates", 1 <= self.candidates <= 64, "1..64"),
            ("select", self.select in SELECT, " or ".join(SELECT)),
            ("velocities", 1 <= self.velocities <= 16, "1..16"),
            ("key_spacing", 1 <= self.key_spacing <= 12, "1..12 semitones"),
            ("extend", 0 <= self.extend <= 24, "0..24 semitones"),
            ("pitch_weight", self.pitch_weight >= 0, ">= 0"),
            ("pitch_cents", self.pitch_cents > 0, "> 0"),
            ("min_stability", 0 <= self.min_stability <= 1, "0..1"),
            ("retune_max_cents", 0 <= self.retune_max_cents <= 1100, "0..1100 cents"),
            ("soft_harmonics", self.soft_harmonics >= 1, ">= 1"),
            ("loop_min_s", 0.02 <= self.loop_min_s <= self.loop_max_s, "0.02..loop_max_s"),
            ("loop_end_s", self.loop_max_s + self.crossfade_s < self.loop_end_s <= 0.936,
             "> loop_max_s + crossfade_s and <= 0.936 s"),
            ("crossfade_s", 0 <= self.crossfade_s <= self.loop_min_s, "0..loop_min_s"),
            ("release_s", 0.001 <= self.release_s <= 20, "0.001..20 s"),
            ("optimise_steps", 0 <= self.optimise_steps <= 500, "0..500"),
            ("optimise_lr", 0 < self.optimise_lr <= 10, "(0, 10]"),
            ("optimise_target", self.optimise_target in TARGETS, " or ".join(TARGETS)),
            ("optimise_z_weight", 0 <= self.optimise_z_weight < float("inf"), ">= 0, finite"),
            ("optimise_spread", 0 <= self.optimise_spread <= 6, "0..6 semitones"),
            ("path_anchor", 0 <= self.path_anchor < float("inf"), ">= 0, finite"),
            ("steer", self.steer in STEER_MODES, " or ".join(STEER_MODES)),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise DarkGANError(f"instrument setting {name}={getattr(self, name)!r} is out of range ({allowed})")
        return self


#: Named presets: name -> factory.
PRESETS = {
    "default": lambda: InstrumentConfig(),
    "fixed-z": lambda: InstrumentConfig(candidates=1, repair=False, verify_pitch=False, retune_max_cents=0.0,
                                        drop_unpitched=False,
                                        key_spacing=1),
    "every-key": lambda: InstrumentConfig(key_spacing=1),
    "one-shot": lambda: InstrumentConfig(loop=False),
}


def get_config(preset: str = "default", overrides: list[str] | tuple[str, ...] = ()) -> InstrumentConfig:
    """The preset ``preset`` with ``key=value`` overrides applied, validated.

    Raises:
        DarkGANError: unknown preset, unknown key, wrong type or a value out of range.
    """
    from darkgan.utils.config import apply_overrides

    if preset not in PRESETS:
        raise DarkGANError(f"unknown instrument preset {preset!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[preset]()
    return (apply_overrides(cfg, list(overrides)) if overrides else cfg).validate()
