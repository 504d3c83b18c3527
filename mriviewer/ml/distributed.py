"""Scale-out with ``torchrun``: process-group set-up and the few collectives the engine needs.

``torchrun --nproc_per_node=N -m mriviewer train …`` starts N processes with ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` in their environment; :func:`context_from_env` sees them and
joins the process group (NCCL on GPUs, one GPU per process, ``cuda:LOCAL_RANK``; gloo on CPU).
The engine then wraps the model in ``DistributedDataParallel``, gives the training loader a
``DistributedSampler`` (each rank trains on 1/N of the samples per epoch, so ``batch_size`` is per
process), shards validation and test cases across ranks and gathers their predictions on every
rank (so every rank takes the same checkpoint and early-stopping decisions); only rank 0 writes
files and reports. A stop request (:meth:`~.engine.Trainer.stop`) is honoured by all ranks
together at the end of the current epoch.

One machine: ``torchrun --standalone --nproc_per_node=N -m mriviewer train …`` (``--standalone``
runs the rendezvous on a free local port). Several machines: run the same command on every node
with ``--nnodes=M --nproc_per_node=N --rdzv_id=JOB --rdzv_backend=c10d
--rdzv_endpoint=HOST:PORT`` in place of ``--standalone``, ``HOST`` being one of the nodes,
reachable from all (e.g. port 29400); the c10d rendezvous assigns the ranks, so ``--node_rank``
is not needed (it belongs to the static set-up, ``--node_rank=K --master_addr=HOST
--master_port=PORT``, which works too). Nothing in mriviewer changes, but the dataset must be at
the same path on every node, only global rank 0 writes ``--out`` (on its node), and local rank 0
of each node prepares the samples into the store next to its volume cache
(``MRIVIEWER_CACHE_DIR``, node-local or shared) while that node's other ranks wait.
``MRIVIEWER_DIST_TIMEOUT`` (seconds, default 7200) bounds how long a rank waits in a collective,
sample preparation included (PyTorch's default would end an NCCL run after 10 minutes).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["DistContext", "context_from_env"]


@dataclass
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` (1 when not distributed).
    ``owns_group``: this context created the process group, so :meth:`close` destroys it."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str = ""
    owns_group: bool = False

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

    def sync_buffers(self, module) -> None:
        """Copy rank 0's buffers of ``module`` (BatchNorm running statistics) to every rank.

        DDP keeps the parameters equal but broadcasts buffers only *before* each training
        forward, so after the last batch every rank holds its own statistics; predictions sharded
        over ranks must all come from rank 0's model, the one that is saved."""
        if not self.enabled:
            return
        import torch.distributed as dist

        for buf in module.buffers():
            dist.broadcast(buf.data, src=0)

    def close(self) -> None:
        """Destroy the process group when this context created it."""
        if self.enabled and self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def _timeout():
    from datetime import timedelta

    try:
        seconds = float(os.environ.get("MRIVIEWER_DIST_TIMEOUT", "") or 7200)
    except ValueError:
        seconds = 7200.0
    return timedelta(seconds=max(seconds, 1.0))


def context_from_env(use_cuda: bool) -> DistContext:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1), else a
    single-process context. NCCL when ``use_cuda`` (this rank's GPU is ``cuda:LOCAL_RANK``),
    gloo otherwise. A group that the caller already initialised is used as it is (and left open)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world <= 1:
        return DistContext()
    import torch
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if dist.is_initialized():
        return DistContext(dist.get_rank(), local_rank, dist.get_world_size(), str(dist.get_backend()), False)
    backend = "nccl" if use_cuda else "gloo"
    kwargs = {}
    if use_cuda:  # bind the rank to its GPU before the first collective (barrier, gather)
        torch.cuda.set_device(local_rank)
        kwargs["device_id"] = torch.device("cuda", local_rank)
    dist.init_process_group(backend=backend, timeout=_timeout(), **kwargs)
    return DistContext(dist.get_rank(), local_rank, dist.get_world_size(), backend, True)
