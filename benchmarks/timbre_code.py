"""A timbre code inside a checkpoint: its standardised-logit condition projected on the top-k
principal components of the attribute bank, then ``benchmarks/control.py``'s measures (issue 15).

    python benchmarks/timbre_code.py --k 16 --checkpoint default --data data/default --n 1024 --stages rho,rise

The generator's condition ``c [B, K]`` (``Generator.condition``: ``(logit(alpha) - mean) / std``)
becomes ``mu + (c - mu) U_k U_k^T``, ``U_k [K, k]`` the top-k eigenvectors of the covariance of the
bank's conditions (``mu [K]`` their mean), for this process only (the checkpoint is not changed).
Everything after ``--k`` is passed to ``control.py``. Prints the variance the k components keep.
Result (docs/generation.md, "A timbre code inside the model instead"): no gain in single-attribute
rises at k = 16 or 32.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import control  # noqa: E402


def principal_basis(c: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``c [M, K]`` conditions -> ``(mu [K], U_k [K, k], share of variance kept)``.

    Raises:
        ValueError: k not in 1..K, or fewer than 2 rows.
    """
    if not 1 <= k <= c.shape[1] or c.shape[0] < 2:
        raise ValueError(f"timbre code: k must be in 1..{c.shape[1]} with >= 2 conditions, got k={k}, {c.shape[0]}")
    c = c.double()
    mu = c.mean(0)
    ev, vec = torch.linalg.eigh(torch.cov((c - mu).T))
    order = torch.argsort(ev, descending=True)[:k]
    return mu.float(), vec[:, order].float(), float(ev[order].sum() / ev.sum())


def with_timbre_code(model, k: int) -> float:
    """Project ``model.generator``'s condition ``[B, K]`` on the top-k principal components of
    its attribute bank's conditions ``[M, K]`` (in place, this instance only; the files are not
    touched). Returns the share of the bank's variance the k components keep, in (0, 1].

    Raises:
        ValueError: k not in 1..K (:func:`principal_basis`).
    """
    g = model.generator
    plain = g.condition
    bank = model.bank
    mu, basis, kept = principal_basis(plain(torch.as_tensor(bank.alpha(np.arange(len(bank)), model.temperature))), k)

    def condition(self, attributes: torch.Tensor) -> torch.Tensor:
        c = plain(attributes)
        return (mu + (c.float() - mu) @ basis @ basis.T).to(c.dtype)

    g.condition = types.MethodType(condition, g)
    return kept


def main(argv=None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 2 or argv[0] != "--k":
        raise SystemExit("usage: timbre_code.py --k K [control.py arguments]")
    k, rest = int(argv[1]), argv[2:]
    setup = control.setup

    def coded_setup(args):
        model, gen, preds = setup(args)
        print(f"timbre code: top {k} components keep {with_timbre_code(model, k):.3f} of the bank's variance",
              flush=True)
        return model, gen, preds

    control.setup = coded_setup
    control.main(rest)


if __name__ == "__main__":
    main()
