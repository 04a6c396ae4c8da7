"""`darkgan label` / `tag` / `attributes` on a real rendered dataset: contents, resume, no-op rerun,
vocabulary format (issue 3, items 5-8)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from darkgan.cli import main
from darkgan.teacher import load_teacher
from darkgan.teacher import labels as L
from darkgan.teacher.labels import label_dataset, load_labels
from darkgan.teacher.vocabulary import load_vocabulary


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def labelled(rendered_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("lab") / "ds"
    shutil.copytree(rendered_dataset, root)
    assert main(["label", str(root), "--batch-size", "8"]) == 0
    return root


def test_label_files_match_the_teacher(labelled):
    from darkgan.data.nsynth import NoteDataset

    ls = load_labels(labelled, "efficientat-mn04")
    ds = NoteDataset(labelled)
    assert len(ls.note_str) == len(ds) == 30
    assert list(ls.note_str) == sorted(ls.note_str)
    assert ls.logits.shape == (30, 527) and ls.logits.dtype == np.float32
    assert ls.class_names[137] == "Music"
    meta = ls.meta
    assert meta["teacher"] == "efficientat-mn04" and len(meta["weights_sha256"]) == 64
    assert len(meta["class_mids"]) == 527 and meta["created"].startswith("20")
    assert "-1 dBFS" in meta["input"]["normalization"] and "16000" in meta["input"]["crop"]
    i = next(k for k, r in enumerate(ds.records) if r["note_str"] == ls.note_str[3])
    direct = load_teacher().logits(ds.load_audio(i)).numpy()[0]
    assert np.abs(direct - ls.logits[3]).max() < 2e-3
    assert not (labelled / "labels" / ".partial-efficientat-mn04").exists()


def test_rerun_is_a_no_op_unless_forced(labelled, capsys):
    npz = labelled / "labels" / "efficientat-mn04.npz"
    mtime = npz.stat().st_mtime_ns
    assert main(["label", str(labelled)]) == 0
    assert "up to date" in capsys.readouterr().out and npz.stat().st_mtime_ns == mtime
    assert main(["label", str(labelled), "--force", "--batch-size", "16"]) == 0
    assert npz.stat().st_mtime_ns != mtime


def test_interrupted_run_resumes_from_chunks(rendered_dataset, tmp_path, monkeypatch):
    root = tmp_path / "ds"
    shutil.copytree(rendered_dataset, root)
    real_load, calls = L.load_note_crop, []

    def flaky(ds, i, name):
        calls.append(name)
        if len(calls) == 17:  # dies inside the third chunk of 8
            raise KeyboardInterrupt
        return real_load(ds, i, name)

    monkeypatch.setattr(L, "load_note_crop", flaky)
    with pytest.raises(KeyboardInterrupt):
        label_dataset(root, batch_size=4, chunk_size=8, progress=False)
    partial = root / "labels" / ".partial-efficientat-mn04"
    assert sorted(p.name for p in partial.glob("chunk-*.npz")) == ["chunk-00000.npz", "chunk-00001.npz"]
    calls.clear()
    monkeypatch.setattr(L, "load_note_crop", lambda ds, i, name: (calls.append(name), real_load(ds, i, name))[1])
    label_dataset(root, batch_size=4, chunk_size=8, progress=False)
    assert len(calls) == 30 - 16  # only the unfinished chunks ran
    ref_root = tmp_path / "ref"
    shutil.copytree(rendered_dataset, ref_root)
    label_dataset(ref_root, batch_size=4, chunk_size=8, progress=False)
    assert np.abs(load_labels(root).logits - load_labels(ref_root).logits).max() < 1e-5


def test_tag_json_any_rate_stereo(tmp_path, fluidr3, capsys):
    import soundfile as sf
    import soxr

    from darkgan.data.render import render_note

    x = render_note(fluidr3, 24, 52, 100)[:16000]
    sf.write(tmp_path / "guitar.wav", soxr.resample(np.stack([x, x], 1), 16000, 44100), 44100)
    assert main(["tag", str(tmp_path / "guitar.wav"), "--json", "--top", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["file"].endswith("guitar.wav") and len(out[0]["top"]) == 5
    names = [e["name"] for e in out[0]["top"]]
    assert {"Guitar", "Acoustic guitar", "Plucked string instrument"} & set(names), names
    probs = [e["probability"] for e in out[0]["top"]]
    assert probs == sorted(probs, reverse=True) and all(0 < p < 1 for p in probs)
    assert main(["tag", str(tmp_path / "missing.wav")]) == 2


def test_attributes_writes_vocabulary(labelled, capsys):
    assert main(["attributes", str(labelled), "--n", "20"]) == 0
    out = capsys.readouterr().out
    assert "vocabulary.json: 20 attributes" in out
    v = json.loads((labelled / "vocabulary.json").read_text())
    assert v["teacher"] == "efficientat-mn04" and v["quantile"] == 0.9 and v["n"] == 20
    splits = json.loads((labelled / "splits.json").read_text())["splits"]
    assert v["n_train_notes"] == sum(s == "train" for s in splits.values())
    a = v["attributes"]
    assert set(a[0]) == {"name", "index", "mid", "p_q", "ap", "score"}
    assert [x["score"] for x in a] == sorted((x["score"] for x in a), reverse=True)
    assert "Music" not in [x["name"] for x in a]
    voc = load_vocabulary(labelled)
    assert len(voc) == 20 and voc.names[0] == a[0]["name"] and voc.indices[0] == a[0]["index"]
