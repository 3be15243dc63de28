"""The ``.pth`` file deferring ``rfc3987_syntax``'s grammar compilation in the whole prefix.

The rule: behaviour unchanged, cost moved. The deferring itself is a patch of another project's
import, so it lives with the other patches: :mod:`atelier.upstream.rfc3987_syntax` (why, which
versions, how). ``atelier install`` writes :data:`PTH_LINE` into the prefix's ``site-packages`` as
:data:`PTH_NAME`, so every Python process there imports that module at start-up. Importing this
module installs it too: a ``.pth`` file written before the patch moved names this module, and
keeps working until ``atelier install`` rewrites it.

Set ``ATELIER_NO_IMPORT_FIX=1`` to turn it off (the benchmark does, to measure stock JupyterHub).
"""

from __future__ import annotations

from atelier.upstream import rfc3987_syntax  # noqa: F401  (installs the deferring finder)

#: The file ``atelier install`` writes into site-packages; its one line imports the patch module.
PTH_NAME = "zz-atelier-importfix.pth"
# A failing import in a .pth file prints a traceback in every Python process of the prefix; the
# fix is an optimisation, so a process that cannot import it simply starts without it.
PTH_LINE = (
    "import importlib; exec(\"try: importlib.import_module('atelier.upstream.rfc3987_syntax')"
    '\\nexcept Exception: pass")\n'
)
