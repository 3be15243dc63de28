"""The login page: the visitor's language, and JupyterHub's own template extended."""

from __future__ import annotations

from pathlib import Path

import jinja2
import jupyterhub
import pytest

from atelier.hub_config.people.loginpage import (
    TEMPLATES,
    accepted_languages,
    choose_language,
    login_links,
)
from atelier.languages import words

pytestmark = pytest.mark.unit


def test_accept_language_is_ranked_by_quality():
    """Are the browser's languages taken best first, by q-value, ignoring regions?"""
    assert accepted_languages("de;q=0.2, fr-CA;q=0.8, en-GB") == ["en", "fr", "de"]
    assert accepted_languages("fr;q=0, en;q=bad") == []
    assert accepted_languages("") == []


def test_the_switch_wins_over_the_cookie_which_wins_over_the_browser():
    """Is the page's language the switch's, else the remembered one, else the browser's, else en?"""
    assert choose_language("fr", "en", "en") == "fr"
    assert choose_language("", "fr", "en") == "fr"
    assert choose_language("xx", "zz", "de, fr;q=0.5") == "fr"
    assert choose_language(None, None, "de") == "en"


def _render(**context) -> str:
    stock = Path(jupyterhub.__file__).parents[3] / "share" / "jupyterhub" / "templates"
    if not stock.is_dir():  # installed with --prefix: share/ sits beside lib/
        stock = Path(jupyterhub.__file__).parents[4] / "share" / "jupyterhub" / "templates"
    loader = jinja2.ChoiceLoader(
        [
            jinja2.PrefixLoader({"templates": jinja2.FileSystemLoader([str(stock)])}, "/"),
            jinja2.FileSystemLoader([str(TEMPLATES), str(stock)]),
        ]
    )
    env = jinja2.Environment(loader=loader, autoescape=True)
    base = {
        "static_url": lambda path, **_: f"/hub/static/{path}",
        "base_url": "/hub/",
        "prefix": "/",
        "user": None,
        "login_url": "/hub/login",
        "logout_url": "/hub/logout",
        "authenticator_login_url": "/hub/login?next=",
        "xsrf": "token",
        "services": [],
        "parsed_scopes": {},
        "expanded_scopes": set(),
        "version_hash": "",
        "authenticator": None,
        "custom_html": "",
        "login_service": "",
        "username": "",
        "login_error": None,
        "announcement": None,
    }
    return env.get_template("login.html").render(**{**base, **context})


def test_the_login_page_links_to_the_public_apps_and_the_library_in_french():
    """Does the French page link to the apps and the library, with French words and the switch?"""
    settings = {"apps": {"on_hub": True}, "hub": {"library_url": "https://example.org/library/"}}
    page = _render(
        atelier_login={
            "language": "fr",
            "text": words("atelier.hub_config.people", "login", "fr"),
            "switch": [{"code": "en", "name": "English", "url": "/hub/login?lang=en"}],
        },
        atelier_links=login_links(settings),
    )
    assert 'lang="fr"' in page and "Mot de passe" in page
    assert 'href="/services/apps/"' in page and 'href="https://example.org/library/"' in page
    assert 'href="/hub/login?lang=en"' in page


def test_without_apps_or_library_there_is_no_public_section():
    """With the apps off and no library address, is there no dead link?"""
    settings = {"apps": {"on_hub": False}, "hub": {"library_url": ""}}
    page = _render(
        atelier_login={
            "language": "en",
            "text": words("atelier.hub_config.people", "login", "en"),
            "switch": [],
        },
        atelier_links=login_links(settings),
    )
    assert "Sign in" in page and 'class="public"' not in page


def test_another_authenticator_gets_the_stock_page():
    """Without Atelier's login handler, is the page JupyterHub's own form?"""
    page = _render()
    assert 'class="atelier-login"' not in page and 'name="password"' in page
