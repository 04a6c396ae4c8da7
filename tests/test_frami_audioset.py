"""FRAMI with the real AudioSet teacher (EfficientAT mn04 weights) on real rendered notes.

The session's ``prepared_dataset`` (30 notes with cache, mn04 labels and a 16-class vocabulary).
"""
from __future__ import annotations

import pytest
import torch

from darkgan.frami.audioset import (
    AudioSetTeacher,
    agreement,
    load_note_mels,
    vocabulary_classes,
)
from darkgan.frami.config import get_preset
from darkgan.frami.inversion import invert_batch
from darkgan.frami.models import check_invertible
from darkgan.utils.config import apply_overrides


@pytest.fixture(scope="module")
def teacher():
    return AudioSetTeacher("efficientat")


@pytest.fixture(scope="module")
def train_mels(prepared_dataset, teacher):
    return load_note_mels(prepared_dataset, "train", 0, 0, teacher)


def test_teacher_logmel_reproduces_the_cached_labels(teacher, train_mels):
    assert train_mels.x.shape[1:] == (1, 128, 100) and len(train_mels.x) == len(train_mels.logits) > 10
    with torch.no_grad():
        logits, h_frame, h_utt = teacher.hidden(train_mels.x)
    # the log-mel the student and the inversion work on is exactly what `darkgan label` scored
    assert torch.allclose(logits, train_mels.logits, atol=1e-3), (logits - train_mels.logits).abs().max()
    assert h_frame.shape == (len(logits), 384, 4) and h_utt.shape == (len(logits), 384)
    assert len(check_invertible(teacher)) == 46


def test_inversion_of_the_audioset_teacher_raises_its_target_classes(teacher, prepared_dataset):
    classes = vocabulary_classes(prepared_dataset)
    y = classes[:4]
    ic = apply_overrides(get_preset("audioset").inversion, ["steps=12"])
    x0 = torch.randn((4, 1, 128, 100), generator=torch.Generator().manual_seed(3))
    for method in ("adi", "frami"):
        x = invert_batch(teacher, y, (128, 100), ic, method, x0[:2], torch.Generator().manual_seed(3)).x
        with torch.no_grad():
            before, after = (torch.sigmoid(teacher(v))[torch.arange(4), y] for v in (x0, x))
        assert after.mean() > before.mean() + 0.1, (method, before, after)


def test_distill_tagger_from_efficientat_end_to_end(prepared_dataset, tmp_path, teacher, train_mels):
    from darkgan.cli import main
    from darkgan.frami.checkpoint import load_module, load_tensors
    from darkgan.frami.distill import predict
    from darkgan.frami.models import SoundClassifier
    from darkgan.utils.io import read_json

    base = ["distill-tagger", "--teacher", "efficientat", "--preset", "audioset", "--data", str(prepared_dataset),
            "--set", "data.per_class=0"]
    assert main(base + ["--method", "kd", "--set", "train.epochs=100", "--set", "train.batch_size=8",
                        "--out", str(tmp_path / "kd")]) == 0
    r = read_json(tmp_path / "kd" / "results.json")
    assert r["done"] and r["n_train"] == len(train_mels.x) and 0 <= r["agreement_vocab"] <= 1
    assert "mean rho over the vocabulary" in (tmp_path / "kd" / "results.md").read_text()
    # KD on the cached logits made the student follow the teacher on its training notes: before
    # (the run's initial weights, seed 0) vs after 300 steps. The loss itself hardly moves after the
    # biases (most of it is the soft targets' entropy); rho moves slowly (docs/frami.md).
    classes = vocabulary_classes(prepared_dataset)
    cfg = get_preset("audioset")
    student = load_module(SoundClassifier(cfg.student), tmp_path / "kd" / "student.safetensors")
    torch.manual_seed(0)
    before = SoundClassifier(cfg.student)
    out = {n: predict(m, train_mels.x) for n, m in (("kd", student), ("before", before))}
    rho = {n: agreement(v, train_mels.logits, classes)["mean_rho_vocab"] for n, v in out.items()}
    err = {n: float((v - train_mels.logits)[:, classes].square().mean()) for n, v in out.items()}
    print("training notes: mean rho", rho, "logit MSE", err)
    assert rho["kd"] > rho["before"] + 0.03 and err["kd"] < 0.2 * err["before"], (rho, err)

    assert main(base + ["--method", "frami", "--set", "inversion.n_samples=8", "--set", "inversion.batch_size=4",
                        "--set", "inversion.steps=3", "--set", "train.epochs=2", "--out", str(tmp_path / "frami")]) == 0
    mem = load_tensors(tmp_path / "frami" / "memory.safetensors")
    assert mem["x"].shape == (8, 1, 128, 100) and set(mem["y"].tolist()) <= set(classes.tolist())
    assert (tmp_path / "frami" / "synth.png").stat().st_size > 1000
    assert read_json(tmp_path / "frami" / "results.json")["n_synth"] == 8


def test_audioset_route_rejects_what_it_cannot_do(prepared_dataset, tmp_path):
    from darkgan.cli import main

    base = ["distill-tagger", "--preset", "audioset", "--data", str(prepared_dataset)]
    assert main(base + ["--teacher", "efficientat", "--method", "data", "--out", str(tmp_path / "a")]) == 2
    assert main(base + ["--teacher", "yamnet", "--method", "kd", "--out", str(tmp_path / "b")]) == 2
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
