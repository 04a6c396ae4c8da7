"""`darkgan data prepare` and the memory-mapped training cache (issue 2, item 6)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from darkgan.data.cache import NoteCache
from darkgan.data.magif import magif_to_wave, snr_db, wave_to_magif, fade_out
from darkgan.data.nsynth import NoteDataset
from darkgan.data.prepare import prepare
from darkgan.errors import DataError


@pytest.fixture(scope="module")
def prepared(rendered_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("cache") / "dataset"
    shutil.copytree(rendered_dataset, root)
    prepare(root, progress=False)
    return root


def test_cache_matches_the_reader_and_the_transform(prepared):
    cache = NoteCache(prepared)
    assert len(cache) == 30
    assert cache.magif.dtype == np.float16 and cache.magif.shape == (30, 2, 1024, 32)
    # every row is the MAG-IF of the reader's first second, faded out, stored as float16
    for split in ("train", "valid", "test"):
        ds = NoteDataset(prepared, split=split)
        for i, rec in enumerate(ds.records):
            row = cache.row_of([rec["note_str"]])[0]
            assert cache.split[row] == split
            assert cache.pitch[row] == rec["pitch"]
            expected = wave_to_magif(fade_out(torch.from_numpy(ds.load_audio(i))[None]))[0]
            got = torch.from_numpy(np.asarray(cache.magif[row], dtype=np.float32))
            assert torch.allclose(got, expected, atol=1e-2, rtol=1e-3)


def test_float16_cache_still_round_trips_above_30_db(prepared):
    cache = NoteCache(prepared)
    ds = NoteDataset(prepared, split="train")
    rows = cache.row_of([r["note_str"] for r in ds.records])
    waves = fade_out(torch.from_numpy(np.stack([ds.load_audio(i) for i in range(len(ds))])))
    rebuilt = magif_to_wave(cache.load(rows, normalize=False))
    assert snr_db(waves, rebuilt).min() > 30.0


def test_normalizer_is_fitted_on_the_training_split(prepared):
    cache = NoteCache(prepared)
    train = cache.load(cache.rows("train"), normalize=True)
    assert abs(train[:, 0].mean()) < 1e-2 and abs(train[:, 0].std() - 1) < 1e-2
    assert abs(train[:, 1].mean()) < 1e-2 and abs(train[:, 1].std() - 1) < 1e-2


def test_batches_are_deterministic_epoch_permutations_and_shard_by_rank(prepared):
    cache = NoteCache(prepared)
    train = set(cache.rows("train").tolist())
    n = len(train)
    a = [cache.batch_rows(s, 4, seed=3) for s in range(n)]  # 4 epochs' worth of batches
    b = [cache.batch_rows(s, 4, seed=3) for s in range(n)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    stream = np.concatenate(a)
    for e in range(4):  # each epoch visits every training row exactly once
        assert sorted(stream[e * n:(e + 1) * n].tolist()) == sorted(train)
    r0 = cache.batch_rows(5, 4, seed=3, rank=0, world_size=2)
    r1 = cache.batch_rows(5, 4, seed=3, rank=1, world_size=2)
    assert np.array_equal(np.concatenate([r0, r1]), cache.batch_rows(5, 4, seed=3))
    batch = next(cache.batches(4, seed=3, start_step=5))
    assert batch.magif.shape == (4, 2, 1024, 32) and batch.magif.dtype == torch.float32
    assert torch.equal(batch.index, torch.from_numpy(a[5]))
    assert torch.equal(batch.pitch, torch.from_numpy(cache.pitch[a[5]]))


def test_prepare_twice_is_a_no_op(prepared, capsys):
    prepare(prepared, progress=False)
    assert "already complete" in capsys.readouterr().out


def test_interrupted_prepare_resumes_to_the_same_cache(prepared, tmp_path, monkeypatch):
    root = tmp_path / "ds"
    shutil.copytree(prepared, root)
    shutil.rmtree(root / "cache")
    reference = np.asarray(NoteCache(prepared).magif)
    calls = {"n": 0}
    original = NoteDataset.load_audio

    def flaky(self, i):
        calls["n"] += 1
        if calls["n"] > 20:  # dies inside the third batch of 8
            raise KeyboardInterrupt
        return original(self, i)

    monkeypatch.setattr(NoteDataset, "load_audio", flaky)
    with pytest.raises(KeyboardInterrupt):
        prepare(root, progress=False, batch_size=8)
    assert not (root / "cache" / "magif.npy").exists()  # no half cache in place
    from darkgan.utils.io import read_json
    assert read_json(root / "cache" / ".progress.json")["done"] == 16
    monkeypatch.setattr(NoteDataset, "load_audio", original)
    calls["n"] = 0
    prepare(root, progress=False, batch_size=8)
    assert np.array_equal(np.asarray(NoteCache(root).magif), reference)


def test_missing_cache_is_a_clear_error(rendered_dataset):
    with pytest.raises(DataError, match="darkgan data prepare"):
        NoteCache(rendered_dataset)


def test_cli_prepare_on_a_folder_without_dataset_exits_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "darkgan", "data", "prepare", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("darkgan: error:") and str(tmp_path) in lines[0]
