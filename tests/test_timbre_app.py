"""The web app's timbre-map pad (docs/timbre.md, docs/app.md) without a browser: a click's note goes
into the app's own pruned output folder (``Studio.out_dir``), never into the system temp folder."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import soundfile as sf
from test_app_helpers import make_tiny_checkpoint

from darkgan.app.app import timbre_pad_note
from darkgan.app.controller import KEEP_FILES, Studio
from darkgan.data.synth import quantize
from darkgan.timbre.explore import pad_to_latent
from darkgan.timbre.space import TimbreSpace


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    ckpt = make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")
    return Studio.load(ckpt, out_dir=tmp_path_factory.mktemp("out"))


def test_pad_note_lands_in_the_pruned_output_folder(studio, tmp_path, monkeypatch):
    space = TimbreSpace.load()
    # a full output folder of older files (oldest first)
    for i in range(KEEP_FILES):
        old = studio.out_dir / f"old-{i:03d}.wav"
        old.write_bytes(b"x")
        os.utime(old, (1_000_000 + i, 1_000_000 + i))
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    path, pitch = timbre_pad_note(studio, space, 0.4, 0.6, 200)
    assert pitch == space.pitch_range[1]  # clamped to the space's range
    assert path.parent == studio.out_dir and path.is_file()
    assert list(system_tmp.iterdir()) == []
    files = sorted(p.name for p in studio.out_dir.iterdir())
    assert len(files) == KEEP_FILES and "old-000.wav" not in files and path.name in files
    wave, sr = sf.read(str(path), dtype="float32")
    expected = quantize(space.synth(pad_to_latent(space, 0.4, 0.6), pitch)).astype(np.float32) / 32768
    assert sr == 16000 and wave.shape == (16000,) and np.abs(wave - expected).max() <= 1 / 32768
    assert np.sqrt(np.mean(wave.astype(np.float64) ** 2)) > 1e-3
