"""Our "inception" classifier: a small CNN on MAG-IF predicting pitch, family and attributes.

The DarkGAN paper (Sec. 4.4.1) computes PIS, IIS and KID with an in-house classifier trained on
NSynth pitch and instrument plus AudioSet attributes. We train the same kind of model on the
dataset's own training split (``darkgan inception train --data DIR``):

- input: normalised MAG-IF ``[B, 2, 1024, 32]`` from the training cache
  (:class:`darkgan.data.cache.NoteCache`), average-pooled 2x in frequency -> ``[B, 2, 512, 32]``;
- trunk: 4 conv blocks (3x3 conv, batch norm, ReLU, 2x2 / 2x1 max-pool) 2 -> 16 -> 32 -> 64 ->
  64 channels, mean over time (frequency position kept: pitch needs it), a linear layer to a
  128-d **embedding** (ReLU), the penultimate layer that feeds KID;
- heads: pitch (softmax over the dataset's MIDI range, cross-entropy), instrument family
  (softmax over the 11 NSynth families, cross-entropy) and the K teacher attributes of the
  vocabulary (sigmoid, binary cross-entropy against the teacher's soft labels); the posteriors
  feed PIS / IIS.

Saved into ``DIR/inception/``: ``model.safetensors`` (weights) and ``model.json`` (architecture,
classes, attribute names, normaliser, data fingerprint, validation accuracies, training time).
:func:`load_or_train` reuses a saved model whose fingerprint matches the dataset.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from darkgan.errors import DarkGANError, DataError

#: NSynth instrument families, index order of ``instrument_family``.
FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string",
            "synth_lead", "vocal")
MODEL_VERSION = 1
EMBEDDING_DIM = 128


def _torch():
    import torch
    return torch


def build_net(n_pitches: int, n_families: int, n_attributes: int, width: int = 16, emb: int = EMBEDDING_DIM):
    """The classifier as a ``torch.nn.Module``: ``forward(x [B, 2, 1024, 32])`` -> dict with
    ``embedding [B, emb]``, ``pitch_logits [B, P]``, ``family_logits [B, F]``,
    ``attribute_logits [B, K]`` (K may be 0)."""
    torch = _torch()
    nn = torch.nn

    def block(cin, cout, pool):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(inplace=True), nn.MaxPool2d(pool))

    class InceptionNet(nn.Module):
        def __init__(self):
            super().__init__()
            w = width
            self.pool_in = nn.AvgPool2d((4, 1))
            self.trunk = nn.Sequential(block(2, w, (2, 2)), block(w, 2 * w, (2, 2)), block(2 * w, 4 * w, (2, 2)))
            # [B, 4w, 256/8 = 32, 32/8 = 4] -> mean over time -> [B, 4w * 32]
            self.embed = nn.Sequential(nn.Flatten(1), nn.Dropout(0.2), nn.Linear(4 * w * 32, emb), nn.ReLU())
            self.pitch = nn.Linear(emb, n_pitches)
            self.family = nn.Linear(emb, n_families)
            self.attributes = nn.Linear(emb, n_attributes) if n_attributes > 0 else None

        def forward(self, x):
            h = self.trunk(self.pool_in(x)).mean(dim=3)
            e = self.embed(h)
            out = {"embedding": e, "pitch_logits": self.pitch(e), "family_logits": self.family(e)}
            out["attribute_logits"] = (self.attributes(e) if self.attributes is not None
                                       else e.new_zeros((e.shape[0], 0)))
            return out

    return InceptionNet()


@dataclass
class InceptionOutputs:
    """Classifier outputs for n notes (numpy, float32).

    Attributes:
        embedding: ``[n, 128]`` penultimate features (KID).
        pitch_probs: ``[n, P]`` softmax over MIDI ``pitch_lo .. pitch_lo + P - 1`` (PIS).
        family_probs: ``[n, 11]`` softmax over :data:`FAMILIES` (IIS).
        attribute_probs: ``[n, K]`` sigmoid attribute predictions.
    """

    embedding: np.ndarray
    pitch_probs: np.ndarray
    family_probs: np.ndarray
    attribute_probs: np.ndarray

    @classmethod
    def concat(cls, parts: list["InceptionOutputs"]) -> "InceptionOutputs":
        """The outputs of consecutive chunks of notes, joined along n."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                     ("embedding", "pitch_probs", "family_probs", "attribute_probs")))

    def to_dict(self) -> dict:
        return {"embedding": self.embedding, "pitch_probs": self.pitch_probs, "family_probs": self.family_probs,
                "attribute_probs": self.attribute_probs}


