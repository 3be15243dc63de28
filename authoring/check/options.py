"""The limits and switches of one ``atelier check`` run.

Rule: one dataclass every step of the check reads and none changes; ``checkapp.py`` fills it from
the ``workbooks`` settings section and the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class CheckOptions:
    """Limits and switches of one check run (defaults from the ``workbooks`` settings section)."""

    cell_timeout: float = 30.0
    workers: int = 0
    max_notebook_bytes: int = 1_000_000
    max_file_bytes: int = 5_000_000
    max_folder_bytes: int = 20_000_000
    execute: bool = True
    voila: bool = True
    voila_timeout: float = 90.0
    fork: bool = True
    #: The content rules (:mod:`.content`): "error" as they say, "warn" (drafting) or "off".
    content: str = "error"

    @property
    def kernels(self) -> int:
        """How many kernels run at once: the given number, or two per core.

        A kernel spends much of a run waiting for the check to read its messages and send the
        next cell; two per core keep the cores busy through those waits (on 2 shared cores
        the check took 18-20 s with 4 kernels against 25-34 s with 2, the same CPU seconds).
        """
        return self.workers or 2 * (os.cpu_count() or 1)
