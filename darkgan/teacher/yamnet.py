"""YAMNet (521 AudioSet classes) through the LiteRT interpreter: an independent second opinion.

Source: Google's YAMNet (tensorflow/models, research/audioset/yamnet, Apache-2.0), MobileNetV1
on 96x64 log-mel patches of 16 kHz audio; file ``yamnet/yamnet.tflite`` (int8 dynamic-range
weights) from ``../shared/models`` or ``$DARKGAN_MODELS_DIR``; runs with ``ai-edge-litert``.

The model takes exactly one float32 window ``[15600]`` (0.975 s at 16 kHz) and outputs
``Identity [1, 521]`` (sigmoid scores) and ``Identity_1 [96, 64]`` (its log-mel patch). With
``experimental_preserve_all_tensors`` the interpreter also exposes the intermediate tensors
``yamnet_frames/dense/BiasAdd [1, 521]`` (the logits before the sigmoid) and
``yamnet_frames/global_average_pooling2d/Mean [1, 1024]`` (YAMNet's usual 1024-d embedding);
this teacher returns those. If a different tflite lacks them, logits fall back to
``log(p / (1 - p))`` of the scores clipped to [1e-7, 1 - 1e-7] and the embedding to the scores.

Clips: a 1 s note (16000 samples) is scored on its first 15600 samples; shorter clips are
zero-padded; longer ones are cut into 0.975 s windows at YAMNet's 0.48 s hop and the clip
probability is the mean of the window probabilities (logit of that mean returned), the
embedding the mean of the window embeddings. No gradients (``grad=True`` raises), CPU only.
"""
from __future__ import annotations

import numpy as np
import torch

from darkgan.errors import DarkGANError, WeightsError
from darkgan.teacher.base import Teacher
from darkgan.teacher.weights import WeightsSpec

WINDOW = 15600
HOP = 7680
WEIGHTS_SPEC = WeightsSpec(
    name="yamnet", model_dir="yamnet", filename="yamnet.tflite",
    sha256="469be6a3421cbc52cf97e9f2f966cba984198e8e7af9854d68b3e3ebb1e04194", url=None,
    hint="a LiteRT export of YAMNet (tensorflow/models research/audioset/yamnet)")
_LOGITS_TENSOR = "yamnet_frames/dense/BiasAdd"
_EMBED_TENSOR = "yamnet_frames/global_average_pooling2d/Mean"
_EPS = 1e-7


class YAMNetTeacher(Teacher):
    """``yamnet``: 521 classes; ``embedding_dim`` 1024 (or 521 with the score fallback).

    Raises:
        darkgan.errors.WeightsError: tflite missing/corrupt; DarkGANError: ``ai-edge-litert``
            not installed, or ``grad=True``.
    """

    id = "yamnet"
    supports_grad = False

    def __init__(self, weights=None, device="cpu", normalize: bool = True, batch_size: int = 64,
                 num_threads: int = 1):
        from darkgan.teacher.classes import yamnet_classes
        from darkgan.teacher.weights import resolve_weights

        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise DarkGANError("teacher yamnet needs the package ai-edge-litert (pip install ai-edge-litert)") from None
        path, sha = resolve_weights(WEIGHTS_SPEC, weights)
        import warnings

        try:
            with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": we need 2 tensors
                warnings.simplefilter("ignore", UserWarning)
                self.interpreter = Interpreter(model_path=str(path), num_threads=num_threads,
                                               experimental_preserve_all_tensors=True)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise WeightsError(f"{path}: not a loadable tflite model ({e})".splitlines()[0]) from None
        inp = self.interpreter.get_input_details()[0]
        if tuple(inp["shape"]) != (1, WINDOW):
            raise WeightsError(f"{path}: expected input [1, {WINDOW}], found {list(inp['shape'])}")
        self._in = inp["index"]
        by_name = {d["name"]: d for d in self.interpreter.get_tensor_details()}
        outs = self.interpreter.get_output_details()
        self._scores = next(o["index"] for o in outs if int(o["shape"][-1]) == 521)
        self._logits = by_name[_LOGITS_TENSOR]["index"] if _LOGITS_TENSOR in by_name else None
        self._embed = by_name[_EMBED_TENSOR]["index"] if _EMBED_TENSOR in by_name else None
        names, mids = yamnet_classes()
        super().__init__(names, mids, sha, 1024 if self._embed is not None else 521, device="cpu",
                         normalize=normalize, batch_size=batch_size)

    def _window(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One ``[15600]`` window -> (logits [521], embedding [D])."""
        self.interpreter.set_tensor(self._in, x[None].astype(np.float32))
        self.interpreter.invoke()
        if self._logits is not None:
            logits = self.interpreter.get_tensor(self._logits)[0].copy()
        else:
            p = np.clip(self.interpreter.get_tensor(self._scores)[0], _EPS, 1 - _EPS)
            logits = np.log(p / (1 - p))
        emb = (self.interpreter.get_tensor(self._embed)[0] if self._embed is not None
               else 1 / (1 + np.exp(-logits))).copy()
        return logits.astype(np.float32), emb.astype(np.float32)

    def _clip(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.shape[0] < WINDOW:
            x = np.pad(x, (0, WINDOW - x.shape[0]))
        starts = range(0, x.shape[0] - WINDOW + 1, HOP)
        outs = [self._window(x[s:s + WINDOW]) for s in starts]
        if len(outs) == 1:
            return outs[0]
        p = np.mean([1 / (1 + np.exp(-lg)) for lg, _ in outs], axis=0).clip(_EPS, 1 - _EPS)
        return np.log(p / (1 - p)).astype(np.float32), np.mean([e for _, e in outs], axis=0)

    def _forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = wave.detach().cpu().numpy()
        res = [self._clip(row) for row in x]
        return (torch.from_numpy(np.stack([r[0] for r in res])),
                torch.from_numpy(np.stack([r[1] for r in res])))
