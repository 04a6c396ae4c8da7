"""The real AudioSet teacher (EfficientAT mn04, 527 classes) as the teacher of a smaller tagger.

``darkgan distill-tagger --teacher efficientat --method kd|adi|frami`` (issue 19: "also try the
real AudioSet teacher ... measured by agreement with the teacher on held-out notes").

- **Inputs**: the teacher's own log-mel ``[B, 1, 128, 100]`` of the first second of each note,
  made by the teacher's own stages (:mod:`darkgan.teacher.base` peak normalisation to -1 dBFS,
  the 16 -> 32 kHz resampler and :class:`darkgan.teacher.efficientat.MelFrontend`), i.e. exactly
  the input behind the cached labels of ``darkgan label`` (tests check the logits agree). Data-free
  inversion optimises this log-mel directly; the student reads it too (``net.input_pool=2``).
- **Teacher** (:class:`AudioSetTeacher`): the mn04 network with its batch norm kept (not fused:
  ADI matches the 46 layers' running statistics); FRAMI's "pooling layer" is its global average
  pooling over frequency and time: ``h_frame`` (before) is the last 1x1 conv averaged over
  frequency ``[B, 384, T']``, ``h_utt`` (after) the 384-d clip embedding.
- **Data-driven KD** uses the cached logits of ``DIR/labels/efficientat-mn04.npz``
  (:func:`darkgan.teacher.labels.load_labels`), never recomputed. The KD loss is multi-label
  (:func:`darkgan.frami.distill.binary_kd_loss`).
- **Targets of inversion**: the dataset vocabulary's classes (``vocabulary.json``: class indices
  only, no notes), round-robin.
- **Measure** (:func:`agreement`), on the held-out (test split, instrument-disjoint) notes against
  the cached teacher logits: top-1 agreement over the 527 classes and over the vocabulary's
  classes, and the mean over the vocabulary's classes of the Pearson rho between student and
  teacher probabilities across notes (:func:`darkgan.evaluation.metrics.correlation.pearson_columns`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from darkgan.errors import DarkGANError, DataError

#: The AudioSet teacher this module supports (batch norm + a differentiable PyTorch front end).
SUPPORTED = "efficientat-mn04"


class AudioSetTeacher(nn.Module):
    """EfficientAT mn04 (frozen, eval mode, batch norm kept) with FRAMI's ``hidden`` interface.

    ``hidden(mel [B, 1, 128, T]) -> (logits [B, 527], h_frame [B, 384, T'], h_utt [B, 384])``
    (``T' = ceil(T / 32)``: 4 for 1 s); ``forward`` gives the logits, equal to the teacher's
    :meth:`darkgan.teacher.base.Teacher.logits` of the note the log-mel came from.

    Raises:
        DarkGANError: ``name`` is another tagger (PANNs has no shipped weights, YAMNet no
            gradients); WeightsError: the weights are missing.
    """

    def __init__(self, name: str = SUPPORTED):
        super().__init__()
        from darkgan.teacher import canonical_name, load_teacher

        key = canonical_name(name)
        if key != SUPPORTED:
            raise DarkGANError(f"--teacher {name}: only {SUPPORTED} can be distilled from (it needs batch-norm "
                               "statistics and a differentiable PyTorch front end); or give a train-tagger run folder")
        t = load_teacher(key, fuse=False)
        self.id, self.weights_sha256, self.class_names = t.id, t.weights_sha256, t.class_names
        self.net, self.frontend, self.resampler = t.model.net, t.model.frontend, t.model.resampler
        self.pool = self.net.classifier[0]
        self.n_classes, self.frame_dim, self.utt_dim = t.num_classes, self.net.embedding_dim, self.net.embedding_dim

    def hidden(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits [B, C], h_frame [B, 384, T'], h_utt [B, 384])`` of log-mel ``[B, 1, 128, T]``."""
        feats = self.net.features(mel)
        h_utt = self.pool(feats).flatten(1)
        return self.net.classifier[2:](h_utt), feats.mean(dim=2), h_utt

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.hidden(mel)[0]

    @torch.no_grad()
    def mels(self, wave: torch.Tensor) -> torch.Tensor:
        """The teacher's input ``[B, 1, 128, 100]`` of 1 s notes ``wave [B, 16000]`` at 16 kHz."""
        from darkgan.teacher.base import peak_normalize

        return self.frontend(self.resampler(peak_normalize(wave)))


@dataclass
class NoteMels:
    """Notes as the AudioSet teacher sees them: ``x [N, 1, 128, 100]`` log-mel, ``logits [N, 527]``
    (cached teacher labels), ``note_str [N]``."""

    x: torch.Tensor
    logits: torch.Tensor
    note_str: np.ndarray


def load_note_mels(data: str | Path, split: str, per_class: int, seed: int, teacher: AudioSetTeacher,
                   by: str = "instrument") -> NoteMels:
    """The notes of ``split`` (divided ``by`` instrument or note, at most ``per_class`` per
    instrument family, drawn with ``seed``: the same notes as the family task's
    :func:`darkgan.frami.features.load_mel_split`) with their
    teacher log-mel and their cached teacher logits. ``by``: ``data.split``
    (:func:`darkgan.frami.features.split_rows`).

    Raises:
        DataError: no cache or labels, labels made with other weights, a note without a label.
    """
    from darkgan.data.cache import NoteCache
    from darkgan.data.nsynth import NoteDataset
    from darkgan.frami.features import pick_rows
    from darkgan.teacher.labels import CROP, load_labels, load_note_crop

    cache = NoteCache(data)
    names = cache.note_str[pick_rows(cache, split, per_class, seed, by)]
    labels = load_labels(data, teacher.id)
    if labels.meta.get("weights_sha256") not in (None, teacher.weights_sha256):
        raise DataError(f"{data}/labels/{teacher.id}.npz: made with other weights than {teacher.weights_sha256[:12]}; "
                        f"rerun `darkgan label {data} --force`")
    logits = torch.from_numpy(labels.logits[labels.rows(names)])
    ds = NoteDataset(data, crop=CROP)
    where = {r["note_str"]: i for i, r in enumerate(ds.records)}
    x = []
    for s in range(0, len(names), 64):
        wave = np.stack([load_note_crop(ds, where[n], n) for n in names[s:s + 64]])
        x.append(teacher.mels(torch.from_numpy(wave)))
    return NoteMels(torch.cat(x), logits, names)


def vocabulary_classes(data: str | Path) -> torch.Tensor:
    """``[K]`` int64 teacher class indices of the dataset's vocabulary (``vocabulary.json``)."""
    from darkgan.teacher.vocabulary import load_vocabulary

    idx = list(load_vocabulary(data).indices)
    if not idx:
        raise DataError(f"{data}/vocabulary.json: no attributes")
    return torch.tensor(idx, dtype=torch.long)


def agreement(s_logits: torch.Tensor, t_logits: torch.Tensor, classes: torch.Tensor) -> dict:
    """How well a student ``[N, C]`` agrees with the teacher ``[N, C]`` on the same notes.

    Returns ``agreement`` (top-1 over all C classes), ``agreement_vocab`` (top-1 among
    ``classes``), ``mean_rho_vocab`` (mean over ``classes`` of the Pearson correlation across
    notes of ``sigmoid`` probabilities; constant columns are left out) and
    ``agreement_constant`` / ``agreement_vocab_constant`` (the top-1 agreement of always answering
    the teacher's most frequent top-1 class on these notes: the floor a useless student reaches).
    """
    from darkgan.evaluation.metrics.correlation import pearson_columns

    t_top, t_top_vocab = t_logits.argmax(1), t_logits[:, classes].argmax(1)
    rho = pearson_columns(torch.sigmoid(s_logits[:, classes]).numpy(), torch.sigmoid(t_logits[:, classes]).numpy())
    return {"agreement": float((s_logits.argmax(1) == t_top).float().mean()),
            "agreement_vocab": float((s_logits[:, classes].argmax(1) == t_top_vocab).float().mean()),
            "mean_rho_vocab": float(np.nanmean(rho)) if np.isfinite(rho).any() else float("nan"),
            "agreement_constant": float(torch.bincount(t_top).max()) / len(t_top),
            "agreement_vocab_constant": float(torch.bincount(t_top_vocab).max()) / len(t_top)}


def labelling_speed(student: nn.Module, x: torch.Tensor) -> dict:
    """Notes per CPU second (this thread) from the teacher's log-mel ``x``: the student, the
    fused teacher (as ``darkgan label`` runs it), and the shared front end (1 s notes)."""
    from darkgan.frami.distill import predict
    from darkgan.teacher import load_teacher

    fused = load_teacher(SUPPORTED)
    out = {}
    for name, fn in (("student", lambda v: predict(student, v)), ("teacher", lambda v: fused.model.net(v))):
        with torch.no_grad():
            t0 = time.process_time()
            fn(x)
            out[f"{name}_notes_per_s"] = len(x) / max(time.process_time() - t0, 1e-9)
    wave = torch.randn(len(x), 16000, generator=torch.Generator().manual_seed(0)) * 0.1
    t0 = time.process_time()
    with torch.no_grad():
        fused.model.frontend(fused.model.resampler(wave))
    out["frontend_notes_per_s"] = len(x) / max(time.process_time() - t0, 1e-9)
    return out


def distill_from_audioset(name: str, data: str | Path, out: str | Path, method: str, cfg, resume: bool = False) -> dict:
    """``darkgan distill-tagger --teacher efficientat``: a student of the AudioSet teacher.

    ``kd``: KD on the train split's notes with their cached teacher logits; ``adi`` / ``frami``:
    KD on log-mels inverted from the teacher (vocabulary classes as targets), ``frami`` with
    hidden-state reuse. ``cfg.student.n_classes`` is set to 527. Writes ``OUT/config.json``,
    ``student.safetensors``, ``results.json`` / ``results.md`` (:func:`agreement` on the test
    split's notes, labelling speed) and for ``adi``/``frami`` ``memory.safetensors`` + ``synth.png``;
    resumes like :func:`darkgan.frami.run.distill_tagger`.

    Raises:
        DarkGANError: ``method`` ``data`` (no ground truth for the teacher's 527 classes), another
            tagger than mn04, ``OUT`` already holds a run without ``resume``; DataError: see
            :func:`load_note_mels`.
    """
    from darkgan.frami import checkpoint as ck
    from darkgan.frami.models import SoundClassifier, check_invertible
    from darkgan.frami.run import _check_out, fit_data_free
    from darkgan.utils.io import folder_lock

    if method == "data":
        raise DarkGANError("--method data needs ground truth for the teacher's classes; with an AudioSet teacher "
                           "use kd, adi or frami")
    teacher = AudioSetTeacher(name)
    if method in ("adi", "frami"):
        check_invertible(teacher, need_pooling=method == "frami")
    classes, out = vocabulary_classes(data), Path(out)
    cfg.student.n_classes = teacher.n_classes
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        _check_out(out, resume)
        ck.write_run_config(out, cfg, role="student", method=method, teacher=teacher.id, data=str(data),
                            teacher_sha256=teacher.weights_sha256, input="EfficientAT log-mel [B, 1, 128, 100] of 1 s")
        torch.manual_seed(cfg.seed)
        student, t0 = SoundClassifier(cfg.student), time.process_time()
        if method == "kd":
            facts, res = _fit_kd(teacher, student, out, cfg, data, resume)
        else:
            facts, res = fit_data_free(teacher, student, out, cfg, method, (128, 100), resume, classes,
                                       teacher.class_names, multilabel=True)
        results = {"method": method, "teacher": teacher.id, "done": res.done, "epochs": res.epochs,
                   "train_cpu_s": time.process_time() - t0, "history": res.history, **facts}
        if res.done:
            results.update(_evaluate(teacher, student, data, cfg, classes))
        return _save_results(out, results)


def _fit_kd(teacher, student, out, cfg, data, resume):
    """Data-driven KD on the train split's notes with their cached teacher logits: ``(facts, FitResult)``."""
    from darkgan.frami.distill import kd_step
    from darkgan.frami.run import fit

    train = load_note_mels(data, "train", cfg.data.per_class, cfg.data.seed, teacher, cfg.data.split)
    step = lambda i, g: kd_step(student, None, train.x[i], cfg.train, t_logits=train.logits[i], multilabel=True)
    return {"n_train": len(train.x)}, fit(out, "student", student, [], len(train.x), step, cfg, resume)


def _evaluate(teacher, student, data, cfg, classes) -> dict:
    from darkgan.frami.distill import predict
    from darkgan.frami.models import n_params

    test = load_note_mels(data, "test", cfg.data.per_class, cfg.data.seed, teacher, cfg.data.split)
    res = agreement(predict(student, test.x), test.logits, classes)
    res.update(labelling_speed(student, test.x))
    return {**res, "n_test": len(test.x), "student_params": n_params(student),
            "teacher_params": sum(p.numel() for p in teacher.net.parameters())}


def _save_results(out: Path, results: dict) -> dict:
    from darkgan.frami.run import _write_tables
    from darkgan.utils.io import write_json

    write_json(out / "results.json", results)
    if results["done"]:
        _write_tables(out, results)
    return results
