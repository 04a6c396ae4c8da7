"""The shared context of one evaluation: dataset, sample plan, cached sets of notes and features.

Every report metric (:mod:`darkgan.evaluation.suite`) gathers its own inputs through an
:class:`EvalContext`, as the metrics of NVlabs/stylegan2-ada-pytorch (``metrics/metric_main.py``)
do through their ``MetricOptions`` and feature cache:

- ``ctx.features(note_set, ("teacher", "inception"))``: features of a set, computed once
  (memory, then ``REPORT_DIR/cache/``), generations included;
- ``ctx.row_set(row)``: the set behind a Table-1 row (``"real train"``, ``"real valid"`` or a
  model name); ``ctx.gen_set(model, "train")``: a model's notes on training conditioning;
- ``ctx.generate_fn(model)`` / ``ctx.predict_fn(tagger)``: the ``generate`` / ``predict``
  callables of the tested drivers in :mod:`darkgan.evaluation.metrics.correlation` and
  :mod:`darkgan.evaluation.metrics.control`, cached like everything else (``generate`` returns a
  :class:`~darkgan.evaluation.features.NoteSet`, which ``predict`` featurizes);
- ``ctx.teacher_rho(model)``: rho_i on the validation conditioning (the attribute order of the
  curves, the examples and the listening page).

Sample plan (paper Sec. 4.4; seeded by ``seed``): a reference set *A* of training notes; a
disjoint training set *B* ("real train"); validation notes ("real valid"); per model ``n``
generations conditioned on (pitch, attributes) of validation notes drawn with replacement
(``cond="valid"``), and ``n`` on training notes (``cond="train"``, Tables 1-2's second column).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from darkgan.errors import DarkGANError, DataError
from darkgan.evaluation.features import FeatureCache, Featurizers, NoteSet, content_key
from darkgan.evaluation.models import EvalModel
from darkgan.evaluation.protocol import Protocol
from darkgan.teacher.labels import soft_labels


@dataclass
class EvalData:
    """The dataset side: cache, labels and the vocabulary of the evaluated models.

    Attributes: ``dir``, ``cache`` (:class:`darkgan.data.cache.NoteCache`), ``table``
    (:class:`darkgan.evaluation.data.AttributeTable`), ``logits`` ([N, C] full teacher logits),
    ``label_row`` ([N_cache] row of ``logits`` of every cache row, -1: unlabelled; the join by
    note name, :meth:`darkgan.teacher.labels.LabelSet.rows`), ``names``/``mids`` (K attributes),
    ``class_idx`` ([K] teacher columns), ``teacher_id``, ``train_rows``/``valid_rows`` (cache rows).
    """

    dir: Path
    cache: object
    table: object
    logits: np.ndarray
    label_row: np.ndarray
    names: list
    mids: list
    class_idx: np.ndarray
    teacher_id: str
    train_rows: np.ndarray
    valid_rows: np.ndarray

    @property
    def K(self) -> int:
        return len(self.names)

    def note_logits(self, rows: np.ndarray) -> np.ndarray:
        """Teacher logits ``[len(rows), C]`` of cache ``rows`` (every row must be labelled)."""
        lr = self.label_row[np.asarray(rows, dtype=np.int64)]
        if (lr < 0).any():
            raise DataError(f"{self.dir}: note {self.cache.note_str[rows][lr < 0][0]} has no teacher label")
        return self.logits[lr]

    def labelled(self, rows: np.ndarray, pitch_range: tuple[int, int]) -> np.ndarray:
        """The cache ``rows`` that are labelled and within ``pitch_range`` (inclusive)."""
        lo, hi = pitch_range
        rows = np.asarray(rows, dtype=np.int64)
        pitch = self.cache.pitch[rows]
        return rows[(pitch >= lo) & (pitch <= hi) & (self.label_row[rows] >= 0)]


def _mids(names: list[str], table) -> list[str]:
    by_name = dict(zip(table.names, table.mids))
    from darkgan.teacher.classes import audioset_classes

    as_names, as_mids = audioset_classes()
    by_name.update({n: m for n, m in zip(as_names, as_mids) if n not in by_name})
    return [by_name.get(n, "") for n in names]


def load_eval_data(data_dir: str | Path, models: list[EvalModel]) -> EvalData:
    """Read what the evaluation needs from ``data_dir`` for ``models``.

    Raises:
        DataError: no cache / labels / vocabulary (from the readers), or no validation split.
    """
    from darkgan.data.cache import NoteCache
    from darkgan.evaluation.data import load_attribute_table
    from darkgan.teacher.labels import load_labels

    data_dir = Path(data_dir)
    cache = NoteCache(data_dir)
    table = load_attribute_table(data_dir)
    try:
        valid_rows = cache.rows("valid")
    except DataError:
        raise DataError(f"{data_dir}: no validation split; the evaluation conditions on validation notes") from None
    att = [m for m in models if m.has_attributes]
    teacher_id = att[0].teacher_id if att and att[0].teacher_id else table.teacher_id
    if teacher_id != table.teacher_id:
        table = load_attribute_table(data_dir, teacher_id)
    labels = load_labels(data_dir, teacher_id)
    names = list(att[0].attributes) if att else list(table.names)
    class_idx = np.asarray(att[0].class_indices if att else table.class_index, dtype=np.int64)
    return EvalData(dir=data_dir, cache=cache, table=table, logits=np.asarray(labels.logits),
                    label_row=labels.rows(cache.note_str.tolist(), missing_ok=True), names=names,
                    mids=_mids(names, table), class_idx=class_idx, teacher_id=teacher_id,
                    train_rows=cache.rows("train"), valid_rows=valid_rows)


@dataclass
class SamplePlan:
    """Cache rows of the real sets and of the conditioning, and the noise (see module docstring)."""

    ref_rows: np.ndarray
    trb_rows: np.ndarray
    va_rows: np.ndarray
    cond_rows: dict  # {"valid": [n], "train": [n]}
    z: dict  # latent_dim -> [n, Z]


def make_plan(data: EvalData, models: list[EvalModel], proto: Protocol, seed: int) -> SamplePlan:
    """Draw the sets (seeded). Raises DataError: fewer than 2 labelled notes in a conditioning pool."""
    rng = np.random.default_rng(seed)
    pr = models[0].pitch_range
    tr_pool = rng.permutation(data.train_rows)
    n_ref = min(proto.n_real, len(tr_pool) // 2 if len(tr_pool) >= 4 else len(tr_pool))
    va_rows = np.sort(rng.permutation(data.valid_rows)[:proto.n_real])
    cond = {}
    for split, rows in (("valid", data.valid_rows), ("train", data.train_rows)):
        pool = data.labelled(rows, pr)
        if len(pool) < 2:
            raise DataError(f"{data.dir}: {len(pool)} labelled {split} notes within MIDI {pr[0]}..{pr[1]}; "
                            "need at least 2")
        cond[split] = pool[rng.integers(0, len(pool), size=proto.n)]
    z = {d: np.random.default_rng([seed, d]).standard_normal((proto.n, d)).astype(np.float32)
         for d in {m.latent_dim for m in models}}
    return SamplePlan(np.sort(tr_pool[:n_ref]), np.sort(tr_pool[n_ref:2 * n_ref]), va_rows, cond, z)


class EvalContext:
    """Shared inputs and caches of one evaluation (see the module docstring).

    Attributes: ``data`` (:class:`EvalData`), ``models``, ``proto``, ``plan``, ``seed``,
    ``device``, ``out_dir``, ``use_yamnet``, ``progress``, ``log``, ``results`` (filled by the
    metrics), ``missing`` (``[{"what", "set", "reason"}]``), ``fc`` (:class:`FeatureCache`),
    ``feats`` (:class:`Featurizers`).
    """

    def __init__(self, data: EvalData, models: list[EvalModel], proto: Protocol, out_dir: Path, seed: int = 0,
                 device: str = "cpu", use_yamnet: bool = True, progress: bool = True, log: Callable = print,
                 inception_epochs: int = 4):
        self.data, self.models, self.proto, self.seed, self.device = data, models, proto, seed, device
        self.out_dir, self.use_yamnet, self.progress, self.log = Path(out_dir), use_yamnet, progress, log
        self.plan = make_plan(data, models, proto, seed)
        self.fc = FeatureCache(self.out_dir / "cache")
        self.feats = Featurizers(data.dir, data.teacher_id, device, log, inception_epochs)
        self.results: dict = {"rows": {}, "correlation": {}, "correlation_train": {}, "ood": {}, "increment": {},
                              "examples": {}, "listening": {}}
        self.missing: list[dict] = []
        self._mem: dict = {}
        self._sets: dict = {}
        self._rho: dict = {}
        self._ymap = None
        self.data_key = content_key(data.dir.resolve().as_posix(), int(len(data.cache)),
                                    data.cache.normalizer.to_dict())
        self.t_start = time.time()

    # ------------------------------------------------------------------ models and taggers
    @property
    def att_models(self) -> list[EvalModel]:
        return [m for m in self.models if m.has_attributes]

    def model(self, name: str) -> EvalModel:
        return next(m for m in self.models if m.name == name)

    @property
    def taggers(self) -> list[str]:
        """``["teacher"]`` plus ``"yamnet"`` when it is used and available."""
        return ["teacher"] + (["yamnet"] if self.ymap is not None else [])

    @property
    def ymap(self) -> np.ndarray | None:
        """``[K]`` YAMNet class of each attribute (-1: none); None when YAMNet is off or missing."""
        if self._ymap is None and self.use_yamnet and self.data.K and "yamnet" not in self.feats.errors:
            from darkgan.evaluation.taggers import yamnet_mapping

            try:
                y = self.feats.yamnet
            except DarkGANError as e:
                self.feats.errors["yamnet"] = str(e)
                self.add_missing("YAMNet features", "all", str(e))
                return None
            self._ymap = yamnet_mapping(self.data.names, self.data.mids, y.class_names, y.class_mids)
        return self._ymap

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Tagger features computed for every generated set."""
        return ("teacher",) + (("yamnet",) if self.use_yamnet and "yamnet" not in self.feats.errors else ())

    def pred(self, fe: dict, tagger: str) -> np.ndarray:
        """Tagger probabilities ``sigmoid(z)`` (T = 1) of the K attributes, ``[n, K]`` (NaN: no class)."""
        lg = fe[tagger]["logits"]
        if tagger == "teacher":
            return soft_labels(lg[:, self.data.class_idx])
        out = np.full((len(lg), self.data.K), np.nan)
        ok = self.ymap >= 0
        out[:, ok] = soft_labels(lg[:, self.ymap[ok]])
        return out

    # ------------------------------------------------------------------ sets and features
    def alpha(self, model: EvalModel, logits: np.ndarray) -> np.ndarray | None:
        """Conditioning ``sigmoid(z[:, class_idx] / T)`` (paper Eq. 1) ``[n, K]`` float32; None for a baseline."""
        if not model.has_attributes:
            return None
        return soft_labels(logits[:, self.data.class_idx], model.temperature).astype(np.float32)

    def cond(self, model: EvalModel, cond: str = "valid") -> tuple[np.ndarray, np.ndarray | None]:
        """``(pitch [n], alpha [n, K] or None)`` of the ``cond`` ("valid"/"train") conditioning."""
        rows = self.plan.cond_rows[cond]
        return self.data.cache.pitch[rows].astype(np.int64), self.alpha(model, self.data.note_logits(rows))

    def cond_notes(self, cond: str = "valid") -> dict:
        """The ``cond`` conditioning notes themselves: ``{"instrument_str": [n] str, "velocity":
        [n] int}`` (for models with ``uses_notes``, e.g. SING)."""
        rows = self.plan.cond_rows[cond]
        return {"instrument_str": np.asarray(self.data.cache.instrument_str[rows]).astype(str),
                "velocity": np.asarray(self.data.cache.velocity[rows]).astype(np.int64)}

    def generate(self, model: EvalModel, z, pitch, alpha, notes: dict | None = None) -> np.ndarray:
        """``model.generate`` (``[n, 16000]``), with ``notes`` (``n`` entries of
        :meth:`cond_notes`) passed to a model that ``uses_notes``.

        Raises:
            DarkGANError: a model that uses notes called without them.
        """
        if not model.uses_notes:
            return model.generate(z, pitch, alpha)
        if notes is None:
            raise DarkGANError(f"{model.name}: generates from the conditioning notes themselves; none given")
        return model.generate(z, pitch, alpha, notes=notes)

    def gen_set(self, model: EvalModel, cond: str = "valid") -> NoteSet:
        """The model's ``n`` notes on the ``cond`` conditioning (waves kept in the cache)."""
        key = (model.name, cond)
        if key not in self._sets:
            pitch, alpha = self.cond(model, cond)
            z = self.plan.z[model.latent_dim]
            notes = self.cond_notes(cond) if model.uses_notes else None
            self._sets[key] = self._generated(model, f"{model.name}:{cond}", z, pitch, alpha, keep=True, notes=notes)
        return self._sets[key]

    def _generated(self, model: EvalModel, name: str, z, pitch, alpha, keep: bool = False,
                   notes: dict | None = None) -> NoteSet:
        key = content_key("gen", model.key, z, pitch, alpha if alpha is not None else 0,
                          *([notes["instrument_str"].tolist(), notes["velocity"]] if notes is not None else []))

        def make() -> np.ndarray:
            bs = 256
            part = (lambda s: {k: v[s:s + bs] for k, v in notes.items()}) if notes is not None else (lambda s: None)
            return np.concatenate([self.generate(model, z[s:s + bs], pitch[s:s + bs],
                                                 None if alpha is None else alpha[s:s + bs], part(s))
                                   for s in range(0, len(pitch), bs)])

        return NoteSet(name, key, pitch, make, keep)

    def real_set(self, name: str) -> NoteSet:
        """``"reference"``, ``"real train"`` or ``"real valid"`` (waves rebuilt from the MAG-IF cache)."""
        from darkgan.evaluation.data import real_waves

        rows = {"reference": self.plan.ref_rows, "real train": self.plan.trb_rows, "real valid": self.plan.va_rows}[name]
        if name not in self._sets:
            self._sets[name] = NoteSet(name, content_key("real", self.data_key, rows), self.data.cache.pitch[rows],
                                       lambda: real_waves(self.data.cache, rows), False, {"rows": int(len(rows))})
        return self._sets[name]

    def row_names(self) -> list[str]:
        """Table-1 rows: the real reference rows, then the models."""
        return ["real train", "real valid"] + [m.name for m in self.models]

    def row_set(self, row: str) -> NoteSet:
        return self.real_set(row) if row.startswith("real ") or row == "reference" else self.gen_set(self.model(row))

    def features(self, ns: NoteSet, which: tuple[str, ...]) -> dict:
        """``{featurizer: arrays}`` of ``ns`` (memory, disk cache, else computed); a featurizer that
        fails is recorded under ``missing`` and left out."""
        out, todo = {}, []
        for f in which:
            got = self._mem.get((ns.key, f)) or self.fc.get_features(ns.key, f)
            if got is None:
                todo.append(f)
            else:
                out[f] = got
        if todo:
            waves = self.waves(ns)
            for f in todo:
                if f in self.feats.errors:
                    continue
                try:
                    arr = self.feats.compute(f, waves if f != "f0" else waves[:self.proto.pitch_n])
                except DarkGANError as e:
                    self.feats.errors[f] = str(e)
                    self.add_missing(f"{f} features", ns.name, str(e))
                    continue
                self.fc.put_features(ns.key, f, arr)
                out[f] = arr
        self._mem.update({(ns.key, f): v for f, v in out.items()})
        return out

    def waves(self, ns: NoteSet) -> np.ndarray:
        """The waveforms ``[n, 16000]`` of a note set (generated once, cached when kept)."""
        waves = self.fc.get_waves(ns.key) if ns.keep_waves else None
        if waves is None:
            waves = ns.make_waves()
            if ns.keep_waves:
                self.fc.put_waves(ns.key, waves)
        return waves

    def row_features(self, row: str, featurizer: str) -> dict:
        """One featurizer's arrays for a Table-1 row. Raises KeyError when unavailable."""
        return self.features(self.row_set(row), (featurizer,))[featurizer]

    # ------------------------------------------------------------------ drivers' callables
    def generate_fn(self, model: EvalModel, tag: str):
        """``generate(pitch, attrs, seed) -> NoteSet`` (z from ``(ctx seed, seed)``), for the drivers."""

        def generate(pitch, attrs, seed):
            z = np.random.default_rng([self.seed, 7, int(seed)]).standard_normal((len(pitch), model.latent_dim))
            return self._generated(model, f"{model.name}:{tag}", z.astype(np.float32), np.asarray(pitch, np.int64),
                                   np.asarray(attrs, np.float32))

        return generate

    def predict_fn(self, tagger: str):
        """``predict(NoteSet) -> [n, K]`` tagger probabilities (all tagger features cached at once)."""
        return lambda ns: self.pred(self.features(ns, self.feature_names), tagger)

    def teacher_rho(self, model: EvalModel) -> np.ndarray:
        """``[K]`` teacher rho_i of the model's validation-conditioned notes (NaN: undefined)."""
        if model.name not in self._rho:
            from darkgan.evaluation.metrics.correlation import pearson_columns

            fe = self.features(self.gen_set(model), ("teacher",))
            self._rho[model.name] = pearson_columns(self.pred(fe, "teacher"), self.cond(model)[1])
        return self._rho[model.name]

    def order_by_rho(self, model: EvalModel) -> list[int]:
        """Attribute indices, highest teacher rho first (undefined last)."""
        return [int(i) for i in np.argsort(-np.nan_to_num(self.teacher_rho(model), nan=-2.0), kind="stable")]

    # ------------------------------------------------------------------ bookkeeping
    def add_missing(self, what: str, set_name: str, reason: str) -> None:
        self.missing.append({"what": what, "set": set_name, "reason": reason})

    def record(self, row: str, metric: str, fn: Callable[[], dict]) -> None:
        """``results["rows"][row][metric] = fn()``; a DarkGANError or missing features -> ``missing``."""
        try:
            self.results["rows"].setdefault(row, {})[metric] = fn()
        except DarkGANError as e:
            self.add_missing(metric, row, str(e))
        except KeyError as e:
            self.add_missing(metric, row, f"features {e} unavailable")

    def bar(self, total: int, desc: str):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit="note", disable=not self.progress)
