"""SFZ writer: an :class:`~darkgan.instrument.export.Instrument` as a ``.sfz`` text + WAV samples.

The format (sfzformat.com, SFZ v1 opcodes only, so every SFZ player reads it): one ``<group>``
per velocity layer (``lovel``/``hivel``), one ``<region>`` per key (``sample``, ``lokey``,
``hikey``, ``pitch_keycenter``, ``loop_start``/``loop_end``: the *last* sample of the loop, so
our half-open ``end - 1``); every group also carries ``loop_mode=loop_continuous`` (or
``one_shot``), ``ampeg_release`` and ``amp_veltrack=100`` (loudness follows velocity). No
``<global>`` header: it is SFZ v2, and v1-only players ignore it.
Samples: mono PCM-16 WAV at the instrument's rate (16 kHz), beside the ``.sfz`` file.
"""
from __future__ import annotations

from pathlib import Path

from darkgan.instrument.export import Instrument


def sample_name(inst: Instrument, key: int, layer: int) -> str:
    """File name of one sample: ``<name>_k<MIDI>_v<layer>.wav`` (layer 1 = softest)."""
    return f"{inst.name}_k{int(inst.pitches[key]):03d}_v{layer + 1}.wav"


def _header(inst: Instrument) -> list[str]:
    info = inst.info
    attrs = ", ".join(f"{k}={v:g}" for k, v in info.get("attributes", {}).items()) or "none"
    return [f"// {inst.name}: a DarkGAN sample instrument (darkgan export-instrument)",
            f"// checkpoint {info.get('checkpoint')}; attributes {attrs}; like {info.get('like')}; "
            f"seed {info.get('seed')}",
            "// velocity layers: the same generated note, low-passed for softer layers (the model has no",
            "// velocity input); loudness follows velocity through amp_veltrack=100.", ""]


def sfz_text(inst: Instrument) -> str:
    """The ``.sfz`` file's text for ``inst`` (sample paths relative to the ``.sfz`` file)."""
    lines = _header(inst)
    common = (f"loop_mode={'loop_continuous' if inst.loops is not None else 'one_shot'} "
              f"ampeg_release={inst.release_s:g} amp_veltrack=100")
    for v, (lovel, hivel) in enumerate(inst.vel_ranges):
        lines += [f"<group> lovel={max(lovel, 1)} hivel={hivel} {common}"]
        for k, (lokey, hikey) in enumerate(inst.key_ranges):
            region = (f"<region> sample={sample_name(inst, k, v)} lokey={lokey} hikey={hikey} "
                      f"pitch_keycenter={int(inst.pitches[k])}")
            if inst.loops is not None:
                s, e = (int(x) for x in inst.loops[k])
                region += f" loop_start={s} loop_end={e - 1}"
            lines.append(region)
        lines.append("")
    return "\n".join(lines)


def write_sfz(inst: Instrument, folder: str | Path) -> Path:
    """Write ``<folder>/<name>.sfz`` and its ``V x P`` WAV samples (each atomically).

    Returns:
        The ``.sfz`` path.

    Raises:
        OSError: the folder is not writable.
    """
    from darkgan.generation.cli import write_wav
    from darkgan.utils.io import atomic_write

    folder = Path(folder)
    for v in range(len(inst.vel_ranges)):
        for k in range(len(inst.pitches)):
            write_wav(folder / sample_name(inst, k, v), inst.samples[v, k], inst.sample_rate)
    path = folder / f"{inst.name}.sfz"
    with atomic_write(path, "w") as f:
        f.write(sfz_text(inst))
    return path
