"""The processes Atelier starts and how they are confined, for every room that starts one.

:mod:`.forking` (template processes: import once, freeze, fork, die with the parent),
:mod:`.mounts` (private mount namespaces and size-capped scratch for someone else's code),
:mod:`.ports` (a free loopback port for a server), :mod:`.kernelsockets` (kernels over Unix
sockets, never loopback TCP ports), :mod:`.priority` (the hub and its proxy first on a full
machine) and :mod:`.jupyterpath` (a room's Jupyter data folder first on a process's
``JUPYTER_PATH``).
"""
