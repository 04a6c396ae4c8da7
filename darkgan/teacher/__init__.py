"""AudioSet taggers ("teachers") whose logits become DarkGAN's soft attribute labels.

Registry (``--teacher NAME``):
    ``efficientat-mn04`` (default): EfficientAT mn04_as, 527 classes, PyTorch, differentiable.
    ``panns-cnn14``: PANNs CNN14, 527 classes, PyTorch (weights not shipped upstream with a
        checksum we can pin; the user supplies ``Cnn14_mAP=0.431.pth``).
    ``yamnet``: YAMNet via LiteRT, 521 classes, no gradients (an independent second opinion).

``load_teacher(name, weights=None, device="cpu") -> Teacher``; see :class:`darkgan.teacher.base.Teacher`.
Stage files: ``labels.py`` (``darkgan label``), ``vocabulary.py`` (``darkgan attributes``),
``cli.py`` (``label``, ``tag``, ``attributes``), ``prior.py`` (:class:`~darkgan.teacher.prior.AttributePrior`:
which soft labels rise together; used by generation's steering and training's ``g_steer``).
"""
from __future__ import annotations

from importlib import import_module

DEFAULT_TEACHER = "efficientat-mn04"

#: name -> "module:class"
TEACHERS = {
    "efficientat-mn04": "darkgan.teacher.efficientat:EfficientATTeacher",
    "panns-cnn14": "darkgan.teacher.panns:PANNsTeacher",
    "yamnet": "darkgan.teacher.yamnet:YAMNetTeacher",
}
_ALIASES = {"efficientat": "efficientat-mn04", "mn04": "efficientat-mn04", "mn04_as": "efficientat-mn04",
            "panns": "panns-cnn14", "cnn14": "panns-cnn14"}
_CACHE: dict = {}


def teacher_names() -> list[str]:
    """Registered teacher names."""
    return list(TEACHERS)


def canonical_name(name: str) -> str:
    """Registry name for ``name`` (accepts a few aliases).

    Raises:
        darkgan.errors.DarkGANError: unknown name (the message lists the known ones).
    """
    from darkgan.errors import DarkGANError

    key = _ALIASES.get(name.lower(), name.lower())
    if key not in TEACHERS:
        raise DarkGANError(f"unknown teacher {name!r}; known teachers: {', '.join(TEACHERS)}")
    return key


def load_teacher(name: str = DEFAULT_TEACHER, weights=None, device: str = "cpu", **kw):
    """Build a ready-to-use :class:`~darkgan.teacher.base.Teacher` (eval mode, frozen).

    Args:
        name: a registry name (see module docstring).
        weights: explicit weights path; default: search ``$DARKGAN_MODELS_DIR``, the user cache,
            ``../shared/models``, then download (:mod:`darkgan.teacher.weights`).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` ... (YAMNet always runs on the CPU).
        **kw: teacher options (``normalize``, ``batch_size``, ``random_init`` ...).

    Instances without extra options are cached per (name, weights, device).

    Raises:
        darkgan.errors.DarkGANError: unknown teacher; WeightsError: weights missing or corrupt.
    """
    key = canonical_name(name)
    cache_key = (key, str(weights) if weights else None, str(device)) if not kw else None
    if cache_key is not None and cache_key in _CACHE:
        return _CACHE[cache_key]
    import torch

    module, cls = TEACHERS[key].split(":")
    with torch.inference_mode(False):  # plain tensors even when first loaded in inference mode (grad=True works)
        teacher = getattr(import_module(module), cls)(weights=weights, device=device, **kw)
    if cache_key is not None:
        _CACHE[cache_key] = teacher
    return teacher


__all__ = ["load_teacher", "teacher_names", "canonical_name", "TEACHERS", "DEFAULT_TEACHER"]
