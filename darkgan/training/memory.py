"""Refuse a training configuration that cannot fit in memory, before allocating anything.

``--set train.batch_size=100000`` used to be killed by the kernel after allocating 22 GB.
:func:`estimate_step_memory` gives a *lower bound* of the memory one training step of each scale
needs, from the model configuration and the batch size alone:

- host data: the batches in flight (the prefetch queue of 3, the one being gathered and the one
  in use, float16 ``[b, 2, 1024, 32]``, 128 KiB a note) plus the float32 copy and its
  normalised version made at the start of a step (2 x 256 KiB a note);
- activations (on the training device): every 3x3 convolution's float32 output kept for the
  backward pass, for one generator pass and the critic's three passes (real, fake, penalty
  interpolates) over the scales up to the current one.

It leaves out weights, optimiser states, gradients, allocator slack and the penalty's double
backward, so the real peak is higher: a configuration refused by :func:`check_memory` cannot
run on the machine (one accepted may still not fit; the check only stops the hopeless ones
before they allocate anything).
"""
from __future__ import annotations

import os
from pathlib import Path

from darkgan.errors import DarkGANError

#: Batches alive on the host at once: queue depth 3 + one being gathered + one in use.
HOST_BATCHES = 5
_NOTE_VALUES = 2 * 1024 * 32  # values of one full-size MAG-IF note


def estimate_step_memory(cfg, world_size: int = 1) -> list[tuple[int, int]]:
    """Lower bounds of one rank's memory per training step, one ``(host_bytes, device_bytes)``
    per scale (equal devices on CPU: add them).

    Args:
        cfg: a :class:`~darkgan.models.config.Config`.
        world_size: distributed processes (each holds ``batch_size / world_size`` notes).
    """
    m, tc = cfg.model, cfg.train
    out, g_acts, d_acts = [], 0, 0
    d_ch = m.d_channels
    for s in range(m.n_scales):
        h, w = m.scale_shape(s)
        g_acts += m.convs_per_block * m.channels[s] * h * w
        d_acts += m.convs_per_block * d_ch[s] * h * w
        b = max(1, int(tc.batch_size[s]) // max(1, world_size))
        host = b * _NOTE_VALUES * (2 * HOST_BATCHES + 4 * 2)
        device = b * 4 * (g_acts + 3 * d_acts)
        out.append((host, device))
    return out


def available_memory(device=None) -> tuple[int | None, int | None]:
    """``(host bytes available, device bytes free)``; None where unknown. Host: Linux
    ``MemAvailable`` (else all physical memory); device: ``torch.cuda.mem_get_info`` on CUDA,
    else None (the device is the host)."""
    host = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                host = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if host is None:
        try:
            host = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            host = None
    dev = None
    if device is not None and getattr(device, "type", str(device)) == "cuda":
        import torch

        dev = int(torch.cuda.mem_get_info(device)[0])
    return host, dev


def check_memory(cfg, device=None, world_size: int = 1) -> None:
    """Raise before training when a scale's step cannot fit (see the module docstring).

    Raises:
        DarkGANError: one line naming the scale, its ``train.batch_size`` entry, the estimate
            and what is available.
    """
    host_free, dev_free = available_memory(device)
    on_cuda = dev_free is not None
    for s, (host, dev) in enumerate(estimate_step_memory(cfg, world_size)):
        need_host = host if on_cuda else host + dev
        for need, free, where in ((need_host, host_free, "memory"), (dev if on_cuda else 0, dev_free, "GPU memory")):
            if free is not None and need > free:
                raise DarkGANError(
                    f"train.batch_size={int(cfg.train.batch_size[s])} at scale {s} needs at least "
                    f"{need / 2**30:.1f} GiB of {where}, {free / 2**30:.1f} GiB available; "
                    f"use a smaller train.batch_size")
