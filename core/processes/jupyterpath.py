"""A room's Jupyter data folder (Voila or nbconvert templates) first on ``JUPYTER_PATH``."""

from __future__ import annotations

import os
from pathlib import Path


def prepend(folder: str | Path, current: str | None) -> str:
    """``JUPYTER_PATH`` with ``folder`` first, then ``current``'s other entries."""
    first = str(folder)
    rest = [p for p in (current or "").split(os.pathsep) if p and p != first]
    return os.pathsep.join([first, *rest])
