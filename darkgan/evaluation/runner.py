"""``darkgan evaluate``: generate, embed, score, cache, report.

Flow (one call of :func:`evaluate`):

1. **Inputs.** The dataset's training cache (:class:`darkgan.data.cache.NoteCache`), its teacher
   labels and vocabulary (:func:`darkgan.evaluation.data.load_attribute_table`), the inception
   classifier (:mod:`darkgan.evaluation.inception`, trained on first use), the teacher and YAMNet
   (:func:`darkgan.teacher.load_teacher`), and one or more generators
   (:class:`darkgan.generation.api.DarkGAN`). Generators in one report must share pitch range and
   (when they take attributes) vocabulary, or :class:`DarkGANError`.
2. **Sets of notes.** Reference: a random subset *A* of the training split. Reference rows of the
   tables: a disjoint training subset *B* ("real train") and the validation split ("real valid").
   Per generator: ``n`` notes conditioned on (pitch, attribute vector) of validation notes drawn
   with replacement, noise ``z ~ N(0, I)`` from ``seed`` (paper Sec. 4.4). Out-of-distribution
   and increment sets re-use the first rows of that main set (same z, pitch, alpha) with one
   attribute incremented.
3. **Features** of every set: teacher logits + embedding, YAMNet logits + embedding, inception
   posteriors + embedding, f0 (pitch accuracy). Cached under ``REPORT_DIR/cache/`` keyed by a
   hash of the generator weights and the exact inputs, so a rerun (another metric, a crash) does
   not regenerate; generated waveforms of the main sets are cached too (float16 ``.npy``).
4. **Metrics** (:mod:`darkgan.evaluation.metrics`): Table 1 (PIS, IIS, KID x1e-4, FAD and
   FAD-inf on the teacher and YAMNet embeddings, pitch accuracy), Table 2 (rho_i, teacher and
   YAMNet), Figure 2 (out-of-distribution mean rho), Figure 3 (increment consistency).
   A metric that cannot be computed (too few samples, missing model) is recorded under
   ``missing`` with the reason; everything else is still reported.
5. **Report**: ``metrics.json``, ``report.md``, ``report.html`` + PNG plots + example WAVs
   (:mod:`darkgan.evaluation.report`).

Protocols (:data:`PROTOCOLS`): ``paper`` = the paper's sizes (10k notes, 51 increments x 1k notes
for every attribute with rho > 0, 26 increments x 100 notes for the 50 best attributes) -- a GPU
job; ``cpu`` = sizes that finish in tens of minutes on 2 cores; ``auto`` = ``paper`` when CUDA is
available, else ``cpu``. The chosen sizes are written into the report.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from darkgan.errors import DarkGANError, DataError

SAMPLE_RATE = 16000
N_SAMPLES = 16000


@dataclass(frozen=True)
class Protocol:
    """Sample sizes of one evaluation (every field lands in ``metrics.json``).

    n: generations per model for Table 1 and rho_i (paper 10 000).
    n_real: cap on real notes per reference set (A, B, valid).
    kid_subset / kid_subsets: KID subset size and count (1000 / 100 as tf-gan; at most half the
        smaller set: :func:`kid_subset_size`).
    fad_inf_steps: subset sizes in the FAD-inf fit.
    ood_levels: increments delta_l used (51 = l = 0..50 of the paper).
    ood_n: notes per (attribute, increment) (paper 1000).
    ood_attributes: at most this many attributes with rho_i > 0 (None = all, as the paper).
    ic_steps: increments delta_k = k/5 used (26 = k = 0..25).
    ic_n: notes per (attribute, increment) (paper 100).
    ic_attributes: best-correlated attributes used (paper 50).
    pitch_n: notes per set whose f0 is tracked (pYIN is slow on CPU).
    example_attributes: attributes with audio examples in the report, per model.
    """

    name: str
    n: int
    n_real: int
    kid_subset: int = 1000
    kid_subsets: int = 100
    fad_inf_steps: int = 10
    ood_levels: int = 51
    ood_n: int = 1000
    ood_attributes: int | None = None
    ic_steps: int = 26
    ic_n: int = 100
    ic_attributes: int = 50
    pitch_n: int = 1000
    example_attributes: int = 8


PROTOCOLS = {
    "paper": Protocol("paper", n=10_000, n_real=10_000),
    "cpu": Protocol("cpu", n=1200, n_real=1200, kid_subset=500, kid_subsets=50, fad_inf_steps=6, ood_levels=6,
                    ood_n=64, ood_attributes=8, ic_steps=6, ic_n=32, ic_attributes=8, pitch_n=200,
                    example_attributes=6),
}


def kid_subset_size(target: int, n_fake: int, n_real: int) -> int:
    """KID subset size: the protocol's ``target``, at most half the smaller set, so the subsets
    differ and their standard deviation means something (at the whole set every subset is the
    same and the spread is 0)."""
    return max(2, min(int(target), min(n_fake, n_real) // 2))


def resolve_protocol(name: str = "auto", n: int | None = None, **overrides) -> Protocol:
    """The named protocol (``auto``: ``paper`` with CUDA, else ``cpu``), with ``n`` and any field
    overridden. Raises DarkGANError for an unknown name or n < 2."""
    if name == "auto":
        import torch

        name = "paper" if torch.cuda.is_available() else "cpu"
    if name not in PROTOCOLS:
        raise DarkGANError(f"unknown protocol {name!r}; choose from auto, {', '.join(PROTOCOLS)}")
    p = PROTOCOLS[name]
    if n is not None:
        if n < 2:
            raise DarkGANError(f"--n {n}: need at least 2 notes per set")
        p = replace(p, n=int(n), n_real=max(int(n), 2) if name == "cpu" else p.n_real)
    return replace(p, **{k: v for k, v in overrides.items() if v is not None})


# ------------------------------------------------------------------------------ models
class EvalModel:
    """What the runner needs from a generator (see :class:`DarkGANModel`).

    Attributes: ``name``, ``key`` (fingerprint of the weights), ``attributes`` (K names, [] for
    the baseline), ``class_indices`` ([K] teacher columns), ``temperature``, ``pitch_range``,
    ``latent_dim``, ``teacher_id``, ``info`` (dict for the report).
    """

    name: str
    key: str
    attributes: list[str]
    class_indices: list[int]
    temperature: float
    pitch_range: tuple[int, int]
    latent_dim: int
    teacher_id: str | None
    info: dict

    @property
    def has_attributes(self) -> bool:
        return bool(self.attributes)

    def generate(self, z: np.ndarray, pitch: np.ndarray, attributes: np.ndarray | None) -> np.ndarray:
        """``z [n, Z]``, MIDI ``pitch [n]``, ``attributes [n, K]`` -> waves ``[n, 16000]`` float32."""
        raise NotImplementedError


class DarkGANModel(EvalModel):
    """Adapter over :class:`darkgan.generation.api.DarkGAN` (its ``generate_batch``)."""

    def __init__(self, path: str | Path | None, device: str = "cpu", name: str | None = None,
                 batch_size: int | None = None):
        from darkgan.generation.api import DarkGAN
        from darkgan.utils.io import sha256_file

        self.g = DarkGAN.load(path, device=device)
        cfg = self.g.config
        self.path = Path(cfg.path) if cfg.path else None
        # the folder the user named (a run folder, not its checkpoint-NNN sub-folder)
        self.name = name or (Path(path).resolve().name if path is not None else
                             (self.path.name if self.path else "shipped"))
        files = sorted(self.path.glob("generator*.safetensors")) if self.path else []
        h = hashlib.sha256()
        for f in files:
            h.update(sha256_file(f).encode())
        h.update(json.dumps([cfg.scale, cfg.alpha, cfg.generator_weights, list(cfg.pitch_range)]).encode())
        self.key = h.hexdigest()[:16]
        self.attributes = list(self.g.attributes)
        self.class_indices = [int(i) for i in cfg.class_indices] if self.attributes else []
        self.temperature = float(cfg.temperature)
        self.pitch_range = tuple(int(v) for v in cfg.pitch_range)
        self.latent_dim = int(self.g.latent_dim)
        self.teacher_id = str(cfg.teacher.get("id", "")) or None
        self.batch_size = batch_size
        self.info = {"name": self.name, "path": str(self.path), "key": self.key,
                     "preset": getattr(cfg.config, "preset", None), "temperature": self.temperature,
                     "attributes": len(self.attributes), "pitch_range": list(self.pitch_range),
                     "step": cfg.step, "scale": cfg.scale, "weights": cfg.generator_weights,
                     "teacher": dict(cfg.teacher)}

    def generate(self, z, pitch, attributes):
        w = self.g.generate_batch(z, pitch, attributes if self.has_attributes else None,
                                  batch_size=self.batch_size)
        return w.numpy().astype(np.float32)


def check_compatible(models: list[EvalModel]) -> None:
    """All generators of one report share the pitch range, and those with attributes share the
    vocabulary (names, order and teacher).

    Raises:
        DarkGANError: naming the two checkpoints and what differs.
    """
    if not models:
        raise DarkGANError("no checkpoints to evaluate")
    ref = models[0]
    for m in models[1:]:
        if m.pitch_range != ref.pitch_range:
            raise DarkGANError(f"checkpoints {ref.name} and {m.name} have different pitch ranges "
                               f"{ref.pitch_range} vs {m.pitch_range}; evaluate them in separate reports")
    att = [m for m in models if m.has_attributes]
    for m in att[1:]:
        if m.attributes != att[0].attributes or m.teacher_id != att[0].teacher_id:
            diff = sorted(set(m.attributes) ^ set(att[0].attributes))[:3]
            raise DarkGANError(f"checkpoints {att[0].name} and {m.name} have different attribute vocabularies "
                               f"({len(att[0].attributes)} vs {len(m.attributes)} attributes"
                               + (f", e.g. {diff}" if diff else ", same names in another order or teacher") +
                               "); evaluate them in separate reports")


# ------------------------------------------------------------------------------ caching
def _hash(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, np.ndarray):
            h.update(str(p.dtype).encode() + str(p.shape).encode())
            h.update(np.ascontiguousarray(p).tobytes())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"|")
    return h.hexdigest()[:20]


class FeatureCache:
    """``REPORT_DIR/cache/``: ``waves/<key>.npy`` (float16) and ``feat/<key>.<featurizer>.npz``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.hits = 0
        self.misses = 0

    def _path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / f"{key}{suffix}"

    def get_features(self, key: str, featurizer: str) -> dict | None:
        p = self._path("feat", key, f".{featurizer}.npz")
        if not p.is_file():
            return None
        try:
            with np.load(p, allow_pickle=False) as z:
                out = {k: z[k] for k in z.files}
            self.hits += 1
            return out
        except (OSError, ValueError):
            return None

    def put_features(self, key: str, featurizer: str, arrays: dict) -> None:
        from darkgan.utils.io import save_npz

        self.misses += 1
        save_npz(self._path("feat", key, f".{featurizer}.npz"), **arrays)

    def get_waves(self, key: str) -> np.ndarray | None:
        p = self._path("waves", key, ".npy")
        if p.is_file():
            try:
                return np.load(p).astype(np.float32)
            except (OSError, ValueError):
                return None
        return None

    def put_waves(self, key: str, waves: np.ndarray) -> None:
        from darkgan.utils.io import atomic_write

        with atomic_write(self._path("waves", key, ".npy")) as f:
            np.save(f, np.asarray(waves, dtype=np.float16))