class InceptionClassifier:
    """A trained classifier with its metadata; see the module docstring.

    Attributes:
        meta: the ``model.json`` dict (``pitch_lo``, ``n_pitches``, ``attributes``, ``normalizer``,
            ``fade_out``, ``valid`` accuracies, ``sha256`` of the weights ...).
        id: ``"inception-<first 12 hex of the weights sha256>"``.
    """

    def __init__(self, net, meta: dict, device: str = "cpu"):
        from darkgan.data.magif import Normalizer

        self.net = net.to(device).eval()
        self.meta = meta
        self.device = device
        self.normalizer = Normalizer.from_dict(meta["normalizer"])
        self.id = f"inception-{meta.get('sha256', 'untrained')[:12]}"

    @property
    def pitch_lo(self) -> int:
        return int(self.meta["pitch_lo"])

    def outputs_magif(self, magif_norm, batch_size: int = 256) -> InceptionOutputs:
        """Outputs for normalised MAG-IF ``[n, 2, 1024, 32]`` (torch or numpy)."""
        torch = _torch()
        x = torch.as_tensor(magif_norm, dtype=torch.float32)
        outs: dict[str, list] = {"embedding": [], "pitch": [], "family": [], "attr": []}
        with torch.inference_mode():
            for s in range(0, len(x), batch_size):
                o = self.net(x[s:s + batch_size].to(self.device))
                outs["embedding"].append(o["embedding"].float().cpu())
                outs["pitch"].append(torch.softmax(o["pitch_logits"].float(), 1).cpu())
                outs["family"].append(torch.softmax(o["family_logits"].float(), 1).cpu())
                outs["attr"].append(torch.sigmoid(o["attribute_logits"].float()).cpu())
        cat = {k: torch.cat(v).numpy().astype(np.float32) for k, v in outs.items()}
        return InceptionOutputs(cat["embedding"], cat["pitch"], cat["family"], cat["attr"])

    def outputs_wave(self, waves, batch_size: int = 256) -> InceptionOutputs:
        """Outputs for waveforms ``[n, 16000]`` at 16 kHz: MAG-IF, normalised with the training
        statistics, then the network. No fade is applied here: real notes rebuilt from the cache
        (:func:`darkgan.evaluation.data.real_waves`) already carry the cache's fade-out, and
        generators reproduce it."""
        torch = _torch()
        from darkgan.data.magif import wave_to_magif

        parts = []
        waves = np.asarray(waves, dtype=np.float32)
        for s in range(0, len(waves), batch_size):
            w = torch.from_numpy(waves[s:s + batch_size])
            with torch.inference_mode():
                parts.append(self.outputs_magif(self.normalizer.normalize(wave_to_magif(w)), batch_size))
        return InceptionOutputs.concat(parts)


# ----------------------------------------------------------------------------------- data
def _attribute_targets(data_dir: Path, cache) -> tuple[np.ndarray | None, list[str], str | None]:
    """Teacher soft labels ``[N, K]`` (sigmoid of the vocabulary logits, T = 1) aligned with the
    cache rows, the K attribute names and the teacher id; ``(None, [], None)`` without labels."""
    from darkgan.teacher.labels import load_vocabulary_labels, soft_labels

    try:
        vl = load_vocabulary_labels(data_dir, same_teacher=False)
    except DataError:
        return None, [], None
    logits, found = vl.join(cache.note_str.tolist())
    probs = np.full(logits.shape, np.nan, np.float32)
    probs[found] = soft_labels(logits[found]).astype(np.float32)
    return probs, vl.names, vl.teacher_id


def data_fingerprint(cache) -> dict:
    """What a saved model must match to be reused: note count, splits, pitch range, normaliser."""
    return {"n_notes": int(len(cache)), "n_train": int((cache.split == "train").sum()),
            "n_valid": int((cache.split == "valid").sum()), "pitch_range": list(cache.pitch_range),
            "normalizer": cache.normalizer.to_dict()}


def model_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "inception"


