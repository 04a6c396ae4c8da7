"""PNG of synthesized log-mel spectrograms (FRAMI paper Fig. 3)."""
from __future__ import annotations

from pathlib import Path

import torch

from darkgan.utils.io import atomic_write

#: NSynth instrument family names (index = instrument_family).
FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal")


def save_synth_grid(path: Path, x: torch.Tensor, y: torch.Tensor, teacher=None, per_class: int = 2,
                    names=None, multilabel: bool = False, max_classes: int = 12) -> None:
    """A grid of up to ``per_class`` samples per class of ``x [N, 1, M, T]`` (columns: the first
    ``max_classes`` classes), titled with the class name (``names[c]``; default the NSynth families)
    and, with ``teacher``, its probability for that class (softmax, or sigmoid when ``multilabel``);
    written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = FAMILIES if names is None else names
    classes = sorted(set(y.tolist()))[:max_classes]
    fig, axes = plt.subplots(per_class, len(classes), figsize=(1.6 * len(classes), 1.8 * per_class), squeeze=False)
    keep = torch.isin(y, torch.tensor(classes))
    x, y, probs = x[keep], y[keep], None
    if teacher is not None:
        with torch.no_grad():
            logits = teacher.eval()(x)
        probs = torch.sigmoid(logits) if multilabel else torch.softmax(logits, 1)
    for c_i, c in enumerate(classes):
        idx = (y == c).nonzero().flatten()[:per_class].tolist()
        for r in range(per_class):
            ax = axes[r][c_i]
            ax.axis("off")
            if r < len(idx):
                ax.imshow(x[idx[r], 0].numpy(), origin="lower", aspect="auto", cmap="magma")
                name = str(names[c])[:18] if c < len(names) else str(c)
                ax.set_title(name + (f" p={float(probs[idx[r], c]):.2f}" if probs is not None else ""), fontsize=7)
    fig.tight_layout()
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=80)
    plt.close(fig)
