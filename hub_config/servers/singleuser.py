"""A trainee's server: deliver workbooks, set the interface language, run jupyterhub-singleuser.

The rule: this runs as the trainee (the spawner has already switched to their Unix account), so
everything it writes in their home belongs to them. Delivery problems are logged and never stop the
server: a trainee who cannot get new material can still work on what they have.

Start-up is what a trainee waits for after pressing Start, so this module keeps it short:

- delivery (a few ``git`` processes) runs in a thread while the server's heavy modules are
  imported (CPU-bound Python), and is awaited before the server starts serving;
- JupyterLab never asks Node.js for yarn's configuration (:func:`skip_yarn_config`);
- usually this module's imports have already been paid by the hub's server template, which forks
  the server with :func:`main` (``servertemplate.py``; ``--template`` runs the template);
- the server's kernels are forked from a zygote of the server that has the kernel imported
  (``kernelzygote.py``), forked here before anything else, and talk to it over Unix sockets.

The spawner passes ``ATELIER_WORKBOOKS_REPO`` (the published repository) and ``ATELIER_LANGUAGE``.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

log = logging.getLogger("atelier.singleuser")


def prepare(environ=os.environ) -> None:
    """Deliver the workbooks and set JupyterLab's language for the trainee in ``environ``."""
    from atelier.hub_config.servers.delivery import deliver_workbooks, set_lab_language

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


def skip_yarn_config() -> None:
    """Keep JupyterLab from running ``node yarn.js config --json`` when it is imported.

    ``jupyterlab.labapp`` computes its app version at import (a module-level ``get_app_version()``,
    before any configuration is read), and the build options it creates ask Node.js for yarn's npm
    registry: ~1 s and a Node.js process at every server start. The registry is only used to build
    JupyterLab or install extensions, which a trainee's server never does (the extension manager
    is read-only, see ``config.TRAINEE_LAB_ARGS``). This gives jupyterlab the answer it uses when
    Node.js is absent (an empty yarn configuration, hence the default registry). Call it before
    ``jupyterlab`` is imported.
    """
    from atelier.upstream import jupyterlab

    jupyterlab.skip_yarn_config()


def import_server_modules() -> None:
    """Import what the server, Lab and the workbook view need (the CPU-bound part of a start)."""
    skip_yarn_config()
    import jupyter_server.serverapp  # noqa: F401
    import jupyterhub.singleuser  # noqa: F401
    import jupyterlab.labapp  # noqa: F401

    # The workbook view (and Voila, which it is) is loaded by every trainee's server.
    import atelier.hub_config.view.workbook  # noqa: F401


def cap_file_size(environ=os.environ) -> None:
    """Lower the file-size limit to ``ATELIER_FILE_SIZE_MB`` MiB, soft and hard, if it is set.

    On Kubernetes nothing runs as root before the server (on one machine the spawner's limits
    are set by root: :mod:`atelier.hub_config.servers.limits`); a process may always lower its own
    limits, and nothing it starts (kernels, terminals) can raise the hard one again.
    """
    import resource

    size = environ.get("ATELIER_FILE_SIZE_MB")
    if size:
        cap = int(size) << 20
        _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        if hard == resource.RLIM_INFINITY or hard > cap:
            resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))


def start_kernel_zygote(argv: list[str] | None = None) -> None:
    """Fork the server's kernel zygote; the server's kernels come from it, over Unix sockets.

    First thing in :func:`main`, while the process has one thread (``kernelzygote.py`` says why).
    Its provisioner is the server's default even when the zygote could not be forked: it then
    starts kernels the stock way, still over Unix sockets (``atelier.processes.kernelsockets``).
    ``argv`` is the server's command line (default: ``sys.argv`` as it is now: a server forked by
    the template gets a new list).
    """
    from atelier.hub_config.servers import kernelzygote
    from atelier.processes import kernelsockets

    argv = sys.argv if argv is None else argv
    kernelzygote.start()
    argv.extend(kernelsockets.arguments(kernelzygote.NAME))


def main() -> None:
    """Prepare the trainee's home, then hand over to ``jupyterhub-singleuser`` in this process."""
    logging.basicConfig(level=logging.INFO, format="[atelier %(levelname)s] %(message)s")
    cap_file_size()
    start_kernel_zygote()
    failure: list[BaseException] = []

    def deliver():
        try:
            prepare()
        except BaseException as error:  # re-raised below, in the main thread
            failure.append(error)

    delivery = threading.Thread(target=deliver, name="atelier-delivery")
    delivery.start()
    import_server_modules()
    delivery.join()
    if failure:
        raise failure[0]
    from jupyterhub.singleuser import main as singleuser_main

    sys.exit(singleuser_main())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--template"]:
        from atelier.hub_config.servers.servertemplate import serve

        serve(sys.argv[2], int(sys.argv[3]))
    else:
        main()
