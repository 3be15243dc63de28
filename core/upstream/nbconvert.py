"""nbconvert: an exporter's list of preprocessors, read and replaced whole.

Written against nbconvert 7.17.2 (through nbgrader 0.9.6).

Private thing relied on: ``Exporter._preprocessors``, the list of preprocessor instances an
exporter runs, in order (``Exporter._preprocess``); ``register_preprocessor`` appends to it and
nothing public empties it. nbgrader's own ``Autograde._init_preprocessors`` empties it the same
way (``self.exporter._preprocessors = []``) before each of its two phases.

Why: ``atelier grade`` (``grading/autograde/converter.py``, ``SandboxedAutograde``) makes each
phase's steps once per run and puts that list back before each notebook, instead of nbgrader's
making and configuring every step again per submission (each step resets its state in
``preprocess``).
"""

from __future__ import annotations


def preprocessors(exporter) -> list:
    """The preprocessor instances ``exporter`` runs, in order (a copy)."""
    return list(exporter._preprocessors)


def set_preprocessors(exporter, steps) -> None:
    """Make ``exporter`` run exactly ``steps`` (preprocessor instances), in this order."""
    exporter._preprocessors = list(steps)
