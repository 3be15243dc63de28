"""Voila: the preheated kernel pools of its kernel manager.

Written against voila 0.5.13.

Private thing relied on: the kernel manager ``voila_kernel_manager_factory`` makes
(``VoilaKernelManager``) keeps its preheated kernels in ``_pools``: a dict from notebook path to a
list of asyncio tasks, each resolving to a dict with ``kernel_id`` and ``task`` (the page render
running in that kernel). ``fill_if_needed(delay=..., notebook_name=...)`` (public) tops a pool up.

Why: the public apps server (``public/appsserver.py``) bounds the number of kernels, preheated
included. It must know whether a pool has a kernel ready for a visitor, which kernels are pooled
(to restart their idle clock at hand-over), drop pool entries that failed for lack of room, and
report pool readiness; Voila offers only ``get_pool_size``, which counts failed entries too.
"""

from __future__ import annotations


def kernel_pools(kernel_manager) -> dict:
    """Each notebook's preheated pool (a list of tasks), or ``{}`` when pooling is off.

    The dict itself: removing a failed task from a pool's list drops it from Voila's pool.
    """
    pools = getattr(kernel_manager, "_pools", None)
    return {} if pools is None else pools


def pooling(kernel_manager) -> bool:
    """Whether ``kernel_manager`` preheats kernels (a Voila pooling manager)."""
    return getattr(kernel_manager, "_pools", None) is not None
