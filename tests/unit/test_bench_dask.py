"""The grading-on-Dask benchmark's pure parts (benchmarks/daskmodel.py): overhead and scaling.

The benchmark itself (benchmarks/bench_dask.py) starts a Dask cluster and grades a cohort; the
per-task overhead and the scaling curve it reports rest on these. Values computed by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import daskmodel as dm

pytestmark = pytest.mark.unit

# 0.06 CPU-s of nbgrader steps per submission in the grader, 2 ms in the scheduler, 0.16 in a
# worker, 3 s of start-up.
COSTS = dm.TaskCosts(grader=0.06, scheduler=0.002, worker=0.16, fixed=3.0)


def test_overhead_is_the_extra_cpu_per_submission():
    """26 CPU-s on Dask against 20 locally, for 400 submissions: 15 ms each; none for none."""
    assert dm.overhead_per_task(20.0, 26.0, 400) == pytest.approx(0.015)
    assert dm.per_submission(12.0, 0) == 0.0


def test_one_two_core_machine_is_bound_by_its_workers():
    """400 × max(0.06, 0.002, 0.16 / 2) + 3 = 35 s, and the workers are the limit."""
    assert dm.grading_seconds(COSTS, 400, machines=1, cores=2) == pytest.approx(35.0)
    assert dm.limiting_stage(COSTS, machines=1, cores=2) == "workers"


def test_past_the_bend_the_single_grader_sets_the_pace():
    """Two machines: 0.16 / 4 = 0.04 < 0.06, so 3 + 400 × 0.06 = 27 s whatever is added."""
    assert dm.grading_seconds(COSTS, 400, machines=2, cores=2) == pytest.approx(27.0)
    assert dm.grading_seconds(COSTS, 400, machines=32, cores=2) == pytest.approx(27.0)
    assert dm.limiting_stage(COSTS, machines=2, cores=2) == "grader"
    assert dm.machines_until_single_bound(COSTS, cores=2) == 2  # ceil(0.16 / 0.12)


def test_a_slow_scheduler_is_the_limit_when_the_grader_is_faster():
    """Grader 1 ms, scheduler 2 ms, worker 0.1 s on 4 cores: ceil(0.1 / 0.008) = 13 machines."""
    costs = dm.TaskCosts(grader=0.001, scheduler=0.002, worker=0.1)
    assert dm.machines_until_single_bound(costs, cores=4) == 13
    assert dm.limiting_stage(costs, machines=16, cores=4) == "scheduler"  # 0.1 / 64 < 0.002
    assert dm.grading_seconds(costs, 1000, machines=16, cores=4) == pytest.approx(2.0)


def test_the_curve_gives_rate_and_limit_per_size():
    """Rows of (machines, slots, seconds, per minute, limit): 400 in 35 s is 685.7 a minute."""
    rows = dm.curve(COSTS, 400, cores=2, machines=(1, 2))
    assert [(m, s, lim) for m, s, _, _, lim in rows] == [(1, 2, "workers"), (2, 4, "grader")]
    assert rows[0][2] == pytest.approx(35.0)
    assert rows[0][3] == pytest.approx(400 / 35 * 60)
    assert rows[1][3] == pytest.approx(400 / 27 * 60)


def test_unmeasured_single_stages_are_refused():
    """Without the grader's and scheduler's costs the bend cannot be placed: an error, not 1."""
    with pytest.raises(ValueError, match="measured"):
        dm.machines_until_single_bound(dm.TaskCosts(grader=0, scheduler=0, worker=0.1), cores=2)