# ------------------------------------------------------------------------------ featurizers
class Featurizers:
    """Teacher, YAMNet, inception classifier and pitch tracker, loaded lazily, with ids."""

    def __init__(self, data_dir: Path, teacher_id: str, device: str, log: Callable = print,
                 inception_epochs: int = 4):
        self.data_dir = data_dir
        self.teacher_id = teacher_id
        self.device = device
        self.log = log
        self.inception_epochs = inception_epochs
        self._teacher = self._yamnet = self._inception = None
        self.errors: dict[str, str] = {}

    @property
    def teacher(self):
        if self._teacher is None:
            from darkgan.teacher import load_teacher

            self._teacher = load_teacher(self.teacher_id, device=self.device)
        return self._teacher

    @property
    def yamnet(self):
        if self._yamnet is None:
            from darkgan.teacher import load_teacher

            self._yamnet = load_teacher("yamnet", device="cpu")
        return self._yamnet

    @property
    def inception(self):
        if self._inception is None:
            from darkgan.evaluation.inception import load_or_train

            self._inception = load_or_train(self.data_dir, device=self.device, epochs=self.inception_epochs,
                                            log=self.log)
        return self._inception

    def model_ids(self) -> dict:
        """Ids and checksums of the models that produced the features (for metrics.json)."""
        out = {}
        for name, attr in (("teacher", "_teacher"), ("yamnet", "_yamnet")):
            t = getattr(self, attr)
            if t is not None:
                out[name] = {"id": t.id, "weights_sha256": t.weights_sha256, "embedding_dim": t.embedding_dim,
                             "classes": t.num_classes}
        if self._inception is not None:
            m = self._inception.meta
            out["inception"] = {"id": self._inception.id, "weights_sha256": m.get("sha256"),
                                "embedding_dim": m.get("embedding_dim"), "valid": m.get("valid"),
                                "train": m.get("train")}
        return out

    def compute(self, name: str, waves: np.ndarray) -> dict:
        """Features ``name`` (teacher / yamnet / inception / f0) of ``waves [n, 16000]``."""
        if name in ("teacher", "yamnet"):
            t = self.teacher if name == "teacher" else self.yamnet
            lg, emb = t.logits_and_embedding(waves)
            return {"logits": lg.float().cpu().numpy(), "embedding": emb.float().cpu().numpy()}
        if name == "inception":
            return self.inception.outputs_wave(waves).to_dict()
        if name == "f0":
            from darkgan.evaluation.metrics.pitch_accuracy import estimate_f0

            return {"f0": estimate_f0(waves)}
        raise ValueError(name)


