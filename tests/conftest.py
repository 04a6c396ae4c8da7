"""Shared pytest fixtures (real audio, no mocks).

Fixtures other stages may rely on (keep stable):

``fluidr3`` (session): ``pathlib.Path`` of the installed FluidR3_GM.sf2 SoundFont.
``timgm`` (session): ``pathlib.Path`` of the installed TimGM6mb.sf2 SoundFont.
``rendered_dataset`` (session): ``pathlib.Path`` of a small real dataset rendered once per test
    session by :func:`darkgan.data.render.render_dataset` (the code behind
    ``darkgan data render``) in NSynth json/wav layout:
    ``examples.json``, ``audio/<note_str>.wav`` (16 kHz mono int16, 64000 samples),
    ``splits.json`` (scheme "instrument", seed 0), ``render_report.json``.
    Content: GM programs 0 (piano), 24 (nylon guitar), 40 (violin), 56 (trumpet), 73 (flute),
    bank 0, from FluidR3_GM and TimGM6mb (10 instruments, families keyboard, guitar, string,
    brass, flute; source acoustic), pitches 48, 60, 67, velocity 100: 30 notes. Splits: 8 train,
    1 valid, 1 test instruments. Renders in a few seconds. Treat it as read-only (copy it with
    ``shutil.copytree`` before modifying, e.g. to build a cache).
"""
from __future__ import annotations

from pathlib import Path

import pytest

RENDERED_PROGRAMS = (0, 24, 40, 56, 73)
RENDERED_PITCHES = (48, 60, 67)
RENDERED_VELOCITIES = (100,)


def _soundfont(name: str) -> Path:
    from darkgan.paths import find_soundfont

    path = find_soundfont(name)
    if path is None:
        pytest.fail(f"SoundFont {name} not installed (apt install fluid-soundfont-gm "
                    "timgm6mb-soundfont, or set DARKGAN_SOUNDFONT_DIRS)")
    return Path(path)


@pytest.fixture(scope="session")
def fluidr3() -> Path:
    """Path of FluidR3_GM.sf2."""
    return _soundfont("FluidR3_GM.sf2")


@pytest.fixture(scope="session")
def timgm() -> Path:
    """Path of TimGM6mb.sf2."""
    return _soundfont("TimGM6mb.sf2")


@pytest.fixture(scope="session")
def rendered_dataset(tmp_path_factory, fluidr3, timgm) -> Path:
    """A 30-note real dataset (see module docstring), rendered once per session."""
    from darkgan.data.render import render_dataset

    out = tmp_path_factory.mktemp("rendered") / "dataset"
    render_dataset(out, soundfonts=[fluidr3, timgm], programs=RENDERED_PROGRAMS, banks=[0],
                   pitches=RENDERED_PITCHES, velocities=RENDERED_VELOCITIES, split="instrument",
                   seed=0, jobs=1, progress=False, verbose=False)
    return out


@pytest.fixture(scope="session")
def rendered_notes(rendered_dataset):
    """The first second of every note of ``rendered_dataset``: ``(waves [30, 16000] float32, midi [30])``."""
    import numpy as np
    import soundfile as sf
    import torch

    from darkgan.generation.bank import dataset_split_and_pitch

    _, pitch_of = dataset_split_and_pitch(rendered_dataset)
    names = sorted(pitch_of)
    waves = [sf.read(rendered_dataset / "audio" / f"{n}.wav", dtype="float32", frames=16000)[0] for n in names]
    return torch.from_numpy(np.stack(waves)), torch.tensor([pitch_of[n] for n in names])


@pytest.fixture(scope="session")
def prepared_dataset(rendered_dataset, tmp_path_factory) -> Path:
    """``rendered_dataset`` run through the real pipeline once per session: MAG-IF cache
    (``darkgan data prepare``), EfficientAT labels (``darkgan label``), a 16-attribute vocabulary
    (``darkgan attributes --n 16``). Read-only: copy it before modifying."""
    import shutil

    from darkgan.data.prepare import prepare
    from darkgan.teacher.labels import label_dataset
    from darkgan.teacher.vocabulary import build_vocabulary

    root = tmp_path_factory.mktemp("prepared") / "dataset"
    shutil.copytree(rendered_dataset, root)
    prepare(root, progress=False)
    label_dataset(root, progress=False)
    build_vocabulary(root, n=16)
    return root


@pytest.fixture
def resumes_exactly(prepared_dataset, tmp_path):
    """``check(cfg) -> (uninterrupted TrainResult, resumed training state)``: a tiny run of ``cfg``
    on ``prepared_dataset`` trained straight through, and again stopped after step 1 and resumed,
    must end bit for bit alike (generator, EMA and critic weights); asserted here."""
    import torch

    from darkgan.models.checkpoint import load_training_state
    from darkgan.training.loop import train

    def check(cfg):
        a = train(prepared_dataset, tmp_path / "a", config=cfg, progress=False, threads=1)
        train(prepared_dataset, tmp_path / "b", config=cfg, progress=False, threads=1, stop_at_step=1)
        b = train(prepared_dataset, tmp_path / "b", resume=True, progress=False, threads=1)
        A, B = load_training_state(a.checkpoint), load_training_state(b.checkpoint)
        for part in ("generator", "ema", "critic"):
            assert all(torch.equal(t, B[part][k]) for k, t in A[part].items()), part
        return a, B

    return check


@pytest.fixture
def adam_lowers():
    """``check(G, terms, inputs, name, first)``: ten Adam steps (lr 1e-3) on the generator ``G`` lower the
    output term ``name`` of ``terms`` (a :class:`darkgan.training.terms.BatchTerms`) on ``inputs =
    (z, pitch, conditioning)`` (partners appended) below 0.9 x ``first``; returns the last value."""
    import torch

    def check(G, terms, inputs, name: str, first: float) -> float:
        opt = torch.optim.Adam(G.parameters(), lr=1e-3)
        for _ in range(10):
            opt.zero_grad()
            loss = terms(G(*inputs))[name]
            loss.backward()
            opt.step()
        last = float(loss.detach())
        assert last < 0.9 * first, f"{name}: {first:.4f} -> {last:.4f} after 10 Adam steps"
        return last

    return check


@pytest.fixture
def load_benchmark():
    """``load(name)``: the module ``benchmarks/<name>.py``, imported with ``benchmarks/`` on the path
    for the time of the import (benchmarks import each other, e.g. ``temperature`` -> ``control``)."""
    import importlib.util
    import sys

    bench = Path(__file__).parents[1] / "benchmarks"

    def load(name: str):
        sys.path.insert(0, str(bench))
        try:
            spec = importlib.util.spec_from_file_location(f"benchmark_{name}", bench / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        finally:
            sys.path.remove(str(bench))
        return module

    return load
