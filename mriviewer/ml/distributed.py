"""Scale-out with ``torchrun``: process-group set-up and the few collectives the engine needs.

``torchrun --nproc_per_node=N -m mriviewer train …`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in their environment; :func:`context_from_env` sees them and
joins the process group (NCCL on GPUs, gloo on CPU). The engine then wraps the model in
``DistributedDataParallel``, gives the training loader a ``DistributedSampler``, shards
validation and test cases across ranks and gathers their predictions on every rank (so every
rank takes the same checkpoint and early-stopping decisions); only rank 0 writes files and
reports. Multi-node runs use torchrun's rendezvous flags (``--nnodes``, ``--node_rank``,
``--rdzv_backend=c10d --rdzv_endpoint=HOST:PORT``); nothing in mriviewer changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DistContext", "context_from_env"]


@dataclass
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` (1 when not distributed)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self, requested):
        """The device of this rank: ``cuda:LOCAL_RANK`` when CUDA is used, else ``requested``."""
        import torch

        if self.enabled and requested.type == "cuda":
            torch.cuda.set_device(self.local_rank)
            return torch.device("cuda", self.local_rank)
        return requested

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank (``[obj]`` when not distributed)."""
        if not self.enabled:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def mean(self, value: float, count: int) -> tuple[float, int]:
        """Sum-weighted mean of ``value`` over ranks (``value`` is a mean over ``count`` items)."""
        if not self.enabled:
            return value, count
        pairs = self.gather((value * count, count))
        total = sum(c for _, c in pairs)
        return (sum(v for v, _ in pairs) / total if total else 0.0), total

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (e.g. a Stop on rank 0)."""
        return any(self.gather(bool(flag))) if self.enabled else bool(flag)

    def close(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def context_from_env(use_cuda: bool) -> DistContext:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1), else a
    single-process context. NCCL when ``use_cuda``, gloo otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistContext()
    import torch.distributed as dist

    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size(), backend)
