"""Where things live: model weights, SoundFonts, caches. Every path is settable.

Environment variables:
    DARKGAN_MODELS_DIR: folder holding pretrained tagger weights, one sub-folder per model
        (``efficientat-mn04-as/``, ``yamnet/``); CI sets it to ``../shared/models``.
    DARKGAN_CACHE_DIR: user cache (default ``~/.cache/darkgan``), where downloads go.
    DARKGAN_SOUNDFONT_DIRS: ``:``-separated folders searched for the default SoundFonts.
"""
from __future__ import annotations

import os
from pathlib import Path

#: The repository root when running from a checkout (used to find ``../shared`` in development).
REPO_ROOT = Path(__file__).resolve().parent.parent

#: Default General MIDI SoundFonts installed by Debian packages (file name -> package).
DEFAULT_SOUNDFONTS = {
    "FluidR3_GM.sf2": "fluid-soundfont-gm",
    "MuseScore_General.sf3": "musescore-general-soundfont",
    "TimGM6mb.sf2": "timgm6mb-soundfont",
}
#: Optional extra font used as the "synthetic" source when installed.
OPTIONAL_SOUNDFONTS = {"OPL-3_FM_128M.sf2": "opl3-soundfont"}

_SOUNDFONT_DIRS = ("/usr/share/sounds/sf2", "/usr/share/sounds/sf3", "/usr/share/soundfonts")


def cache_dir() -> Path:
    """User cache folder (``$DARKGAN_CACHE_DIR`` or ``~/.cache/darkgan``)."""
    return Path(os.environ.get("DARKGAN_CACHE_DIR", Path.home() / ".cache" / "darkgan"))


def models_dirs() -> list[Path]:
    """Folders searched for pretrained weights, in order: ``$DARKGAN_MODELS_DIR``, then the user
    cache's ``models/``, then ``../shared/models`` beside a development checkout."""
    dirs = []
    if env := os.environ.get("DARKGAN_MODELS_DIR"):
        dirs.append(Path(env))
    dirs.append(cache_dir() / "models")
    dirs.append(REPO_ROOT.parent / "shared" / "models")
    return dirs


def soundfont_dirs() -> list[Path]:
    """Folders searched for SoundFonts (``$DARKGAN_SOUNDFONT_DIRS`` first, then Debian's)."""
    env = os.environ.get("DARKGAN_SOUNDFONT_DIRS")
    extra = [Path(p) for p in env.split(":") if p] if env else []
    return extra + [Path(p) for p in _SOUNDFONT_DIRS]


def find_soundfont(name: str) -> Path | None:
    """Return the first existing path of SoundFont file ``name`` in :func:`soundfont_dirs`."""
    for d in soundfont_dirs():
        p = d / name
        if p.is_file():
            return p.resolve()
    return None


def default_soundfonts(include_optional: bool = True) -> list[Path]:
    """The installed default SoundFonts (missing ones are skipped)."""
    names = list(DEFAULT_SOUNDFONTS) + (list(OPTIONAL_SOUNDFONTS) if include_optional else [])
    return [p for n in names if (p := find_soundfont(n)) is not None]


#: name -> folder under ``darkgan/assets`` of the checkpoints shipped inside the package.
#: ``default``: the `small-control` generator trained on this project's CPU with the word-control
#: recipe (issue 15: teacher term, waveform pitch loss, envelope bound; docs/training.md, "Shipped
#: default checkpoint"): words move what the teacher and YAMNet hear;
#: ``student``: the 50 %-pruned, one-convolution-per-block student distilled from ``default``
#: with the f0 loss (0.078 GMAC/note, ~5 ms per note on one CPU thread; docs/compression.md,
#: section 3): it follows words too;
#: ``paper-small``: the `small` generator of the paper's recipe (plus the waveform pitch loss) at the
#: same budget, the default until issue 15: it barely responds to words, kept as the reference
#: that shows what the control recipe buys.
SHIPPED_CHECKPOINTS = {"default": "darkgan-default", "student": "darkgan-student", "paper-small": "darkgan-paper-small"}


def shipped_checkpoint(name: str = "default") -> Path:
    """A pretrained checkpoint shipped inside the package (see :data:`SHIPPED_CHECKPOINTS`).

    Raises:
        KeyError: ``name`` is not a shipped checkpoint (the message lists them).
    """
    if name not in SHIPPED_CHECKPOINTS:
        raise KeyError(f"{name!r} is not a shipped checkpoint; shipped: {', '.join(SHIPPED_CHECKPOINTS)}")
    return Path(__file__).resolve().parent / "assets" / SHIPPED_CHECKPOINTS[name]


def provenance(path: str | os.PathLike) -> str:
    """How a checkpoint's metadata names another checkpoint it came from: a shipped one as
    ``darkgan/assets/<folder>`` (the same on every machine), any other as the path given.
    Raises nothing (the path need not exist)."""
    if is_shipped(path):
        assets = (Path(__file__).resolve().parent / "assets").resolve()
        return "darkgan/assets/" + Path(path).resolve().relative_to(assets).as_posix()
    return str(path)


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies inside the package's ``assets/`` folder (the shipped checkpoints),
    which every command treats as read-only."""
    assets = (Path(__file__).resolve().parent / "assets").resolve()
    p = Path(path).resolve()
    return p == assets or assets in p.parents
