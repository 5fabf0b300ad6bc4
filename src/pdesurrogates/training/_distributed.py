"""Multi-process data-parallel helpers (``torchrun --nproc-per-node K``).

Under ``torchrun`` the environment holds ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` and a
rendezvous address; :func:`setup` joins the process group (gloo on CPU, NCCL on CUDA) and
returns this process's rank. Outside ``torchrun`` it returns a single-process context and
touches nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "all_reduce_sum", "setup"]


@dataclass
class DistContext:
    """Rank, world size and whether this process owns the process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False


def setup(device: torch.device) -> DistContext:
    """Join (or reuse) the process group described by the ``torchrun`` environment."""
    if dist.is_available() and dist.is_initialized():
        return DistContext(
            dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), False
        )
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this torch build has no torch.distributed support")
    backend = "nccl" if device.type == "cuda" else "gloo"
    # DistributedDataParallel imports torch._dynamo; imported for the first time while a
    # group exists, it keeps references to that group, so destroy_process_group() leaves
    # its worker threads running until interpreter exit, where they can abort the process
    # (SIGABRT, "terminate called without an active exception") after training succeeded.
    import torch._dynamo  # noqa: F401

    dist.init_process_group(backend=backend)
    return DistContext(
        dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True
    )


def all_reduce_sum(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum ``t`` over every process (in place); a no-op in single-process runs."""
    if ctx.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t
