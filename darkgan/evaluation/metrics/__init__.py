"""Evaluation metrics, registered by name (after stylegan2-ada's ``metric_main``).

Every metric is a plain function over arrays (embeddings, posteriors, predictions) that returns
a JSON-serialisable ``dict`` of numbers; the runner (:mod:`darkgan.evaluation.runner`) gathers
the arrays (generations, teacher / YAMNet / inception outputs) and calls them by name::

    from darkgan.evaluation import metrics
    metrics.list_metrics()                      # ['fad', 'fad_inf', 'iis', 'is', 'kid', ...]
    metrics.compute("fad", real=emb_a, fake=emb_b)   # {'fad': 0.12, 'n_real': ..., ...}

Registered metrics (module, paper source):
    ``fad``, ``fad_inf``       :mod:`.fad`  Frechet (audio) distance and its 1/N extrapolation
    ``kid``                    :mod:`.kid`  kernel inception distance (unbiased MMD^2, cubic kernel)
    ``kad``                    :mod:`.kad`  kernel audio distance (unbiased MMD^2, Gaussian kernel, any n)
    ``is``, ``pis``, ``iis``   :mod:`.inception_score` inception score over class posteriors
    ``attribute_correlation``, ``ood_correlation``, ``increment_consistency``
                               :mod:`.correlation` (DarkGAN paper Sec. 4.4.2)
    ``attribute_correlation_ci``, ``attribute_rise``, ``retrieval``
                               :mod:`.control` (bootstrap intervals, paired rise test, timbre retrieval)
    ``pitch_accuracy``         :mod:`.pitch_accuracy` (f0 within 50 cents)
    ``tail``                   :mod:`.tail` the ends of the note: onset burst, high-frequency burst and fade-out (issue 15)

Signatures are strict (no ``**kwargs``): a misspelt keyword is a ``TypeError``, never ignored.
Errors: :class:`darkgan.errors.DarkGANError` (bad shapes, too few samples), one line each.
"""
from __future__ import annotations

from typing import Any, Callable

from darkgan.errors import DarkGANError

_REGISTRY: dict[str, Callable[..., dict]] = {}


def register_metric(name: str) -> Callable[[Callable[..., dict]], Callable[..., dict]]:
    """Decorator: register ``fn(**arrays) -> dict`` under ``name`` (unique, lower case)."""
    key = name.lower()

    def deco(fn: Callable[..., dict]) -> Callable[..., dict]:
        if key in _REGISTRY and _REGISTRY[key] is not fn:
            raise ValueError(f"metric {key!r} registered twice ({_REGISTRY[key].__module__}, {fn.__module__})")
        _REGISTRY[key] = fn
        return fn

    return deco


def list_metrics() -> list[str]:
    """Names of the registered metrics, sorted."""
    return sorted(_REGISTRY)


def get_metric(name: str) -> Callable[..., dict]:
    """The function registered as ``name``.

    Raises:
        DarkGANError: unknown name (the message lists the known ones).
    """
    try:
        return _REGISTRY[name.lower()]
    except KeyError:
        raise DarkGANError(f"unknown metric {name!r}; known metrics: {', '.join(list_metrics())}") from None


def compute(name: str, **kwargs: Any) -> dict:
    """Run metric ``name`` on keyword arrays; returns its result dict (see each metric)."""
    return get_metric(name)(**kwargs)


# Importing the modules registers their metrics.
from darkgan.evaluation.metrics import fad, kad, kid, inception_score, correlation, control, pitch_accuracy, tail  # noqa: E402,F401

__all__ = ["register_metric", "list_metrics", "get_metric", "compute"]
