"""Execution pools: where sandboxed notebook runs happen, on this machine or on a Dask cluster.

Rule: a pool only runs code cells in sandboxes and hands back plain data (an
:class:`~atelier.grading.sandbox.sandbox.Execution` as a dict); it never sees the gradebook. Both
pools offer the same three calls: ``submit(cells, files)`` returns a future, ``finished(futures,
block)`` yields the futures that are done, ``result(future)`` returns the run (a failure of the pool
itself becomes a run with no records, which the grader scores as not run: fail closed).

- :class:`LocalPool`: one sandbox slot per worker (default: one per core), each a pre-warmed fork
  server.
- :class:`DaskPool`: the same task on the workers of a Dask ``distributed`` cluster; each worker
  process starts its own sandbox slot on first use (workers must run as root for isolation).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import os
import queue
import sys
import threading

from atelier.errors import AtelierError
from atelier.grading.sandbox.sandbox import Sandbox, SandboxLimits, SandboxOptions


def _failed_run(error: BaseException) -> dict:
    return {
        "records": [],
        "well_formed": True,
        "nonce": "",
        "exit_code": -1,
        "killed_for": f"grading pool failure: {type(error).__name__}: {error}",
        "elapsed": 0.0,
    }


class ExecutionPool:
    """The interface both pools offer (see the module rule)."""

    workers = 1

    def submit(self, cells: list[dict], files: dict[str, bytes], variant_seed: str = ""):
        """Start running ``cells`` in a fresh sandboxed process; return a future.

        ``variant_seed`` is the trainee's (:mod:`atelier.variants`); ``""`` the default variant.
        """
        raise NotImplementedError

    def finished(self, futures: list, block: bool):
        """Yield the futures that are done; with ``block``, wait until all of them are."""
        raise NotImplementedError

    def result(self, future) -> dict:
        """The run of a finished future, as a dict."""
        try:
            return future.result()
        except Exception as error:
            return _failed_run(error)

    def close(self) -> None:
        """Stop the pool's sandboxes."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class LocalPool(ExecutionPool):
    """``workers`` sandbox slots on this machine, driven by as many threads.

    Args:
        workers: number of slots; 0 means one per core.
        limits: resource limits of every run.
        options: sandbox options.
        hidden: paths to hide from submissions (course root, gradebook, exchange).
    """

    def __init__(self, workers: int, limits: SandboxLimits, options: SandboxOptions, hidden=()):
        self.workers = workers or os.cpu_count() or 1
        self._free: queue.Queue[Sandbox] = queue.Queue()
        self._sandboxes: list[Sandbox] = []
        starters = [Sandbox(limits, options, hidden) for _ in range(self.workers)]
        # Fork servers start in parallel: each pays its imports once.
        with concurrent.futures.ThreadPoolExecutor(self.workers) as starting:
            started = list(starting.map(lambda s: s.start(), starters))
        for sandbox in started:
            self._sandboxes.append(sandbox)
            self._free.put(sandbox)
        self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, "atelier-grade")

    def _run(self, cells, files, variant_seed="") -> dict:
        sandbox = self._free.get()
        try:
            return sandbox.execute(cells, files, variant_seed).to_dict()
        finally:
            self._free.put(sandbox)

    def submit(self, cells, files, variant_seed=""):
        """Queue a run on the next free slot."""
        return self._executor.submit(self._run, cells, files, variant_seed)

    def finished(self, futures, block):
        """Yield done futures, waiting for all of them with ``block``."""
        if block:
            yield from concurrent.futures.as_completed(futures)
        else:
            yield from (f for f in futures if f.done())

    def close(self):
        """Wait for running jobs, then stop every fork server."""
        self._executor.shutdown(wait=True)
        for sandbox in self._sandboxes:
            sandbox.close()
        self._sandboxes = []


# -- Dask --------------------------------------------------------------------------------------
_worker_state = threading.local()
_worker_sandboxes: list[Sandbox] = []


def require_distributed():
    """Dask's ``distributed`` module, or an error saying how to install the ``dask`` extra."""
    try:
        import distributed
    except ImportError:
        # An opt-in feature: its package is an extra, so a default install does not carry it.
        raise AtelierError(
            "atelier grade --dask needs Dask's `distributed` package, which is not installed in "
            f"{sys.prefix}: install Atelier's dask extra there, for example "
            f'`{sys.executable} -m pip install ".[dask]"` in the Atelier checkout '
            "(see docs/grading.md)."
        ) from None
    return distributed


def _close_worker_sandboxes() -> None:
    for sandbox in _worker_sandboxes:
        sandbox.close()


def run_on_worker(
    cells: list[dict], files: dict, limits: dict, options: dict, hidden: list, variant_seed=""
) -> dict:
    """The Dask task: run ``cells`` in this worker thread's own sandbox slot."""
    key = repr((sorted(limits.items()), sorted((k, repr(v)) for k, v in options.items()), hidden))
    sandbox = getattr(_worker_state, "sandbox", None)
    if sandbox is None or getattr(_worker_state, "key", None) != key:
        if sandbox is not None:
            sandbox.close()
        sandbox = Sandbox(SandboxLimits(**limits), SandboxOptions(**options), hidden).start()
        if not _worker_sandboxes:
            atexit.register(_close_worker_sandboxes)
        _worker_sandboxes.append(sandbox)
        _worker_state.sandbox, _worker_state.key = sandbox, key
    return sandbox.execute(cells, files, variant_seed).to_dict()


class DaskPool(ExecutionPool):
    """Runs on the workers of the Dask cluster at ``address`` (``tcp://host:port``)."""

    def __init__(self, address: str, limits: SandboxLimits, options: SandboxOptions, hidden=()):
        self.client = require_distributed().Client(address, set_as_default=False)
        self.workers = max(1, sum(self.client.nthreads().values()))
        option_values = {n: getattr(options, n) for n in options.trait_names(config=True)}
        self._args = (limits.as_dict(), option_values, list(hidden))

    def submit(self, cells, files, variant_seed=""):
        """Send a run to the cluster (never cached: each run is a fresh process)."""
        return self.client.submit(
            run_on_worker, cells, files, *self._args, variant_seed, pure=False
        )

    def finished(self, futures, block):
        """Yield done futures, waiting for all of them with ``block``."""
        if block:
            from distributed import as_completed

            yield from as_completed(futures, loop=self.client.loop)
        else:
            yield from (f for f in futures if f.done())

    def close(self):
        """Disconnect from the cluster (its workers keep their fork servers for the next run)."""
        self.client.close()
