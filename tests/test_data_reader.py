"""NoteDataset: one reader for our rendered datasets and the real NSynth json/wav release."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from darkgan.data.nsynth import NoteDataset
from darkgan.errors import DataError

NSYNTH_FIELDS = ("note", "note_str", "instrument", "instrument_str", "pitch", "velocity", "sample_rate",
                 "qualities", "qualities_str", "instrument_family", "instrument_family_str",
                 "instrument_source", "instrument_source_str")


def test_reads_our_dataset_with_splits_and_filters(rendered_dataset):
    ds = NoteDataset(rendered_dataset)
    assert len(ds) == 30
    splits = json.loads((rendered_dataset / "splits.json").read_text())["splits"]
    for rec in ds.records:
        assert rec["split"] == splits[rec["note_str"]]
    wave, rec = ds[0]
    assert wave.dtype == np.float32 and wave.shape == (16000,)
    full, _ = sf.read(rec["path"], dtype="float32")
    assert np.array_equal(wave, full[:16000])
    assert 0.01 < np.abs(wave).max() < 1.0
    assert NoteDataset(rendered_dataset, crop=64000).load_audio(0).shape == (64000,)

    sizes = {s: len(NoteDataset(rendered_dataset, split=s)) for s in ("train", "valid", "test")}
    assert sizes == {"train": 24, "valid": 3, "test": 3}
    assert len(NoteDataset(rendered_dataset, pitches=(48, 60))) == 20  # (lo, hi) tuple: inclusive range
    assert len(NoteDataset(rendered_dataset, pitches=[48])) == 10  # list: these pitches
    assert len(NoteDataset(rendered_dataset, pitches=range(60, 71))) == 20
    guitar = NoteDataset(rendered_dataset, families=["guitar"])
    assert len(guitar) == 6 and {r["program"] for r in guitar.records} == {24}
    assert [r["note_str"] for r in NoteDataset(rendered_dataset, families=[3]).records] == \
        [r["note_str"] for r in guitar.records]
    assert len(NoteDataset(rendered_dataset, sources=["acoustic"], velocities=[100])) == 30
    with pytest.raises(DataError, match="no notes"):
        NoteDataset(rendered_dataset, sources=["synthetic"])
    with pytest.raises(DataError, match="split"):
        NoteDataset(rendered_dataset, split="validation")


def _write_nsynth(root: Path, split: str, src: Path, notes: list[dict]) -> dict[str, str]:
    """A tiny folder in the layout of the NSynth json/wav release (nsynth-<split>/...);
    returns {NSynth-style note_str: our note_str}."""
    folder = root / f"nsynth-{split}"
    (folder / "audio").mkdir(parents=True)
    examples, names = {}, {}
    for i, rec in enumerate(notes):
        name = f"{rec['instrument_family_str']}_{rec['instrument_source_str']}_{100 + i:03d}-" \
               f"{rec['pitch']:03d}-{rec['velocity']:03d}"
        examples[name] = {k: rec[k] for k in NSYNTH_FIELDS if k != "note_str"}
        examples[name].update(note_str=name, instrument_str=name.rsplit("-", 2)[0], qualities=[0, 1] + [0] * 8,
                              qualities_str=["bright"])
        shutil.copy(src / "audio" / f"{rec['note_str']}.wav", folder / "audio" / f"{name}.wav")
        names[name] = rec["note_str"]
    (folder / "examples.json").write_text(json.dumps(examples))
    return names


def test_reads_the_nsynth_release_layout_with_identical_arrays(tmp_path, rendered_dataset):
    ours = NoteDataset(rendered_dataset, crop=64000)
    picked = ours.records[:4]
    names = _write_nsynth(tmp_path, "valid", rendered_dataset, picked)
    ref = {r["note_str"]: ours.load_audio(i) for i, r in enumerate(ours.records)}
    for root, split in ((tmp_path, None), (tmp_path, "valid"), (tmp_path / "nsynth-valid", None)):
        ns = NoteDataset(root, split=split, crop=64000)
        assert len(ns) == 4
        for i, rec in enumerate(ns.records):
            assert rec["split"] == "valid"
            assert rec["qualities_str"] == ["bright"]  # NSynth's own record, not ours
            assert np.array_equal(ns.load_audio(i), ref[names[rec["note_str"]]])
    with pytest.raises(DataError, match="split 'train'"):
        NoteDataset(tmp_path, split="train")
    # several splits side by side
    _write_nsynth(tmp_path, "test", rendered_dataset, ours.records[4:6])
    assert len(NoteDataset(tmp_path)) == 6 and len(NoteDataset(tmp_path, split="test")) == 2


def _copy_dataset(src: Path, dst: Path, n: int = 3) -> list[str]:
    ex = json.loads((src / "examples.json").read_text())
    keep = sorted(ex)[:n]
    (dst / "audio").mkdir(parents=True)
    for k in keep:
        shutil.copy(src / "audio" / f"{k}.wav", dst / "audio" / f"{k}.wav")
    (dst / "examples.json").write_text(json.dumps({k: ex[k] for k in keep}))
    return keep


def test_bad_wavs_raise_data_error_naming_the_file(tmp_path, rendered_dataset):
    keys = _copy_dataset(rendered_dataset, tmp_path / "ds", n=5)
    audio = tmp_path / "ds" / "audio"
    (audio / f"{keys[0]}.wav").write_bytes(b"RIFF" + bytes(range(256)) * 4)  # corrupt
    good = (audio / f"{keys[1]}.wav").read_bytes()
    (audio / f"{keys[1]}.wav").write_bytes(good[:20000])  # truncated
    wave, _ = sf.read(str(audio / f"{keys[2]}.wav"), dtype="int16")
    sf.write(str(audio / f"{keys[2]}.wav"), wave, 22050, subtype="PCM_16")  # wrong rate
    sf.write(str(audio / f"{keys[3]}.wav"), wave[:32000], 16000, subtype="PCM_16")  # wrong length
    (audio / f"{keys[4]}.wav").unlink()  # missing
    ds = NoteDataset(tmp_path / "ds")
    index = {r["note_str"]: i for i, r in enumerate(ds.records)}
    expected = {keys[0]: "", keys[1]: "", keys[2]: "sample rate 22050", keys[3]: "32000 samples",
                keys[4]: "not found"}
    for key, what in expected.items():
        with pytest.raises(DataError) as e:
            ds.load_audio(index[key])
        msg = str(e.value)
        assert f"{key}.wav" in msg and what in msg and "\n" not in msg, msg


def test_bad_examples_json_raises_data_error(tmp_path, rendered_dataset):
    keys = _copy_dataset(rendered_dataset, tmp_path / "ds")
    path = tmp_path / "ds" / "examples.json"
    ex = json.loads(path.read_text())
    del ex[keys[1]]["pitch"]
    path.write_text(json.dumps(ex))
    with pytest.raises(DataError, match=r"examples\.json: record .* lacks field\(s\) pitch"):
        NoteDataset(tmp_path / "ds")
    path.write_text("{not json")
    with pytest.raises(DataError, match="examples.json: not valid JSON"):
        NoteDataset(tmp_path / "ds")
    path.unlink()
    with pytest.raises(DataError, match="no examples.json"):
        NoteDataset(tmp_path / "ds")
    with pytest.raises(DataError, match="not found"):
        NoteDataset(tmp_path / "nowhere")
