"""IPython (through ipykernel): the one method a kernel's shell sends every traceback through.

Written against IPython 9.18.1 and ipykernel 7.4.0.

Private thing relied on: ``InteractiveShell._showtraceback(etype, evalue, stb)``, which
``showtraceback`` and ``showsyntaxerror`` call last, and which ipykernel's ``ZMQInteractiveShell``
overrides to send the ``error`` message to the browser. A cell that failed, ipywidgets' handling
of a comm message it could not apply, a callback's error and an ``Output`` widget's ``with`` block
all end there. IPython has no public hook that replaces what is sent (``set_custom_exc`` covers
only cells, not comm messages or callbacks).

Why: in a public app's kernel (``public/appskernel.py``, ``hide_tracebacks``) a visitor must
read a short sentence, never a traceback naming files; the full traceback goes to the service's log.
"""

from __future__ import annotations


def showtraceback(shell):
    """The bound method ``shell`` sends tracebacks through: ``(etype, evalue, stb)``."""
    return shell._showtraceback


def set_showtraceback(shell, show) -> None:
    """Make ``shell`` send every traceback through ``show(etype, evalue, stb)`` instead."""
    shell._showtraceback = show