# ------------------------------------------------------------------------------ main
@dataclass
class NoteSet:
    """A set of notes: real cache rows, or generations of one model from explicit inputs."""

    name: str
    key: str
    pitch: np.ndarray
    make_waves: Callable[[], np.ndarray]
    keep_waves: bool = False
    meta: dict = field(default_factory=dict)


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-").lower()[:40] or "x"


def yamnet_mapping(names: list[str], mids: list[str], yam_names: list[str], yam_mids: list[str]) -> np.ndarray:
    """For each of the K attributes, the YAMNet class index with the same AudioSet mid (else the
    same display name, case-insensitive), or -1 -> ``[K]`` int64."""
    by_mid = {m: i for i, m in enumerate(yam_mids)}
    by_name = {n.lower().strip(): i for i, n in enumerate(yam_names)}
    return np.array([by_mid.get(m, by_name.get(n.lower().strip(), -1)) for n, m in zip(names, mids)], dtype=np.int64)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def evaluate(checkpoints: list | None, data_dir: str | Path, out_dir: str | Path, n: int | None = None,
             protocol: str = "auto", device: str | None = None, seed: int = 0, names: list[str] | None = None,
             models: list[EvalModel] | None = None, dry_run: bool = False, progress: bool = True,
             log: Callable = print, skip: tuple[str, ...] = (), inception_epochs: int = 4,
             protocol_overrides: dict | None = None) -> dict:
    """Evaluate generators against ``data_dir``; write ``out_dir/{metrics.json, report.md,
    report.html}`` and return the metrics dict.

    Args:
        checkpoints: checkpoint folders (``None`` entries / empty list: the shipped checkpoint).
        data_dir: dataset folder with ``cache/``, ``labels/<teacher>.npz``, ``vocabulary.json``.
        out_dir: report folder (created; ``cache/`` inside holds generations and features).
        n: generations per model (overrides the protocol's n).
        protocol: ``auto`` | ``cpu`` | ``paper`` (:data:`PROTOCOLS`).
        device: ``cpu``/``cuda``; default CUDA when available.
        seed: seeds every draw (rows, z, subsets); recorded.
        names: display names of the checkpoints (default: folder names).
        models: ready :class:`EvalModel` objects instead of checkpoints (tests, sweeps).
        dry_run: print the plan and the cost estimate, write nothing else.
        skip: metric groups to leave out: ``"yamnet"``, ``"ood"``, ``"increment"``, ``"pitch"``,
            ``"examples"``.
        protocol_overrides: :class:`Protocol` fields to override (e.g. ``{"ood_n": 16}``).

    Raises:
        DarkGANError: incompatible checkpoints, a dataset without cache / labels / vocabulary /
            validation notes, too few notes for the requested sizes.
    """
    import torch
    from tqdm import tqdm

    from darkgan.data.cache import NoteCache
    from darkgan.evaluation import metrics as M
    from darkgan.evaluation.data import load_attribute_table, real_waves
    from darkgan.evaluation.metrics import correlation as C
    from darkgan.utils.io import write_json

    t_start = time.time()
    data_dir = Path(data_dir)
    out_dir = Path(out_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    proto = resolve_protocol(protocol, n, **(protocol_overrides or {}))
    rng = np.random.default_rng(seed)

    # ---- dataset
    cache = NoteCache(data_dir)
    table = load_attribute_table(data_dir)
    try:
        valid_rows = cache.rows("valid")
    except DataError:
        raise DataError(f"{data_dir}: no validation split; the evaluation conditions on validation notes") from None
    train_rows = cache.rows("train")
    # ---- models
    if models is None:
        cps = list(checkpoints) if checkpoints else [None]
        models = [DarkGANModel(p, device=device, name=(names[i] if names and i < len(names) else None))
                  for i, p in enumerate(cps)]
    check_compatible(models)
    seen = {}
    for m in models:  # unique display names
        if m.name in seen:
            seen[m.name] += 1
            m.name = f"{m.name}-{seen[m.name]}"
        else:
            seen[m.name] = 1
    att_models = [m for m in models if m.has_attributes]
    teacher_id = att_models[0].teacher_id if att_models and att_models[0].teacher_id else table.teacher_id
    if att_models and teacher_id != table.teacher_id:
        table = load_attribute_table(data_dir, teacher_id)
    lo, hi = models[0].pitch_range
    # full teacher logits of the labelled notes, to build each model's conditioning (its columns, its T)
    from darkgan.teacher.labels import load_labels

    labels = load_labels(data_dir, teacher_id)
    label_row = {s: i for i, s in enumerate(np.asarray(labels.note_str).tolist())}
    vr = np.array([r for r in valid_rows if lo <= cache.pitch[r] <= hi and cache.note_str[r] in label_row], np.int64)
    if len(vr) < 2:
        raise DataError(f"{data_dir}: {len(vr)} labelled validation notes within MIDI {lo}..{hi}; need at least 2")
    vocab_names = list(att_models[0].attributes) if att_models else list(table.names)
    mids_by_name = dict(zip(table.names, table.mids))
    try:
        from darkgan.teacher.classes import audioset_classes

        as_names, as_mids = audioset_classes()
        mids_by_name.update({nm: md for nm, md in zip(as_names, as_mids) if nm not in mids_by_name})
    except Exception:  # noqa: BLE001 - optional: mids for YAMNet matching
        pass
    vocab_mids = [mids_by_name.get(nm, "") for nm in vocab_names]
    class_idx = np.asarray(att_models[0].class_indices if att_models else table.class_index, dtype=np.int64)
    K = len(vocab_names)

    # ---- sample plan
    tr_pool = rng.permutation(train_rows)
    n_ref = min(proto.n_real, len(tr_pool) // 2 if len(tr_pool) >= 4 else len(tr_pool))
    ref_rows = np.sort(tr_pool[:n_ref])
    trb_rows = np.sort(tr_pool[n_ref:2 * n_ref])
    va_rows = np.sort(rng.permutation(valid_rows)[:proto.n_real])
    cond_rows = vr[rng.integers(0, len(vr), size=proto.n)]  # validation conditioning, with replacement
    cond_pitch = cache.pitch[cond_rows].astype(np.int64)
    cond_logits = np.asarray(labels.logits)[[label_row[s] for s in cache.note_str[cond_rows].tolist()]]
    z_dims = {m.latent_dim for m in models}
    z_all = {d: np.random.default_rng([seed, d]).standard_normal((proto.n, d)).astype(np.float32) for d in z_dims}

    n_ood_att = 0 if "ood" in skip else min(K, proto.ood_attributes or K)
    ood_ls = C.ood_levels(proto.ood_levels)
    ic_ks = C.increment_steps(proto.ic_steps)
    n_ic_att = 0 if "increment" in skip else min(K, proto.ic_attributes)
    ood_n, ic_n = min(proto.ood_n, proto.n), min(proto.ic_n, proto.n)
    gens_main = proto.n * len(models)
    gens_ood = len(att_models) * n_ood_att * len(ood_ls) * ood_n
    gens_ic = len(att_models) * n_ic_att * (len([k for k in ic_ks if k > 0])) * ic_n
    total_gens = gens_main + gens_ood + gens_ic
    # ---- cost estimate (one short timed batch per model)
    rates = {}
    for m in models:
        b = min(8, proto.n)
        t0 = time.time()
        m.generate(z_all[m.latent_dim][:b], cond_pitch[:b],
                   _sigmoid(cond_logits[:b][:, class_idx] / m.temperature).astype(np.float32) if m.has_attributes else None)
        rates[m.name] = b / max(time.time() - t0, 1e-6)
    est = sum((proto.n + (n_ood_att * len(ood_ls) * ood_n + n_ic_att * len(ic_ks) * ic_n if m.has_attributes else 0))
              / rates[m.name] for m in models)
    real_notes = len(ref_rows) + len(trb_rows) + len(va_rows)
    est_feat = (total_gens + real_notes) / 60.0 * (1 if device == "cpu" else 0.1)  # ~60 notes/s teacher+YAMNet+inception
    est_pitch = (proto.pitch_n * (len(models) + 2)) * 0.05 if "pitch" not in skip else 0
    plan = (f"evaluate: protocol {proto.name}, device {device}, {len(models)} model(s), n={proto.n} per model, "
            f"real sets {len(ref_rows)}/{len(trb_rows)}/{len(va_rows)} (reference/train/valid), "
            f"{total_gens} generations ({gens_main} main, {gens_ood} out-of-distribution, {gens_ic} increment); "
            f"estimated {_fmt_s(est + est_feat + est_pitch)} on this machine "
            f"(generation {', '.join(f'{k} {v:.1f} notes/s' for k, v in rates.items())}; cached results are reused)")
    log(plan)
    if dry_run:
        return {"plan": plan, "protocol": asdict(proto)}

    out_dir.mkdir(parents=True, exist_ok=True)
    fc = FeatureCache(out_dir / "cache")
    feats = Featurizers(data_dir, teacher_id, device, log, inception_epochs)
    missing: list[dict] = []
    results: dict = {"rows": {}, "correlation": {}, "ood": {}, "increment": {}, "examples": {}}
    cache_key = _hash(data_dir.resolve().as_posix(), int(len(cache)), cache.normalizer.to_dict())

    def features(ns: NoteSet, which: tuple[str, ...]) -> dict:
        """Features of a NoteSet (cache first); returns {featurizer: arrays}."""
        out, todo = {}, []
        for f in which:
            got = fc.get_features(ns.key, f)
            if got is not None:
                out[f] = got
            else:
                todo.append(f)
        if todo:
            waves = fc.get_waves(ns.key) if ns.keep_waves else None
            if waves is None:
                waves = ns.make_waves()
                if ns.keep_waves:
                    fc.put_waves(ns.key, waves)
            for f in todo:
                try:
                    arr = feats.compute(f, waves if f != "f0" else waves[:proto.pitch_n])
                except DarkGANError as e:
                    feats.errors[f] = str(e)
                    missing.append({"what": f"{f} features", "set": ns.name, "reason": str(e)})
                    continue
                fc.put_features(ns.key, f, arr)
                out[f] = arr
        return out

    def gen_set(m: EvalModel, tag: str, rows: slice, alpha: np.ndarray | None, keep: bool) -> NoteSet:
        z = z_all[m.latent_dim][rows]
        p = cond_pitch[rows]
        key = _hash("gen", m.key, z, p, alpha if alpha is not None else 0)

        def make():
            outs = []
            bs = 256
            for s in range(0, len(p), bs):
                outs.append(m.generate(z[s:s + bs], p[s:s + bs], None if alpha is None else alpha[s:s + bs]))
            return np.concatenate(outs)

        return NoteSet(f"{m.name}:{tag}", key, p, make, keep)

    def real_set(name: str, rows: np.ndarray) -> NoteSet:
        return NoteSet(name, _hash("real", cache_key, rows), cache.pitch[rows], lambda: real_waves(cache, rows),
                       False, {"rows": int(len(rows))})

    main_feats = ("teacher", "inception") + (() if "yamnet" in skip else ("yamnet",)) + \
        (() if "pitch" in skip else ("f0",))
    bar = tqdm(total=3 + len(models), desc="main sets", unit="set", disable=not progress)
    F: dict[str, dict] = {}
    sets: dict[str, NoteSet] = {}
    for name, rows in (("reference", ref_rows), ("real train", trb_rows), ("real valid", va_rows)):
        sets[name] = real_set(name, rows)
        F[name] = features(sets[name], main_feats)
        bar.update(1)
    alphas = {}
    for m in models:
        alphas[m.name] = _sigmoid(cond_logits[:, class_idx] / m.temperature).astype(np.float32) if m.has_attributes else None
        sets[m.name] = gen_set(m, "main", slice(0, proto.n), alphas[m.name], keep=True)
        F[m.name] = features(sets[m.name], main_feats)
        bar.update(1)
    bar.close()

    # ---- Table 1
    def record(row: str, metric: str, fn: Callable[[], dict]):
        try:
            results["rows"].setdefault(row, {})[metric] = fn()
        except DarkGANError as e:
            missing.append({"what": metric, "set": row, "reason": str(e)})
        except KeyError as e:
            missing.append({"what": metric, "set": row, "reason": f"features {e} unavailable"})

    ref = F["reference"]
    from darkgan.evaluation.metrics.kid import reference_scale

    # one scale for every row (from the reference set): the embedding brought to unit mean square
    kid_scale = reference_scale(ref["inception"]["embedding"]) if "inception" in ref else 1.0
    for row in ["real train", "real valid"] + [m.name for m in models]:
        f = F[row]
        record(row, "pis", lambda: M.compute("pis", pitch_probs=f["inception"]["pitch_probs"]))
        record(row, "iis", lambda: M.compute("iis", family_probs=f["inception"]["family_probs"]))
        record(row, "kid", lambda: M.compute("kid", real=kid_scale * ref["inception"]["embedding"],
                                              fake=kid_scale * f["inception"]["embedding"],
                                              subset_size=kid_subset_size(proto.kid_subset, len(f["inception"]["embedding"]),
                                                                          len(ref["inception"]["embedding"])),
                                              num_subsets=proto.kid_subsets, seed=seed))
        for emb in ("teacher", "yamnet"):
            if emb == "yamnet" and "yamnet" in skip:
                continue
            record(row, f"fad_{emb}", lambda: M.compute("fad", real=ref[emb]["embedding"], fake=f[emb]["embedding"]))
            record(row, f"fad_inf_{emb}", lambda: M.compute("fad_inf", real=ref[emb]["embedding"],
                                                            fake=f[emb]["embedding"], steps=proto.fad_inf_steps,
                                                            seed=seed))
        if "pitch" not in skip:
            record(row, "pitch_accuracy", lambda: M.compute("pitch_accuracy", f0_hz=f["f0"]["f0"],
                                                            pitch=sets[row].pitch[:len(f["f0"]["f0"])]))

    # ---- Table 2 (rho_i), teacher and YAMNet
    ymap = None
    if "yamnet" not in skip and K:
        try:
            yt = feats.yamnet
            ymap = yamnet_mapping(vocab_names, vocab_mids, yt.class_names, yt.class_mids)
        except DarkGANError as e:
            missing.append({"what": "YAMNet correlations", "set": "all", "reason": str(e)})

    def teacher_pred(fe: dict) -> np.ndarray:
        return _sigmoid(fe["teacher"]["logits"][:, class_idx])

    def yamnet_pred(fe: dict) -> np.ndarray:
        lg = fe["yamnet"]["logits"]
        out = np.full((len(lg), K), np.nan)
        ok = ymap >= 0
        out[:, ok] = _sigmoid(lg[:, ymap[ok]])
        return out

    if K:
        # real validation notes against their own labels: the teacher's self-consistency (~1)
        va_alpha = _sigmoid(np.asarray(labels.logits)[[label_row.get(s, 0) for s in cache.note_str[va_rows].tolist()]][:, class_idx])
        rows_corr = {"real valid": (F["real valid"], va_alpha)}
        for m in att_models:
            rows_corr[m.name] = (F[m.name], alphas[m.name])
        for row, (fe, alpha) in rows_corr.items():
            res = {}
            try:
                res["teacher"] = M.compute("attribute_correlation", predicted=teacher_pred(fe), target=alpha,
                                           names=vocab_names)
            except (DarkGANError, KeyError) as e:
                missing.append({"what": "attribute correlation (teacher)", "set": row, "reason": str(e)})
            if ymap is not None and "yamnet" in fe:
                try:
                    res["yamnet"] = M.compute("attribute_correlation", predicted=yamnet_pred(fe), target=alpha,
                                              names=vocab_names)
                except DarkGANError as e:
                    missing.append({"what": "attribute correlation (YAMNet)", "set": row, "reason": str(e)})
            results["correlation"][row] = res
        results["yamnet_mapping"] = {nm: (int(j) if j >= 0 else None) for nm, j in
                                     zip(vocab_names, ymap if ymap is not None else [-1] * K)}

    # ---- Figures 2 and 3
    pred_feats = ("teacher",) + (() if "yamnet" in skip else ("yamnet",))

    def preds_for(ns: NoteSet, i: int) -> dict:
        fe = features(ns, pred_feats)
        out = {"teacher": teacher_pred(fe)[:, i]}
        if ymap is not None and "yamnet" in fe and ymap[i] >= 0:
            out["yamnet"] = yamnet_pred(fe)[:, i]
        return out

    for m in att_models:
        rho = np.asarray([np.nan if v is None else v for v in
                          results["correlation"].get(m.name, {}).get("teacher", {}).get("rho", [np.nan] * K)], float)
        order = [int(i) for i in np.argsort(-np.nan_to_num(rho, nan=-2.0))]
        alpha = alphas[m.name]
        if n_ood_att:
            pos = [i for i in order if rho[i] > 0][:n_ood_att]
            deltas = C.ood_deltas(ood_ls)
            if not pos:
                missing.append({"what": "out-of-distribution correlation", "set": m.name,
                                "reason": "no attribute with rho > 0"})
            else:
                bar = tqdm(total=len(pos) * len(deltas) * ood_n, desc=f"{m.name}: out-of-distribution", unit="note",
                           disable=not progress)
                pt = np.full((len(deltas), len(pos), ood_n), np.nan)
                py = np.full_like(pt, np.nan)
                for li, d in enumerate(deltas):
                    for ai, i in enumerate(pos):
                        a = alpha[:ood_n].copy()
                        a[:, i] += np.float32(d)
                        pr = preds_for(gen_set(m, f"ood-{i}-{ood_ls[li]}", slice(0, ood_n), a, False), i)
                        pt[li, ai] = pr["teacher"]
                        if "yamnet" in pr:
                            py[li, ai] = pr["yamnet"]
                        bar.update(ood_n)
                bar.close()
                tgt = alpha[:ood_n, pos].T
                res = {"teacher": M.compute("ood_correlation", predicted=pt, target=tgt, deltas=deltas, attributes=pos)}
                ok = [ai for ai, i in enumerate(pos) if ymap is not None and ymap[i] >= 0]
                if ok:
                    res["yamnet"] = M.compute("ood_correlation", predicted=py[:, ok], target=tgt[ok], deltas=deltas,
                                              attributes=[pos[a] for a in ok])
                res["levels"] = ood_ls
                res["n"] = ood_n
                res["attribute_names"] = [vocab_names[i] for i in pos]
                results["ood"][m.name] = res
        if n_ic_att:
            best = [i for i in order if np.isfinite(rho[i])][:n_ic_att]
            deltas = C.increment_deltas(ic_ks)
            fe_main = F[m.name]  # the first ic_n main-set notes are the un-incremented generations
            bt = teacher_pred(fe_main)[:ic_n][:, best].T
            by = yamnet_pred(fe_main)[:ic_n][:, best].T if ymap is not None and "yamnet" in fe_main else None
            bar = tqdm(total=len(best) * (len(deltas) - 1) * ic_n, desc=f"{m.name}: increments", unit="note",
                       disable=not progress)
            it = np.repeat(bt[None], len(deltas), 0).copy()
            iy = np.repeat(by[None], len(deltas), 0).copy() if by is not None else None
            for li, d in enumerate(deltas):
                if d == 0:
                    continue
                for ai, i in enumerate(best):
                    a = alpha[:ic_n].copy()
                    a[:, i] += np.float32(d)
                    pr = preds_for(gen_set(m, f"ic-{i}-{ic_ks[li]}", slice(0, ic_n), a, False), i)
                    it[li, ai] = pr["teacher"]
                    if iy is not None and "yamnet" in pr:
                        iy[li, ai] = pr["yamnet"]
                    bar.update(ic_n)
            bar.close()
            res = {"teacher": M.compute("increment_consistency", base=bt, incremented=it, deltas=deltas,
                                        attributes=best)}
            if iy is not None:
                ok = [ai for ai, i in enumerate(best) if ymap[i] >= 0]
                if ok:
                    res["yamnet"] = M.compute("increment_consistency", base=by[ok], incremented=iy[:, ok],
                                              deltas=deltas, attributes=[best[a] for a in ok])
            res["steps"] = ic_ks
            res["n"] = ic_n
            res["attribute_names"] = [vocab_names[i] for i in best]
            results["increment"][m.name] = res

    # ---- audio examples
    if "examples" not in skip:
        from darkgan.evaluation.report import write_examples

        try:
            results["examples"] = write_examples(out_dir, models, alphas, results, vocab_names, z_all, cond_pitch,
                                                 proto.example_attributes, fc, real=(cache, va_rows))
        except (DarkGANError, OSError) as e:
            missing.append({"what": "audio examples", "set": "all", "reason": str(e)})

    metrics = {
        "darkgan_evaluation": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": {"dir": str(data_dir.resolve()), "notes": int(len(cache)), "train": int(len(train_rows)),
                 "valid": int(len(valid_rows)), "teacher_labels": teacher_id,
                 "teacher_labels_sha256": table.teacher_sha256, "pitch_range": [lo, hi]},
        "protocol": asdict(proto),
        "protocol_paper": asdict(PROTOCOLS["paper"]),
        "seed": seed,
        "device": device,
        "sizes": {"reference": int(len(ref_rows)), "real train": int(len(trb_rows)), "real valid": int(len(va_rows)),
                  "generated": proto.n, "ood_n": ood_n, "ic_n": ic_n, "ood_levels": ood_ls, "ic_steps": ic_ks},
        "models": [m.info for m in models],
        "embedding_models": feats.model_ids(),
        "attributes": {"names": vocab_names, "mids": vocab_mids, "teacher_class_indices": class_idx.tolist()},
        "results": results,
        "missing": missing,
        "cache": {"hits": fc.hits, "computed": fc.misses, "dir": str(fc.root)},
        "plan": plan,
        "wall_time_s": round(time.time() - t_start, 1),
    }
    write_json(out_dir / "metrics.json", _jsonable(metrics))
    from darkgan.evaluation.report import write_report

    write_report(out_dir, metrics)
    log(f"evaluate: wrote {out_dir / 'report.html'}, report.md, metrics.json ({_fmt_s(time.time() - t_start)}"
        + (f"; {len(missing)} result(s) missing, see the report" if missing else "") + ")")
    return metrics


def _fmt_s(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _jsonable(o):
    """NaN/inf -> None, numpy -> python, recursively (strict JSON)."""
    if isinstance(o, dict):
        return {str(k): _jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_jsonable(v) for v in o]
    if isinstance(o, np.ndarray):
        return _jsonable(o.tolist())
    if isinstance(o, (np.floating, float)):
        v = float(o)
        return v if math.isfinite(v) else None
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, Path):
        return str(o)
    return o
