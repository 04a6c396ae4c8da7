"""Sample sizes of an evaluation (:class:`Protocol`): the paper's, a CPU-sized one, the demo's."""
from __future__ import annotations

from dataclasses import dataclass, replace

from darkgan.errors import DarkGANError


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
    listening_attributes: attributes on the listening page (user values 0 / 0.5 / 1, 3 pitches).
    n_boot: bootstrap replicates of the intervals (rho, inception scores).
    metrics: the report metrics run by default (:data:`darkgan.evaluation.suite.DEFAULT_METRICS`
        when empty).
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
    listening_attributes: int = 12
    n_boot: int = 1000
    metrics: tuple[str, ...] = ()


PROTOCOLS = {
    "paper": Protocol("paper", n=10_000, n_real=10_000),
    "cpu": Protocol("cpu", n=2000, n_real=2000, kid_subset=500, kid_subsets=50, fad_inf_steps=6, ood_levels=6,
                    ood_n=64, ood_attributes=8, ic_steps=6, ic_n=32, ic_attributes=8, pitch_n=200,
                    example_attributes=6),
    # `make demo` (darkgan pipeline): a few CPU minutes; n below the embedding dimensions, so the
    # small-sample kernel distance (KAD) replaces FAD, and the curves run on 4 attributes
    "demo": Protocol("demo", n=256, n_real=256, kid_subset=128, kid_subsets=50, ood_levels=4, ood_n=32,
                     ood_attributes=4, ic_steps=4, ic_n=32, ic_attributes=4, pitch_n=64, example_attributes=4,
                     n_boot=200, metrics=("pis", "iis", "kid", "kad", "pitch", "tail", "rho", "ood", "increment",
                                          "examples", "listening")),
}


def kid_subset_size(target: int, n_fake: int, n_real: int) -> int:
    """KID subset size: the protocol's ``target``, at most half the smaller set, so the subsets
    differ and their standard deviation means something (at the whole set every subset is the
    same and the spread is 0)."""
    return max(2, min(int(target), min(n_fake, n_real) // 2))


def resolve_protocol(name: str = "auto", n: int | None = None, **overrides) -> Protocol:
    """The named protocol (``auto``: ``paper`` with CUDA, else ``cpu``), with ``n`` and any field
    overridden (for ``cpu`` and ``demo``, ``n`` sets the real sets' size too).

    Raises:
        DarkGANError: unknown name, n < 2, or an unknown field in ``overrides``.
    """
    if name == "auto":
        import torch

        name = "paper" if torch.cuda.is_available() else "cpu"
    if name not in PROTOCOLS:
        raise DarkGANError(f"unknown protocol {name!r}; choose from auto, {', '.join(PROTOCOLS)}")
    p = PROTOCOLS[name]
    if n is not None:
        if n < 2:
            raise DarkGANError(f"--n {n}: need at least 2 notes per set")
        p = replace(p, n=int(n), n_real=max(int(n), 2) if name != "paper" else p.n_real)
    bad = sorted(set(overrides) - set(Protocol.__dataclass_fields__))
    if bad:
        raise DarkGANError(f"unknown protocol field(s) {', '.join(bad)}; known: {', '.join(Protocol.__dataclass_fields__)}")
    return replace(p, **{k: v for k, v in overrides.items() if v is not None})
