"""Room data folders first on JUPYTER_PATH: what Voila and nbconvert search first."""

from __future__ import annotations

import os

from atelier.processes.jupyterpath import prepend


def test_the_folder_comes_first_and_the_rest_is_kept_once():
    """Is the room's folder first, each other entry kept in order, and nothing doubled?"""
    join = os.pathsep.join
    assert prepend("/room", None) == "/room"
    assert prepend("/room", "") == "/room"
    assert prepend("/room", join(["/a", "/room", "/b"])) == join(["/room", "/a", "/b"])
    # Applying it twice (a service restarted with the environment it set) changes nothing.
    once = prepend("/room", join(["/a", "", "/b"]))
    assert prepend("/room", once) == once == join(["/room", "/a", "/b"])
