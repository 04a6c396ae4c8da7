"""Waveform-level loss terms of the generator: f0 and the teacher in the loop.

The generated normalised MAG-IF ``[b, 2, 1024, 32]`` (at a coarser scale ``[b, 2, H_s, W_s]``,
nearest-up-sampled to that size first, for the teacher term only: ``train.output_terms_from_scale``)
is de-normalised and inverted to a waveform
``[b, 16000]`` as users hear it (differentiable, :func:`darkgan.data.magif.magif_to_note`); then

- ``g_f0``: :func:`darkgan.training.losses.f0_autocorrelation_loss` at the asked pitch;
- ``g_teacher``: the teacher labels the waveform after random transforms
  (:func:`~darkgan.training.losses.augment_for_teacher`) and its logits of the K vocabulary
  classes are matched to the conditioning (:func:`~darkgan.training.losses.teacher_attribute_loss`).
  This is knowledge distillation (paper Sec. 3, Eq. 2) with the teacher itself, not the critic's
  attribute head, as the judge of generated notes (issue 15).

The terms are data: :meth:`WaveTerms.for_batch` returns a function from the generated batch to a
dict ``{name: scalar}`` that :func:`darkgan.training.loop.train_step_g` weights with
``train.loss_weights``.
"""
from __future__ import annotations

import numpy as np
import torch

from darkgan.data.magif import N_BINS, N_FRAMES, magif_to_note
from darkgan.errors import DataError
from darkgan.training.losses import augment_for_teacher, f0_autocorrelation_loss, teacher_attribute_loss


def attribute_stats(logits: np.ndarray, rows: np.ndarray, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of ``z / T`` per attribute over the training notes.

    Args:
        logits: ``[N, K]`` raw teacher logits; rows: ``[n]`` training rows; temperature: T > 0.

    Returns:
        ``(mean [K], std [K])`` float32 tensors, std floored at 1e-3.
    """
    u = np.asarray(logits[np.asarray(rows)], dtype=np.float64) / float(temperature)
    return (torch.from_numpy(u.mean(0)).float(), torch.from_numpy(np.maximum(u.std(0), 1e-3)).float())


def check_teacher_vocabulary(teacher, class_indices: list[int], attributes: list[str], where: str) -> None:
    """Raise :class:`DataError` (one line) if ``teacher``'s classes at ``class_indices`` are not
    the vocabulary ``attributes`` (a teacher other than the one that labelled the data)."""
    names = list(teacher.class_names)
    if max(class_indices, default=-1) >= len(names) or [names[i] for i in class_indices] != list(attributes):
        raise DataError(f"{where}: teacher {teacher.id} has other classes than the vocabulary "
                        f"(e.g. {attributes[:2]}); label the data with the same teacher")


class WaveTerms:
    """Builds the ``g_f0`` / ``g_teacher`` terms for one training run.

    Args:
        tc: the :class:`~darkgan.models.config.TrainConfig` (weights, T, teacher loss and transforms).
        data: the :class:`~darkgan.training.data.TrainingData` (normaliser, pitch range, labels).
        device: where the teacher runs.

    Raises:
        DataError: ``g_teacher > 0`` on a dataset without attributes, or a teacher whose classes do
            not match the vocabulary. WeightsError: the teacher's weights are missing.
    """

    def __init__(self, tc, data, device: torch.device):
        self.tc, self.normalizer, self.lo = tc, data.normalizer, int(data.pitch_range[0])
        self.f0 = tc.loss_weights.get("g_f0", 0.0) > 0
        self.teacher = None
        if tc.loss_weights.get("g_teacher", 0.0) > 0:
            if not data.n_attributes:
                raise DataError("train.loss_weights.g_teacher > 0 needs attributes (the baseline has none)")
            from darkgan.teacher import load_teacher

            self.teacher = load_teacher(data.teacher["id"], device=str(device))
            check_teacher_vocabulary(self.teacher, list(data.class_indices), list(data.attributes), "teacher")
            self.classes = torch.tensor(list(data.class_indices), dtype=torch.long, device=device)
            self.attr_std = attribute_stats(data.logits, data.train_rows, tc.temperature)[1].to(device)

    @property
    def active(self) -> bool:
        return self.f0 or self.teacher is not None

    def for_batch(self, pitch_index: torch.Tensor, conditioning: torch.Tensor, gen: torch.Generator):
        """The :data:`~darkgan.training.loop.OutputTerms` of one batch (``pitch_index [b]``,
        ``conditioning [b, K]``, the step's random generator for the transforms)."""

        def terms(fake: torch.Tensor) -> dict[str, torch.Tensor]:
            final = tuple(fake.shape[-2:]) == (N_BINS, N_FRAMES)
            if not final:  # a coarser scale: blurred, full size (no pitch to hear: f0 waits)
                fake = torch.nn.functional.interpolate(fake, size=(N_BINS, N_FRAMES), mode="nearest")
            wave = magif_to_note(self.normalizer.denormalize(fake))
            out = {}
            if self.f0 and final:
                out["g_f0"] = f0_autocorrelation_loss(wave, (self.lo + pitch_index).float())
            if self.teacher is not None:
                heard = augment_for_teacher(wave, tuple(self.tc.teacher_transforms), gen)
                z = self.teacher.logits(heard, grad=True).index_select(1, self.classes)
                out["g_teacher"] = teacher_attribute_loss(z, conditioning, self.tc.temperature, self.attr_std,
                                                          self.tc.teacher_loss)
            return out

        return terms