def _fit(net, cache, tr: np.ndarray, attrs, lo: int, epochs: int, batch_size: int, lr: float, device, rng,
         progress: bool) -> None:
    """Adam + one-cycle schedule over ``tr`` rows: pitch CE + family CE (+ attribute BCE on the
    labelled notes)."""
    torch = _torch()
    from tqdm import tqdm

    k = 0 if attrs is None else attrs.shape[1]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, int(np.ceil(len(tr) / batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    ce = torch.nn.CrossEntropyLoss()
    bar = tqdm(total=epochs * steps_per_epoch, desc="inception train", unit="batch", disable=not progress)
    for ep in range(epochs):
        net.train()
        perm = rng.permutation(tr)
        for s in range(0, len(perm), batch_size):
            rows = perm[s:s + batch_size]
            if len(rows) < 2:
                continue
            o = net(cache.load(rows).to(device))
            loss = (ce(o["pitch_logits"], torch.from_numpy(cache.pitch[rows] - lo).to(device))
                    + ce(o["family_logits"], torch.from_numpy(cache.instrument_family[rows]).to(device)))
            if k:
                t = torch.from_numpy(attrs[rows]).to(device)
                ok = ~torch.isnan(t[:, 0])
                if ok.any():
                    loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
                        o["attribute_logits"][ok], t[ok])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(epoch=ep + 1, loss=f"{loss.item():.3f}")
    bar.close()
    net.eval()


def _save(net, meta: dict, folder: Path) -> None:
    """``folder/model.safetensors`` + ``model.json`` (``meta`` gains the weights' sha256), atomically."""
    import hashlib

    from safetensors.torch import save as st_save

    from darkgan.utils.io import atomic_write, write_json

    folder.mkdir(parents=True, exist_ok=True)
    blob = st_save({k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()})
    meta["sha256"] = hashlib.sha256(blob).hexdigest()
    with atomic_write(folder / "model.safetensors") as f:
        f.write(blob)
    write_json(folder / "model.json", meta)


def train(data_dir: str | Path, epochs: int = 4, batch_size: int = 64, lr: float = 2e-3, seed: int = 0,
          device: str = "cpu", max_train: int | None = None, progress: bool = True, out: Path | None = None,
          log=print) -> InceptionClassifier:
    """Train the classifier on ``DIR``'s training cache and save it into ``DIR/inception/``.

    Args:
        data_dir: dataset folder with ``cache/`` (``darkgan data prepare``) and, for the
            attribute head, ``labels/<teacher>.npz`` + ``vocabulary.json``.
        epochs: passes over the training split (default 4: ~1-3 min per 1000 notes on 2 cores).
        max_train: use at most this many training notes (seeded subset).
        device: ``"cpu"``/``"cuda"``.

    Returns:
        The trained :class:`InceptionClassifier` (validation accuracies in ``meta["valid"]``).

    Raises:
        DataError: no cache, an empty training split.
    """
    torch = _torch()
    from darkgan.data.cache import NoteCache

    data_dir = Path(data_dir)
    cache = NoteCache(data_dir)
    t0 = time.time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tr, va = _train_valid_rows(cache, max_train, rng)
    lo, hi = cache.pitch_range
    n_f = max(len(FAMILIES), int(cache.instrument_family.max()) + 1)
    attrs, names, teacher_id = _attribute_targets(data_dir, cache)
    if attrs is not None and len(names):
        tr_missing = int(np.isnan(attrs[tr, 0]).sum())
        if tr_missing:
            log(f"inception: {tr_missing} training notes have no teacher labels; attribute loss skips them")
    net = build_net(hi - lo + 1, n_f, len(names)).to(device)
    _fit(net, cache, tr, attrs, lo, epochs, batch_size, lr, device, rng, progress)
    meta = {
        "version": MODEL_VERSION, "pitch_lo": lo, "n_pitches": hi - lo + 1, "families": list(FAMILIES[:n_f]) +
        [f"family_{i}" for i in range(len(FAMILIES), n_f)], "attributes": names, "teacher": teacher_id,
        "embedding_dim": EMBEDDING_DIM, "normalizer": cache.normalizer.to_dict(),
        "fade_out": bool(cache.stats.get("fade_out", True)), "fingerprint": data_fingerprint(cache),
        "train": {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed, "n_train": int(len(tr)),
                  "wall_s": None, "device": str(device)},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    clf = InceptionClassifier(net, meta, device)
    meta["valid"] = evaluate_accuracy(clf, cache, va, attrs, progress=progress) if len(va) else None
    meta["train"]["wall_s"] = round(time.time() - t0, 1)
    folder = Path(out) if out else model_dir(data_dir)
    _save(net, meta, folder)
    clf.id = f"inception-{meta['sha256'][:12]}"
    _log_validation(log, meta, folder)
    return clf


def _train_valid_rows(cache, max_train: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Training rows (a seeded subset of ``max_train`` when given) and validation rows (maybe none)."""
    tr = cache.rows("train")
    if max_train and len(tr) > max_train:
        tr = np.sort(rng.choice(tr, max_train, replace=False))
    try:
        va = cache.rows("valid")
    except DataError:
        va = np.zeros(0, np.int64)
    return tr, va


def _log_validation(log, meta: dict, folder: Path) -> None:
    v = meta["valid"]
    if v:
        log(f"inception: validation pitch accuracy {v['pitch_accuracy']:.3f}, family accuracy "
            f"{v['family_accuracy']:.3f}" + (f", attribute correlation {v['attribute_mean_corr']:.3f}"
                                               if v.get("attribute_mean_corr") is not None else "")
            + f" on {v['n']} notes; saved {folder} ({meta['train']['wall_s']:.0f} s)")


def evaluate_accuracy(clf: InceptionClassifier, cache, rows: np.ndarray, attrs: np.ndarray | None = None,
                      progress: bool = False) -> dict:
    """Pitch / family accuracy (and mean attribute correlation) of ``clf`` on cache ``rows``
    (``[n]`` sorted row indices; ``attrs``: ``[N, K]`` soft labels of every row, NaN = unlabelled)."""
    from darkgan.evaluation.metrics.correlation import pearson_columns

    from tqdm import tqdm

    chunk = 512  # notes read from the cache at a time: memory stays bounded, the bar moves
    out = InceptionOutputs.concat([clf.outputs_magif(cache.load(rows[s:s + chunk]))
                                   for s in tqdm(range(0, len(rows), chunk), desc="inception valid", unit="chunk",
                                                 disable=not progress)])
    pa = float(np.mean(out.pitch_probs.argmax(1) + clf.pitch_lo == cache.pitch[rows]))
    fa = float(np.mean(out.family_probs.argmax(1) == cache.instrument_family[rows]))
    res = {"n": int(len(rows)), "pitch_accuracy": pa, "family_accuracy": fa, "attribute_mean_corr": None}
    if attrs is not None and attrs.shape[1] and len(rows) > 2:
        t = attrs[rows]
        ok = ~np.isnan(t[:, 0])
        if ok.sum() > 2:
            rho = pearson_columns(out.attribute_probs[ok], t[ok])
            res["attribute_mean_corr"] = float(np.nanmean(rho)) if np.isfinite(rho).any() else None
    return res


def load(data_dir: str | Path | None = None, device: str = "cpu", folder: str | Path | None = None) -> InceptionClassifier:
    """Load ``DIR/inception/`` (or ``folder``).

    Raises:
        DarkGANError: missing or unreadable model (run ``darkgan inception train --data DIR``).
    """
    from safetensors.torch import load as st_load

    folder = Path(folder) if folder else model_dir(data_dir)
    if not (folder / "model.safetensors").is_file() or not (folder / "model.json").is_file():
        raise DarkGANError(f"{folder}: no inception classifier; run `darkgan inception train --data {data_dir or folder}`")
    meta = json.loads((folder / "model.json").read_text())
    if meta.get("version") != MODEL_VERSION:
        raise DarkGANError(f"{folder / 'model.json'}: version {meta.get('version')}, expected {MODEL_VERSION}; retrain")
    net = build_net(meta["n_pitches"], len(meta["families"]), len(meta["attributes"]), emb=meta["embedding_dim"])
    try:
        net.load_state_dict(st_load((folder / "model.safetensors").read_bytes()))
    except Exception as e:  # corrupt file or architecture mismatch
        raise DarkGANError(f"{folder / 'model.safetensors'}: cannot load ({str(e).splitlines()[0]}); retrain") from None
    return InceptionClassifier(net, meta, device)


def load_or_train(data_dir: str | Path, device: str = "cpu", epochs: int = 4, log=print, **kw) -> InceptionClassifier:
    """Reuse ``DIR/inception/`` when its fingerprint matches the cache, else train (and save)."""
    from darkgan.data.cache import NoteCache

    try:
        clf = load(data_dir, device)
        if clf.meta.get("fingerprint") == data_fingerprint(NoteCache(data_dir)):
            return clf
        log(f"inception: {model_dir(data_dir)} was trained on other data; retraining")
    except DarkGANError:
        pass
    return train(data_dir, epochs=epochs, device=device, log=log, **kw)
