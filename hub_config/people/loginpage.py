"""The login page in the visitor's language: JupyterHub's own page, through its template mechanism.

Rule: the page is JupyterHub's ``login.html`` (``c.JupyterHub.template_paths`` puts
``hub_templates/login.html`` first; it extends the stock ``templates/login.html``), so the form,
its fields and its XSRF token stay JupyterHub's. What JupyterHub's templates cannot know is the
request, so :class:`LoginHandler` (the stock handler, served by
:class:`~atelier.hub_config.people.authenticator.ImportPasswordAuthenticator`) adds one variable,
``atelier_login``: the language (:func:`choose_language`: the switch's ``?lang=``, remembered in a
cookie, else the browser's ``Accept-Language``, else English), its words from
``locales/<language>.json`` and the address of the switch. Links to the public apps and the offline
library come from the settings through ``c.JupyterHub.template_vars`` (:func:`login_links`). With
another authenticator the template shows JupyterHub's stock form.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from jupyterhub.handlers.login import LoginHandler as StockLoginHandler
from tornado.httputil import url_concat

from atelier.languages import LANGUAGES, words

PACKAGE = "atelier.hub_config.people"
#: The folder ``c.JupyterHub.template_paths`` starts with.
TEMPLATES = Path(__file__).with_name("hub_templates")
#: The cookie that remembers a language chosen with the switch (a year).
LANGUAGE_COOKIE = "atelier-language"
COOKIE_DAYS = 365


def accepted_languages(header: str) -> list[str]:
    """The primary language tags of an ``Accept-Language`` header, best first (by q-value)."""
    ranked = []
    for position, part in enumerate(header.split(",")[:32]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary and quality > 0:
            ranked.append((-quality, position, primary))
    return [primary for _, _, primary in sorted(ranked)]


def choose_language(asked: str | None, remembered: str | None, accept: str | None) -> str:
    """The language: the switch's choice, else the cookie's, else the browser's, else English."""
    for choice in (asked, remembered):
        if choice in LANGUAGES:
            return choice
    for primary in accepted_languages(accept or ""):
        if primary in LANGUAGES:
            return primary
    return LANGUAGES[0]


def login_links(settings: Mapping) -> dict[str, str]:
    """The public addresses the login page links to: the apps (when on the hub), the library."""
    return {
        "apps": "/services/apps/" if settings["apps"]["on_hub"] else "",
        "library": settings["hub"]["library_url"],
    }


class LoginHandler(StockLoginHandler):
    """JupyterHub's login handler, with the page's language and words for ``login.html``."""

    def language(self) -> str:
        """The language of this request (see :func:`choose_language`)."""
        asked = self.get_argument("lang", "")
        cookie = self.get_cookie(LANGUAGE_COOKIE, "")
        return choose_language(asked, cookie, self.request.headers.get("Accept-Language"))

    async def get(self):
        """Remember a language chosen with the switch, then show the page as JupyterHub does."""
        asked = self.get_argument("lang", "")
        if asked in LANGUAGES:
            self.set_cookie(
                LANGUAGE_COOKIE,
                asked,
                path=self.hub.base_url,
                expires_days=COOKIE_DAYS,
                samesite="Lax",
            )
        await super().get()

    def render_template(self, name, **ns):
        """Add ``atelier_login`` to the login page's variables."""
        if name == "login.html":
            language = self.language()
            switch = []
            for code in LANGUAGES:
                if code == language:
                    continue
                query = {"lang": code}
                if self.get_argument("next", ""):
                    query["next"] = self.get_argument("next")
                label = words(PACKAGE, "login", code)["language_name"]
                switch.append(
                    {"code": code, "name": label, "url": url_concat(self.request.path, query)}
                )
            ns["atelier_login"] = {
                "language": language,
                "text": words(PACKAGE, "login", language),
                "switch": switch,
            }
        return super().render_template(name, **ns)
