"""The pure parts of ``bench_dask.py``: per-task costs from a run, and the scaling model.

A run of ``atelier grade --dask`` has three kinds of process, and the model keeps them apart
because two of them are single whatever the cluster's size:

- the **grader** (the ``atelier grade`` command): nbgrader's sanitize and autograde steps and
  every gradebook write, for every submission, in one process (``grader`` CPU-s per submission);
- the **scheduler** (``dask scheduler``): one process (``scheduler`` CPU-s per task);
- the **workers**: the sandboxed notebook runs, spread over ``machines × cores`` slots
  (``worker`` CPU-s per task, Dask's worker-side handling included).

Grading ``n`` submissions then takes about ``fixed + n × max(grader, scheduler, worker / slots)``:
the grader prepares the next submissions while the workers run earlier ones (the converter
pipelines them), so whichever stage is slowest sets the pace. Adding machines helps until
``worker / slots`` falls under the grader's (or scheduler's) per-submission time; past that the
single grader is the limit. This assumes CPU-bound stages and a network whose latency is hidden
by the pipeline (a task's few kilobytes each way); a run on two cores cannot show the curve
directly, it only measures the three per-task costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskCosts:
    """CPU seconds per submission of each kind of process (see the module docstring)."""

    grader: float
    scheduler: float
    worker: float
    fixed: float = 0.0


def per_submission(cpu_seconds: float, submissions: int) -> float:
    """CPU (or wall) seconds per submission; 0 for an empty run."""
    return cpu_seconds / submissions if submissions else 0.0


def overhead_per_task(local_cpu: float, dask_cpu: float, submissions: int) -> float:
    """Dask's extra CPU seconds per submission: (all of Dask's run - the local run) / n.

    Both runs grade the same submissions, so what they share (nbgrader's steps, the sandboxed
    runs) cancels; what is left is the client, scheduler and worker machinery of Dask (and, on
    one machine, the difference between one grading process and several).
    """
    return per_submission(dask_cpu - local_cpu, submissions)


def grading_seconds(costs: TaskCosts, submissions: int, machines: int, cores: int) -> float:
    """Modelled wall seconds to grade ``submissions`` on ``machines`` workers of ``cores`` each."""
    slots = machines * cores
    pace = max(costs.grader, costs.scheduler, costs.worker / slots)
    return costs.fixed + submissions * pace


def limiting_stage(costs: TaskCosts, machines: int, cores: int) -> str:
    """Which stage sets the pace at this size: ``workers``, ``grader`` or ``scheduler``."""
    stages = {
        "workers": costs.worker / (machines * cores),
        "grader": costs.grader,
        "scheduler": costs.scheduler,
    }
    return max(stages, key=stages.get)


def machines_until_single_bound(costs: TaskCosts, cores: int) -> int:
    """The fewest machines at which the workers stop being the limit (more add nothing)."""
    single = max(costs.grader, costs.scheduler)
    if single <= 0:
        raise ValueError("the grader's and scheduler's per-task costs must be measured (> 0)")
    return max(1, math.ceil(costs.worker / (single * cores)))


def curve(costs: TaskCosts, submissions: int, cores: int, machines=(1, 2, 4, 8, 16, 32)) -> list:
    """Rows (machines, slots, seconds, submissions per minute, limiting stage) of the model."""
    rows = []
    for count in machines:
        seconds = grading_seconds(costs, submissions, count, cores)
        rate = submissions / seconds * 60 if seconds else 0.0
        rows.append((count, count * cores, seconds, rate, limiting_stage(costs, count, cores)))
    return rows
