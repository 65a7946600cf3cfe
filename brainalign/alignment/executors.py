"""Where the runs of a grid execute: in this process, in N local processes, or on Slurm.

An executor has ``run(tasks, fn) -> iterable of rows`` (``fn(task)`` runs one task and is a
picklable module-level function). ``fn`` itself skips complete runs and resumes interrupted
ones, so any executor may run a task twice (a retry, a requeued Slurm job) safely.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError


class InProcess:
    """Runs one after another in this process (models and data are shared between runs)."""

    in_process = True

    def run(self, tasks, fn):
        for task in tasks:
            yield fn(task)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class LocalParallel:
    """``jobs`` runs at once in separate processes on this machine.

    With CUDA devices, worker k uses GPU k % n_gpus (more jobs than GPUs share them,
    round-robin); on CPU each worker gets cores // jobs threads, and more jobs than cores
    is refused.
    """

    in_process = False

    def __init__(self, jobs: int, device=None):
        from ..validation import check_int

        self.jobs = check_int("jobs", jobs, minimum=1)
        self.device = device

    def _plan(self) -> list[dict]:
        import torch

        want_cuda = self.device in (None, "auto") and torch.cuda.is_available() or \
            (isinstance(self.device, str) and self.device.startswith("cuda"))
        if want_cuda and torch.cuda.device_count() > 0:
            n = torch.cuda.device_count()
            return [{"device": f"cuda:{k % n}"} for k in range(self.jobs)]
        cores = _cpu_count()
        if self.jobs > cores:
            raise ConfigError(f"--jobs {self.jobs} is more than the {cores} CPU core(s) here: use --jobs {cores} "
                              "or fewer (each run then gets cores // jobs threads)")
        return [{"device": "cpu", "num_threads": max(1, cores // self.jobs)}] * self.jobs

    def run(self, tasks, fn):
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        if not tasks:
            return
        n = min(self.jobs, len(tasks))
        ctx = mp.get_context("spawn")
        # one slot (device / CPU share) per worker process for its whole life, so two runs never
        # share a GPU while another GPU idles, whatever order the runs finish in
        slots = ctx.Queue()
        for slot in self._plan()[:n]:
            slots.put(slot)
        with ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_take_slot, initargs=(slots,)) as pool:
            futures = [pool.submit(_run_in_slot, fn, t) for t in tasks]
            for fut in as_completed(futures):
                yield fut.result()


_WORKER_SLOT: dict = {}


def _take_slot(slots) -> None:
    """Worker initializer: this process's device / thread settings."""
    _WORKER_SLOT.clear()
    _WORKER_SLOT.update(slots.get())


def _run_in_slot(fn, task):
    """``fn(task)`` with the worker's slot merged into the task's align options."""
    from dataclasses import replace

    return fn(replace(task, align_options={**task.align_options, **_WORKER_SLOT}))


class _Checkpointable:
    """The callable a Slurm job runs; on preemption/timeout submitit calls ``checkpoint`` and
    requeues the same call, which resumes from the run's checkpoint.pt."""

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, task):
        return self.fn(task)

    def checkpoint(self, task):
        import submitit

        _release_locks(task)
        return submitit.helpers.DelayedSubmission(self, task)


def _release_locks(task) -> None:
    """The run folder lock of a job about to be requeued belongs to this dying process."""
    import json
    import socket

    lock = Path(task.folder) / ".brainalign.lock"
    try:
        owner = json.loads(lock.read_text())
    except (OSError, ValueError):
        return
    if owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname():
        lock.unlink(missing_ok=True)


class Submitit:
    """Slurm through submitit: one job per run, or one job array (``array=True``).

    ``cluster``: 'slurm' (default), or submitit's 'local' / 'debug' executors (tests, trials).
    Logs and job pickles go to ``folder`` (default: OUT/slurm-logs).
    """

    in_process = False

    def __init__(self, *, partition: str | None = None, gpus_per_run: int = 1, timeout_min: int = 240,
                 cpus_per_run: int | None = None, array: bool = True, cluster: str = "slurm", folder=None,
                 max_parallel: int | None = None, **slurm_options):
        try:
            import submitit  # noqa: F401
        except ImportError as exc:
            raise ConfigError("--launcher slurm needs submitit: pip install brainalign[cluster]") from exc
        if cluster not in ("slurm", "local", "debug"):
            raise ConfigError(f"cluster must be 'slurm', 'local' or 'debug', got {cluster!r}")
        self.partition, self.gpus_per_run, self.timeout_min = partition, int(gpus_per_run), int(timeout_min)
        self.cpus_per_run, self.array, self.cluster, self.folder = cpus_per_run, array, cluster, folder
        self.max_parallel, self.slurm_options = max_parallel, slurm_options
        self.in_process = cluster == "debug"  # submitit's DebugExecutor runs the calls here
        self.jobs: list = []

    def _executor(self, folder: Path):
        import submitit

        ex = submitit.AutoExecutor(folder=str(folder), cluster=self.cluster)
        params = {"timeout_min": self.timeout_min}
        if self.cluster == "slurm":
            params.update(gpus_per_node=self.gpus_per_run, tasks_per_node=1, nodes=1)
            if self.partition:
                params["slurm_partition"] = self.partition
            if self.cpus_per_run:
                params["cpus_per_task"] = self.cpus_per_run
            if self.max_parallel:
                params["slurm_array_parallelism"] = self.max_parallel
            params.update({f"slurm_{k}" if not k.startswith("slurm_") else k: v for k, v in self.slurm_options.items()})
        ex.update_parameters(**params)
        return ex

    def run(self, tasks, fn):
        if not tasks:
            return
        folder = Path(self.folder) if self.folder else Path(tasks[0].folder).parent / "slurm-logs"
        ex = self._executor(folder)
        call = _Checkpointable(fn)
        if self.array and self.cluster == "slurm":
            self.jobs = ex.map_array(call, tasks)
        else:
            self.jobs = [ex.submit(call, t) for t in tasks]
        for job in self.jobs:
            yield job.result()


def resolve_executor(executor):
    """None / 'inprocess' -> InProcess(); an int N -> LocalParallel(N); objects pass through."""
    if executor is None or executor == "inprocess":
        return InProcess()
    if isinstance(executor, int) and not isinstance(executor, bool):
        return InProcess() if executor == 1 else LocalParallel(executor)
    if hasattr(executor, "run"):
        return executor
    raise ConfigError(f"executor must be None, 'inprocess', a number of local jobs, LocalParallel(...) or "
                      f"Submitit(...), got {executor!r}")
