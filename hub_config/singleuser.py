"""A trainee's server: deliver workbooks, set the interface language, run jupyterhub-singleuser.

The rule: this runs as the trainee (the spawner has already switched to their Unix account), so
everything it writes in their home belongs to them. Delivery problems are logged and never stop the
server: a trainee who cannot get new material can still work on what they have.

The spawner passes ``ATELIER_WORKBOOKS_REPO`` (the published repository) and ``ATELIER_LANGUAGE``.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("atelier.singleuser")


def prepare(environ=os.environ) -> None:
    """Deliver the workbooks and set JupyterLab's language for the trainee in ``environ``."""
    from atelier.hub_config.delivery import deliver_workbooks, set_lab_language

    home = Path(environ.get("HOME") or Path.home())
    language = environ.get("ATELIER_LANGUAGE", "en")
    repo = environ.get("ATELIER_WORKBOOKS_REPO", "")
    set_lab_language(language, home)
    if repo and Path(repo).exists():
        try:
            deliver_workbooks(repo, language, home / "workbooks")
        except Exception as error:
            log.warning("atelier: workbooks not updated: %s", error)
    else:
        (home / "workbooks").mkdir(exist_ok=True)


def main() -> None:
    """Prepare the trainee's home, then hand over to ``jupyterhub-singleuser`` in this process."""
    logging.basicConfig(level=logging.INFO, format="[atelier %(levelname)s] %(message)s")
    prepare()
    from jupyterhub.singleuser import main as singleuser_main

    sys.exit(singleuser_main())


if __name__ == "__main__":
    main()
