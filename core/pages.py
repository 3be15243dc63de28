"""Every HTML page Atelier renders comes from a Jinja2 template with autoescape on.

Rule: what people wrote (names, roster columns and their headers, cohorts, workbook titles and
summaries, answers) reaches a page only as a template variable, which Jinja2 escapes; no room builds
HTML with f-strings, ``%`` or ``str.replace``. :class:`markupsafe.Markup` is kept for HTML that
Atelier produced itself (nbconvert's rendering of a workbook, a macro's output), never for a value
someone typed. Links go through the ``url`` filter, which lets only relative addresses and
``http``, ``https`` and ``mailto`` through: escaping alone does not stop a ``javascript:`` link.

Each room keeps its templates in its own ``templates/`` folder; :func:`render` finds them by the
room's package name (``atelier.public``, ``atelier.grading.dashboard``, ...), with one
environment per room, built once.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import jinja2
from markupsafe import Markup

#: Schemes a link on an Atelier page may use; anything else (``javascript:``, ``data:``,
#: ``vbscript:``) becomes a link to nothing.
SAFE_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^\s*([a-zA-Z][a-zA-Z0-9+.\-]*)\s*:")
#: Characters browsers drop from a URL before reading its scheme (``java\tscript:`` runs).
_IGNORED_IN_URL = re.compile(r"[\x00-\x20\x7f]")


def safe_url(value) -> str:
    """``value`` if it is a relative address or uses a :data:`SAFE_SCHEMES` scheme, else ``#``."""
    text = str(value)
    scheme = _SCHEME.match(_IGNORED_IN_URL.sub("", text))
    if scheme and scheme.group(1).lower() not in SAFE_SCHEMES:
        return "#"
    return text


@functools.cache
def environment(package: str) -> jinja2.Environment:
    """The Jinja2 environment of a room: its ``templates/`` folder, autoescape on, strict names."""
    folder = resources.files(package).joinpath("templates")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        # Every template escapes, whatever its file name: a page must not depend on its suffix.
        autoescape=True,
        # A misspelt variable is an error when the page is built, not an empty spot on the page.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["url"] = safe_url
    return env


def render(package: str, name: str, **context) -> str:
    """Render the template ``name`` of the room ``package`` with ``context`` (escaped)."""
    return environment(package).get_template(name).render(**context)


def macro(package: str, name: str, macro_name: str, *args, **kwargs) -> Markup:
    """Call the macro ``macro_name`` of the template ``name`` (a fragment, escaped like a page)."""
    return getattr(environment(package).get_template(name).module, macro_name)(*args, **kwargs)


def trusted(html: str) -> Markup:
    """Mark HTML that Atelier itself produced (never text someone typed) as safe to insert."""
    return Markup(html)
