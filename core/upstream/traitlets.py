"""traitlets: the per-class cache of immutable initial values.

Written against traitlets 5.16.1.

Private thing relied on: ``HasTraits`` classes keep ``_static_immutable_initial_values``, a dict
filled once when the class is set up (``MetaHasDescriptors.setup_class``) with the default of each
trait whose default is immutable (a ``Unicode``'s string, an ``Int``'s number); every new instance
starts from a copy of that dict (``HasTraits.__new__``), not from the trait's ``default_value``.

Why: the hub's server template (``hub_config/servers/servertemplate.py``, ``Rehome``) imports the
Jupyter server once with a placeholder HOME, then forks one server per trainee. Defaults computed
from HOME at import (``LabApp.user_settings_dir``, ``workspaces_dir``) must point into the trainee's
home in the forked server, as if it had imported them itself: the template rewrites both the
trait's ``default_value`` (public) and this cache (private), which is what instances actually get.
"""

from __future__ import annotations


def immutable_initial_values(klass: type) -> dict:
    """The dict of initial values ``klass``'s new instances copy (empty if it has none of its own).

    The dict itself, not a copy: a caller may change values in place (the server template puts the
    trainee's home where the template's was).
    """
    return klass.__dict__.get("_static_immutable_initial_values", {})
