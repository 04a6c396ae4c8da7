"""Steering: the attributes a user did not ask for follow the ones they did, as in the data.

A note's soft labels are strongly correlated ("Guitar", "Acoustic guitar", "Plucked string
instrument" and "Strum" rise together), and a conditional generator learns the conditioning
it was trained on: vectors of real notes. Raising one attribute alone, all 127 others fixed,
asks for a vector no training note has, and the shipped generator answers it with the note it
knows: the teacher hears no rise for any of the 10 Table-2 instruments, YAMNet none
(``benchmarks/control.py``'s rise test, 64 notes; docs/generation.md, "Steering").

:class:`~darkgan.teacher.prior.AttributePrior` (a Gaussian over the attribute logits, fitted on the
attribute bank's validation notes) sets every attribute not asked for by its regression on the
asked ones, so a note drawn from the bank keeps what makes it itself and takes on what goes with
the asked words. With every attribute given (``S`` = all) it is the identity.
"""
from __future__ import annotations

from darkgan.errors import DarkGANError
from darkgan.teacher.prior import EPS, AttributePrior, logit  # noqa: F401  (their home: the teacher's labels)

#: How the attributes not given are set: ``"data"`` steers them (:class:`AttributePrior`),
#: ``"none"`` keeps them as drawn (the paper's single-attribute edits, Sec. 4.4.2).
STEER_MODES = ("data", "none")


def check_steer(steer) -> str:
    """``steer`` if it is one of :data:`STEER_MODES`.

    Raises:
        DarkGANError: anything else.
    """
    if steer not in STEER_MODES:
        raise DarkGANError(f"steer must be one of {', '.join(STEER_MODES)}, got {steer!r}")
    return steer
