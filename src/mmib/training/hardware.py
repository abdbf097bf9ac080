"""Where training and evaluation run: device, precision and processes, through Hugging Face Accelerate.

One recipe, any hardware. ``batch_size`` is the effective batch (the posts behind one optimiser step),
whatever the number of processes and accumulation steps: each global batch is split across processes
(strided, ``posts[rank::world]``) and, within a process, into ``grad_accum`` micro-batches. Each
micro-batch's loss is weighted by its share of the global batch's records, so the summed gradient equals
the one-process gradient of the whole batch (DDP averages over processes, hence the factor ``world``).
Two things stay per process, as in every data-parallel trainer without an all-gather: L_ar's in-batch
negatives (eq. 24) and the dropout/sampling noise.

Launch several processes with ``torchrun --standalone --nproc_per_node N -m mmib train ...`` (CPU, gloo;
or GPUs), ``accelerate launch -m mmib train ...``, or the shortcut ``mmib train --processes N``.
"""

from __future__ import annotations

import atexit
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from mmib.devices import device_name, resolve_device
from mmib.errors import SettingError

PRECISIONS = ("no", "bf16", "fp16")


@dataclass
class Hardware:
    """What a run was trained on; written into the run's summary and every result file."""

    device: str
    precision: str
    processes: int
    grad_accum: int
    effective_batch: int

    def as_dict(self) -> dict:
        return dict(vars(self))


def make_accelerator(device: str = "auto", precision: str = "no", dist_timeout_minutes: float = 10.0):
    """An Accelerator on the asked device (``auto``: CUDA, then MPS, then CPU) with the asked precision.

    fp16 needs a GPU (it uses a gradient scaler); bf16 also runs on CPUs (autocast only)."""
    from datetime import timedelta

    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    if precision not in PRECISIONS:
        raise SettingError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    cpu = resolve_device(device).type == "cpu"
    if precision == "fp16" and cpu:
        raise SettingError("--precision fp16 needs a GPU; on a CPU use bf16 or no")
    # Ablations switch parts of the model off (no L_rr, no L_ar, text-only): unused parameters are normal.
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
    # A stalled or dead process makes the others wait in a collective until this timeout, not gloo's and
    # NCCL's default of 30 minutes; then they fail with the process group's error instead of hanging.
    group = InitProcessGroupKwargs(timeout=timedelta(minutes=dist_timeout_minutes))
    _forget_earlier_settings()
    accelerator = Accelerator(cpu=cpu, mixed_precision=precision, kwargs_handlers=[ddp, group])
    refuse_a_lost_launch(accelerator.num_processes)
    end_process_group_at_exit()
    return accelerator


def launched_state(cpu: bool):
    """Accelerate's ``PartialState`` (this process's rank and device under torchrun), for the commands that
    share work but train nothing (``features``, ``predict``); its process group is ended at exit too."""
    from accelerate import PartialState

    state = PartialState(cpu=cpu)
    end_process_group_at_exit()
    return state


def end_process_group_at_exit() -> None:
    """Let gloo's worker threads finish before the interpreter is torn down, then end the process group.

    A gloo collective keeps its tensors until its worker thread destroys the finished work; for tensors made
    in Python (``gather_object``'s) that takes the GIL. When the main thread reaches interpreter shutdown
    first, that thread is killed inside a C++ destructor and the process aborts after its work is done
    ("terminate called without an active exception", SIGABRT; PyTorch discusses the same crash in its pull
    request 179291). CI failed on it once (2026-12-04); here it struck 3 of 12 two-process evaluations.
    ``destroy_process_group`` alone did not help: building a transformers model (5.25) leaves references to the
    group, so its threads live on. Releasing the GIL for a moment at exit lets a waiting worker finish."""
    global _exit_handler_registered
    if not _exit_handler_registered:
        atexit.register(_end_process_group)
        _exit_handler_registered = True


_exit_handler_registered = False
GLOO_WORKERS_GRACE_SECONDS = 0.2


def _end_process_group() -> None:
    import time

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        time.sleep(GLOO_WORKERS_GRACE_SECONDS)  # the GIL is free meanwhile: a worker that waits for it runs
        dist.destroy_process_group()


def refuse_a_lost_launch(processes: int, environment: dict | None = None) -> None:
    """``accelerate launch --num_processes N`` without ``--multi_gpu`` (or a config that says so) starts one
    plain process: its simple launcher sets MASTER_ADDR for the N processes it then never starts. Training on
    would silently give a one-process run where N were asked for."""
    environment = os.environ if environment is None else environment
    launched_simply = "ACCELERATE_USE_CPU" in environment and "MASTER_ADDR" in environment
    if processes == 1 and launched_simply and "WORLD_SIZE" not in environment:
        raise SettingError(
            "accelerate launch asked for several processes but started one (its simple launcher): add "
            "--multi_gpu (on a CPU it means several processes), or use torchrun or mmib train --processes N"
        )


def _forget_earlier_settings() -> None:
    """Accelerate keeps one device/precision state per process and refuses a second Accelerator with other
    settings; one Python process may train several runs (notebooks, benchmark matrices, tests). The
    transformers Trainer resets it the same way. A launched process keeps its process group."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=not in_launched_process())


def describe(accelerator, precision: str, grad_accum: int, batch_size: int) -> Hardware:
    return Hardware(
        device=device_name(accelerator.device),
        precision=precision,
        processes=accelerator.num_processes,
        grad_accum=grad_accum,
        effective_batch=batch_size,
    )


def process_share(items: list, accelerator) -> list:
    """This process's part of a global list, strided so that parts differ in size by at most one."""
    return items[accelerator.process_index :: accelerator.num_processes]


def micro_batches(posts: list[int], parts: int) -> list[list[int]]:
    """``posts`` cut into ``parts`` consecutive, nearly equal pieces (some may be empty)."""
    size, extra = divmod(len(posts), parts)
    pieces, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        pieces.append(posts[start:end])
        start = end
    return pieces


def gather_predictions(local: dict[int, object], accelerator) -> dict[int, object]:
    """Every process's ``{record: prediction}`` merged: each record is predicted by exactly one process,
    so no padding duplicate (as a distributed sampler adds) can reach the scores."""
    if accelerator.num_processes == 1:
        return local
    from accelerate.utils import gather_object

    merged: dict[int, object] = {}
    for part in gather_object([local]):
        overlap = merged.keys() & part.keys()
        if overlap:
            raise RuntimeError(f"records {sorted(overlap)[:5]} were predicted by two processes")
        merged.update(part)
    return merged


@contextlib.contextmanager
def sync_unless(accelerator, model, skip: bool) -> Iterator[None]:
    """No gradient all-reduce for the micro-batches before a step's last one."""
    with accelerator.no_sync(model) if skip else contextlib.nullcontext():
        yield


def launch_command(processes: int, argv: list[str]) -> list[str]:
    """``mmib train --processes N ...`` re-executed under torchrun (PyTorch's own launcher)."""
    import sys

    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "mmib",
        *argv,
    ]


def in_launched_process() -> bool:
    return "LOCAL_RANK" in os.environ
