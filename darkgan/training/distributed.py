"""One process or many: ``torchrun --nproc_per_node N -m darkgan train ...``.

:func:`setup` reads torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``/``MASTER_PORT``), initialises the process group (NCCL on GPU, gloo on CPU) and
picks the device (``cuda:LOCAL_RANK``). Each rank trains on its shard of every global batch;
gradients are averaged by :class:`torch.nn.parallel.DistributedDataParallel`; only rank 0 writes
checkpoints, logs and the progress bar.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from darkgan.errors import DarkGANError


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str | None) -> torch.device:
    """``"cpu"``, ``"cuda"``/``"cuda:N"`` or ``"auto"``/None (CUDA when available).

    Raises:
        DarkGANError: CUDA requested but not available.
    """
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DarkGANError("--device cuda: no CUDA GPU is available (use --device cpu)")
    return dev


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles). Without either,
    oneDNN emulates bf16 convolutions: on a 2-core AVX2 EPYC (stop 54) one ``small-control``
    step at 1024x32 ran at 0.09 steps/s in bf16 against 0.86 in fp32
    (``benchmarks/bench_train.py --scales 5``), where an AVX512-BF16 machine ran bf16 1.6-3x faster."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if not any(probes):  # a torch without the probes: assume native, never a false warning
        return True
    return any(bool(p()) for p in probes if p is not None)


def precision_warning(precision: str, device: torch.device) -> str | None:
    """A one-line warning when ``train.precision="bf16"`` asks for bfloat16 on a CPU that emulates
    it (:func:`cpu_has_native_bf16`), else None."""
    if precision != "bf16" or device.type != "cpu" or cpu_has_native_bf16():
        return None
    return ("darkgan train: WARNING: train.precision=bf16 on a CPU without AVX512-BF16 or AMX: bfloat16 is "
            "emulated here, about 10x slower than fp32 (set train.precision=fp32; a resume may change it)")


def setup(device: str | None = None) -> DistInfo:
    """Initialise distributed training if launched by torchrun (``WORLD_SIZE > 1``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    dev = resolve_device(device)
    if world <= 1:
        return DistInfo(device=dev)
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    created = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo", rank=rank, world_size=world)
        created = True
    return DistInfo(rank, world, local, dev, created)


def teardown(info: DistInfo, clean: bool = True) -> None:
    """Destroy the process group this process created. After a clean run (``clean``) every rank
    first meets at a barrier, so that no rank tears its gloo pairs down while another still sends on
    them (seen as "terminate called without an active exception", SIGABRT, in a worker's exit);
    after an error the barrier is skipped, since the other ranks may never arrive."""
    if info.initialized_here and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def any_flag(info: DistInfo, flag: bool) -> bool:
    """True on every rank if ``flag`` is true on any rank (one tiny all-reduce)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def params_checksum(module: torch.nn.Module) -> torch.Tensor:
    """A float64 fingerprint of a module's parameters (for cross-rank consistency checks)."""
    with torch.no_grad():
        acc = torch.zeros((), dtype=torch.float64)
        for i, p in enumerate(module.parameters()):
            acc += (p.detach().double().cpu().flatten() * (1.0 + (torch.arange(p.numel(), dtype=torch.float64) % 7) / 7)).sum() * (i + 1)
        return acc


def ranks_agree(info: DistInfo, module: torch.nn.Module) -> bool:
    """True if every rank holds exactly the same parameters as rank 0."""
    if not info.distributed:
        return True
    c = params_checksum(module).to(info.device)
    ref = c.clone()
    dist.broadcast(ref, 0)
    ok = torch.tensor([1.0 if bool(torch.equal(c, ref)) else 0.0], device=info.device)
    dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)
