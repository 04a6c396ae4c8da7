"""A data-faithful reference "generator": the nearest real training note to the asked conditioning.

What would a generator that had learned the data exactly answer to a request? For the control
measures (rho, the single-attribute rise test, retrieval; paper Sec. 4.4.2) the answer gives their
ceiling on our data: :class:`NearestNoteGenerator` returns, for each asked ``(pitch, alpha)``, the
waveform of the training note of that pitch whose conditioning is nearest to ``alpha``, in the
generator's own input units (standardised logits ``(z / T - mean) / std``) or after the shrinkage
whitening of the training covariance (a Mahalanobis-like distance, in which a move along a
direction the data hardly varies in counts for more). It is a :data:`GenerateFn` (the signature of
:func:`darkgan.evaluation.taggers.generator_fn`), so the tested measures of
:mod:`darkgan.evaluation.metrics.control` run on it unchanged (``benchmarks/control.py --oracle``).

:class:`LinearEffectGenerator` goes one step further: the nearest note moved the rest of the way to
the request along the data's partial effects (the regression of the training notes' MAG-IF on
every attribute and the pitch, :func:`darkgan.training.terms.partial_effect_maps`), the answer of a
generator whose single edits change a note exactly as the attribute alone changes the real notes,
additively. :class:`EffectAddedGenerator` adds those effects to a trained generator's notes instead:
every single edit then carries the attribute's own effect in the data on top of the generator's.

Issue 15 asks YAMNet to hear >= 20 single attributes rise from their 5th to their 99th percentile
with every other attribute fixed; this module says how many it hears when the answer is a real note
and when it is a real note plus the data's own effects.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from darkgan.errors import DataError

#: Distances of :class:`NearestNoteGenerator`.
METRICS = ("std", "white")


class NearestNoteGenerator:
    """``generate(pitch [n], attrs [n, K], seed) -> [n, 16000]``: the nearest real training note.

    Args:
        data: dataset folder (note cache + teacher labels).
        teacher_id: the labels' teacher (``model.config.teacher["id"]``).
        class_indices: ``[K]`` the vocabulary's columns of the teacher's logits.
        temperature: T of the conditioning ``alpha = sigmoid(z / T)`` (paper Eq. 1).
        metric: ``"std"``: Euclidean in standardised logits (the ``std_logit`` input);
            ``"white"``: after :func:`darkgan.training.terms.attribute_whitening` (``white_eps``).
        white_eps: its shrinkage (> 0, in units of the mean eigenvalue).
        pitch_range: ``(lo, hi)`` MIDI pitches kept (the model's); notes outside are not candidates.

    ``seed`` is ignored: the answer to a request is deterministic, so the rise test's two arms
    (same notes, same seeds) differ only by the asked attribute. Waveforms are rebuilt from the
    cached MAG-IF (:func:`darkgan.evaluation.data.real_waves`), as every real reference is.

    Raises:
        DataError: an unknown metric, a dataset without training notes in ``pitch_range``, or a
            request for a pitch with no training note (naming it).
    """

    def __init__(self, data: str | Path, teacher_id: str, class_indices, temperature: float,
                 metric: str = "std", white_eps: float = 1.0, pitch_range: tuple[int, int] = (0, 127)):
        from darkgan.evaluation.data import labelled_training_notes
        from darkgan.training.terms import attribute_stats, attribute_whitening

        if metric not in METRICS:
            raise DataError(f"oracle metric must be one of {', '.join(METRICS)}, got {metric!r}")
        self.temperature, self.metric = float(temperature), metric
        self.cache, rows, logits = labelled_training_notes(data, teacher_id, class_indices, pitch_range)
        every = np.arange(len(rows))
        mean, std = attribute_stats(logits, every, self.temperature)
        self._mean, self._std = mean.double().numpy(), std.double().numpy()
        self._w = (attribute_whitening(logits, every, self.temperature, white_eps).double().numpy()
                   if metric == "white" else None)
        self.rows, self.pitch = rows, self.cache.pitch[rows].astype(np.int64)
        self._u = logits.astype(np.float64) / self.temperature  # [n, K] the candidates' u = z / T
        self._points = self._embed_logits(self._u)
        self._waves: dict[int, np.ndarray] = {}

    def _embed_logits(self, u: np.ndarray) -> np.ndarray:
        c = (u - self._mean) / self._std
        return c @ self._w if self._w is not None else c

    def embed(self, attrs: np.ndarray) -> np.ndarray:
        """``attrs [n, K]`` (alpha at T) -> ``[n, K]`` points of the metric's space."""
        a = np.clip(np.asarray(attrs, dtype=np.float64), 1e-7, 1 - 1e-7)
        return self._embed_logits(np.log(a / (1 - a)))

    def nearest(self, pitch: np.ndarray, attrs: np.ndarray) -> np.ndarray:
        """Cache rows ``[n]`` of the nearest training note of each request's pitch."""
        q, pitch = self.embed(attrs), np.asarray(pitch, dtype=np.int64)
        out = np.empty(len(q), dtype=np.int64)
        for p in np.unique(pitch):
            cand = np.flatnonzero(self.pitch == p)
            if not len(cand):
                raise DataError(f"oracle: no training note at pitch {int(p)}")
            ask = np.flatnonzero(pitch == p)
            pts = self._points[cand]
            d = (pts ** 2).sum(1)[None, :] - 2 * q[ask] @ pts.T  # ||q - p||^2 - ||q||^2
            out[ask] = self.rows[cand[d.argmin(1)]]
        return out

    def __call__(self, pitch: np.ndarray, attrs: np.ndarray, seed: int = 0) -> np.ndarray:
        from darkgan.evaluation.data import real_waves

        rows = self.nearest(pitch, attrs)
        todo = np.array(sorted(set(rows.tolist()) - set(self._waves)), dtype=np.int64)
        if len(todo):
            for r, w in zip(todo.tolist(), real_waves(self.cache, todo)):
                self._waves[r] = w
        return np.stack([self._waves[r] for r in rows.tolist()])


class LinearEffectGenerator(NearestNoteGenerator):
    """``generate(pitch [n], attrs [n, K], seed) -> [n, 16000]``: the nearest real training note,
    moved to the request along the data's partial effects.

    With ``x_0`` the normalised MAG-IF ``[2, 1024, 32]`` of the nearest training note of the asked pitch
    (standardised-logit distance, :class:`NearestNoteGenerator`), ``u_0`` its logits and ``u`` the
    request's (``u = logit(alpha) = z / T``), the answer is
    ``x = x_0 + gain * sum_i beta_i (u_i - u_0,i)`` with ``beta`` the partial effects of
    :func:`darkgan.training.terms.partial_effect_maps` (``ridge``), the log-magnitude clipped to the
    cached notes' range and the instantaneous frequency to [-1, 1], then inverted. In the rise test the
    two arms differ by ``gain * beta_i (hi - lo)`` wherever they share their nearest note.

    Args:
        data, teacher_id, class_indices, temperature, pitch_range: as :class:`NearestNoteGenerator`.
        ridge: >= 0, the regression's penalty; gain: > 0, the effects' scale (1: the data's).

    Raises:
        DataError: as :class:`NearestNoteGenerator`, or too few training notes for least squares
            (:func:`~darkgan.training.terms.partial_effect_maps`).
    """

    def __init__(self, data: str | Path, teacher_id: str, class_indices, temperature: float,
                 pitch_range: tuple[int, int] = (0, 127), ridge: float = 0.0, gain: float = 1.0):
        import torch

        from darkgan.data.magif import LOG_EPS
        from darkgan.training.data import load_training_data
        from darkgan.training.terms import partial_effect_maps

        super().__init__(data, teacher_id, class_indices, temperature, "std", pitch_range=pitch_range)
        td = load_training_data(data, teacher_id)
        if list(td.class_indices) != [int(i) for i in class_indices]:
            raise DataError(f"{data}: its vocabulary is not the checkpoint's ({len(td.class_indices)} vs "
                            f"{len(class_indices)} attributes)")
        beta, _, _ = partial_effect_maps(td, self.temperature, ridge)
        self._beta, self.gain = beta.flatten(1), float(gain)
        sample = self.cache.load(self.rows[:: max(1, len(self.rows) // 512)], normalize=False)[:, 0]
        self._logmag_range = (float(np.log(LOG_EPS)), float(sample.max()))
        self._index = {int(r): j for j, r in enumerate(self.rows.tolist())}
        self._torch = torch

    def __call__(self, pitch: np.ndarray, attrs: np.ndarray, seed: int = 0, batch: int = 256) -> np.ndarray:
        from darkgan.data.magif import magif_to_wave

        torch = self._torch
        rows = self.nearest(pitch, attrs)
        a = np.clip(np.asarray(attrs, dtype=np.float64), 1e-7, 1 - 1e-7)
        du = np.log(a / (1 - a)) - self._u[[self._index[int(r)] for r in rows]]
        out = np.empty((len(rows), 16000), np.float32)
        for s in range(0, len(rows), batch):
            with torch.inference_mode():
                x = self.cache.load(rows[s:s + batch], normalize=True)
                x += (self.gain * torch.from_numpy(du[s:s + batch]).float() @ self._beta).view_as(x)
                x = self.cache.normalizer.denormalize(x)
                x[:, 0].clamp_(*self._logmag_range)
                x[:, 1].clamp_(-1.0, 1.0)
                out[s:s + batch] = magif_to_wave(x).numpy()
        return out


class EffectAddedGenerator:
    """``generate(pitch [n], attrs [n, K], seed) -> [n, 16000]``: a DarkGAN's notes with the data's
    partial effects added to them.

    With ``x = G(z, p, alpha)`` the generator's normalised MAG-IF ``[n, 2, 1024, 32]`` (``z`` drawn as
    :func:`darkgan.evaluation.taggers.generator_fn` draws it), the answer is
    ``x + gain * sum_i beta_i (u_i - mean_i)``, ``u = logit(alpha) = z_teacher / T``, ``beta`` the
    partial effects of :func:`darkgan.training.terms.partial_effect_maps` and ``mean`` the training
    notes' mean ``u``, then synthesised as the model synthesises (its fade, the limiter). In the rise
    test the two arms differ by the generator's own response plus exactly ``gain * beta_i (hi - lo)``:
    what YAMNet would hear if every single edit also carried the attribute's own effect in the data
    (issue 15). Between real requests the added term is the data's linear prediction, counted once
    more on top of what the generator already makes of it, so only the rise test reads it cleanly.

    Args:
        model: a :class:`darkgan.generation.api.DarkGAN` with attributes.
        data: its labelled dataset folder (the regression's training notes).
        ridge: >= 0, the regression's penalty; gain: >= 0, the effects' scale (0: the model as it is).
        batch: notes per generator call.

    Raises:
        DataError: the dataset's vocabulary is not the checkpoint's, or as
            :func:`~darkgan.training.terms.partial_effect_maps`.

    Source: ours (issue 15, stop 65; the rise test of DarkGAN Sec. 4.4.2 read against the data's
    own effects).
    """

    def __init__(self, model, data: str | Path, ridge: float = 0.0, gain: float = 1.0, batch: int = 64):
        from darkgan.training.data import load_training_data
        from darkgan.training.terms import partial_effect_maps

        td = load_training_data(data, str(model.config.teacher["id"]))
        if list(td.class_indices) != [int(i) for i in model.config.class_indices]:
            raise DataError(f"{data}: its vocabulary is not the checkpoint's ({len(td.class_indices)} vs "
                            f"{len(model.config.class_indices)} attributes)")
        beta, _, _ = partial_effect_maps(td, model.temperature, ridge)
        self.model, self.gain, self.batch = model, float(gain), int(batch)
        self._beta = beta.flatten(1)
        # the regression's own notes: their mean u is where the added term is zero
        self._mean = np.asarray(td.logits[td.train_rows], np.float64).mean(0) / model.temperature
        self._normalizer = td.cache.normalizer

    def magif(self, z: np.ndarray, pitch: np.ndarray, attrs: np.ndarray):
        """De-normalised MAG-IF ``[n, 2, 1024, 32]`` (torch, CPU) with the effects added."""
        import torch

        x = self._normalizer.normalize(self.model.generate_magif(z, pitch, attrs, batch_size=self.batch))
        a = np.clip(np.asarray(attrs, dtype=np.float64), 1e-7, 1 - 1e-7)
        du = torch.from_numpy(np.log(a / (1 - a)) - self._mean).float()
        return self._normalizer.denormalize(x + (self.gain * du @ self._beta).view_as(x))

    def __call__(self, pitch: np.ndarray, attrs: np.ndarray, seed: int = 0) -> np.ndarray:
        from darkgan.data.magif import magif_to_note
        from darkgan.generation.synthesis import limit_peaks

        pitch, attrs, b = np.asarray(pitch), np.asarray(attrs), self.batch
        z = np.random.default_rng(seed).standard_normal((len(pitch), self.model.latent_dim)).astype(np.float32)
        fade = self.model.synthesiser.generator.cfg.synthesis_fade
        out = np.empty((len(pitch), 16000), np.float32)
        for s in range(0, len(pitch), b):
            x = self.magif(z[s:s + b], pitch[s:s + b], attrs[s:s + b])
            out[s:s + b] = limit_peaks(magif_to_note(x, fade))[0].numpy()
        return out

