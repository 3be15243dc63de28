"""The hub's configuration layers, as pure functions on a fresh traitlets Config."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from atelier import accounts
from atelier.errors import SettingsError
from atelier.hub_config.hub import config
from atelier.hub_config.servers import delivery, importfix
from atelier.processes import priority
from atelier.roster import parse_roster
from atelier.settings import load_settings

pytestmark = pytest.mark.unit

ROSTER = """username,full name,email,institution,country,language,role,cohort
alice,Alice,alice@example.org,U,KE,en,trainee,x
chloe,Chloé,chloe@example.org,U,SN,fr,trainee,y
fiona,Fiona,fiona@example.org,U,SN,en,facilitator,x
"""


@pytest.fixture
def settings(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(f"hub:\n  state_dir: {tmp_path / 'state'}\n  port: 9999\n")
    return load_settings(path)


def test_invariants_keep_servers_and_proxy_across_restarts():
    """Do the invariants leave servers and the proxy running when the hub stops?"""
    c = Config()
    config.apply_invariants(c)
    assert c.JupyterHub.cleanup_servers is False
    assert c.ConfigurableHTTPProxy.should_start is False
    assert c.JupyterHub.spawner_class.endswith("AtelierSpawner")
    assert c.Spawner.default_url == "/atelier/home"
    assert (
        "--ServerApp.jpserver_extensions=atelier.hub_config.view.extension=True" in c.Spawner.args
    )


def test_settings_put_state_in_the_state_dir_and_run_the_culler(settings, tmp_path):
    """Do settings put the database and cookie secret in the state dir and add the culler?"""
    c = Config()
    config.apply_settings(c, settings)
    assert c.JupyterHub.port == 9999
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'state' / 'jupyterhub.sqlite'}"
    assert c.JupyterHub.cookie_secret_file == str(tmp_path / "state" / "jupyterhub_cookie_secret")
    assert c.JupyterHub.concurrent_spawn_limit == 10
    # The home quota watchdog runs beside the culler (hub.limits; hub_config/servers/quota.py).
    assert [s["name"] for s in c.JupyterHub.services] == ["idle-culler", "atelier-quota"]
    assert c.JupyterHub.load_roles[0]["services"] == ["idle-culler"]
    assert c.JupyterHub.authenticator_class.endswith("ImportPasswordAuthenticator")


def test_the_login_page_is_jupyterhubs_extended_in_the_visitors_language(settings):
    """Is Atelier's login.html first on JupyterHub's template path, served by its login handler?"""
    from pathlib import Path

    from atelier.hub_config.people.authenticator import ImportPasswordAuthenticator
    from atelier.hub_config.people.loginpage import LoginHandler

    c = Config()
    config.apply_settings(c, settings)
    (folder,) = c.JupyterHub.template_paths
    assert "templates/login.html" in (Path(folder) / "login.html").read_text()
    assert c.JupyterHub.template_vars["atelier_links"] == {"apps": "/services/apps/", "library": ""}
    assert ImportPasswordAuthenticator().get_handlers(None) == [("/login", LoginHandler)]


def test_trainee_servers_skip_what_they_never_use():
    """Do trainee servers start without the LSP, nbgitpuller's extension and the PyPI manager?"""
    c = Config()
    config.apply_invariants(c)
    assert "--ServerApp.jpserver_extensions=jupyter_lsp=False" in c.Spawner.args
    assert "--LabApp.extension_manager=readonly" in c.Spawner.args


def test_trainee_servers_serve_the_workbook_view():
    """Does every trainee server load the workbook view and the Voila extension it needs?"""
    c = Config()
    config.apply_invariants(c)
    on = "--ServerApp.jpserver_extensions={}=True"
    assert on.format("atelier.hub_config.view.extension") in c.Spawner.args
    assert on.format("voila.server_extension") in c.Spawner.args
    assert not any("voila.server_extension=False" in arg for arg in c.Spawner.args)


def test_the_roster_service_exists_only_with_its_token(settings, tmp_path):
    """Is the roster import's hub service registered, with narrow scopes, once it has a token?"""
    c = Config()
    config.apply_settings(c, settings)
    assert config.ROSTER_SERVICE not in [s["name"] for s in c.JupyterHub.services]
    token = config.state_paths(settings)["api_token"]
    token.parent.mkdir(parents=True)
    token.write_text("secret-token\n")
    c = Config()
    config.apply_settings(c, settings)
    service = {s["name"]: s for s in c.JupyterHub.services}[config.ROSTER_SERVICE]
    assert service["api_token"] == "secret-token" and "command" not in service
    role = {r["name"]: r for r in c.JupyterHub.load_roles}[config.ROSTER_SERVICE]
    assert set(role["scopes"]) == {
        "admin:users",
        "admin:groups",
        "list:users",
        "list:groups",
        # `atelier servers start`: start servers (as their trainees), follow their progress.
        "start:servers",
        "read:servers",
    }


def test_an_oauth_authenticator_gets_its_config(tmp_path):
    """Can the settings choose an institution's OAuth authenticator and configure it?"""
    path = tmp_path / "settings.yaml"
    path.write_text(
        "hub:\n  authenticator:\n    class: oauthenticator.generic.GenericOAuthenticator\n"
        "    config: {client_id: atelier, username_claim: preferred_username}\n"
    )
    c = Config()
    config.apply_settings(c, load_settings(path))
    assert c.JupyterHub.authenticator_class == "oauthenticator.generic.GenericOAuthenticator"
    assert c.GenericOAuthenticator.client_id == "atelier"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("hub:\n  portt: 80\n", "hub.portt"),
        ("hub:\n  port: eighty\n", "hub.port"),
        ("hub:\n  culler:\n    timeout: 5\n", "hub.culler.timeout"),
        ("accounts:\n  prefix: Root\n", "accounts.prefix"),
    ],
)
def test_an_unknown_or_wrong_key_is_an_error_naming_the_key(tmp_path, text, key):
    """Is a misspelt or mistyped settings key refused with its dotted name?"""
    path = tmp_path / "settings.yaml"
    path.write_text(text)
    with pytest.raises(SettingsError, match=f"'{key}'"):
        load_settings(path)


def test_cohorts_become_groups_and_facilitator_roles_are_filtered(settings):
    """Does each cohort become a group, with a facilitator role limited to that cohort?"""
    people = parse_roster(ROSTER)
    accounts.save_people(settings["hub"]["state_dir"], {p.username: p for p in people})
    c = Config()
    config.apply_settings(c, settings)
    config.apply_roster(c, settings)
    assert c.JupyterHub.load_groups["cohort-x"] == {"users": ["alice"]}
    assert c.JupyterHub.load_groups["facilitators-x"] == {"users": ["fiona"]}
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "facilitator-x")
    assert role["groups"] == ["facilitators-x"]
    assert all(s.endswith("!group=cohort-x") for s in role["scopes"] if s != "admin-ui")
    assert c.Authenticator.allowed_users == {"alice", "chloe", "fiona"}


def test_a_person_imported_under_a_name_now_reserved_cannot_log_in(settings, capsys):
    """Is a stored ``grader-x`` (accepted before names were reserved) left out, with a message?"""
    from atelier.roster import Person

    people = parse_roster(ROSTER)
    old = Person("grader-x", "G", "g@example.org", "", "", "en", "trainee", ("x",))
    stored = {p.username: p for p in [*people, old]}
    accounts.save_people(settings["hub"]["state_dir"], stored)
    c = Config()
    config.apply_settings(c, settings)
    config.apply_roster(c, settings)
    assert c.Authenticator.allowed_users == {"alice", "chloe", "fiona"}
    assert "grader-x" not in c.JupyterHub.load_groups["cohort-x"]["users"]
    assert "grader-x cannot log in" in capsys.readouterr().err


def test_passwords_are_stored_hashed_and_checked():
    """Is a password checked against its scrypt hash, never stored in clear?"""
    password = accounts.new_password()
    stored = accounts.hash_password(password)
    assert password not in stored
    assert accounts.check_password(password, stored)
    assert not accounts.check_password(password + "x", stored)


def test_private_files_are_written_mode_600(tmp_path):
    """Are state files written atomically and readable by their owner only?"""
    accounts.save_password_hashes(tmp_path, {"alice": "scrypt$00$00"})
    assert (tmp_path / "passwords.json").stat().st_mode & 0o777 == 0o600


def graded_notebook(text: str):
    """A notebook with one autograded answer cell whose solution is ``text``."""
    from nbformat.v4 import new_code_cell, new_notebook

    cell = new_code_cell(f"### BEGIN SOLUTION\nanswer = {text!r}\n### END SOLUTION")
    cell.metadata["nbgrader"] = {
        "solution": True,
        "grade": False,
        "locked": False,
        "grade_id": "answer",
        "schema_version": 3,
    }
    return new_notebook(cells=[cell])


def test_publishing_workbooks_splits_languages_and_commits_only_changes(tmp_path):
    """Does each language branch get its own notebooks plus shared files, with no empty commits?"""
    import nbformat

    source = tmp_path / "wb" / "one"
    (source / "answers").mkdir(parents=True)
    for name in ("intro.en.ipynb", "intro.fr.ipynb"):
        nbformat.write(graded_notebook("secret"), source / name)
    (source / "data.csv").write_text("a,b\n")
    (source / "answers" / "one.en.json").write_text("{}")
    repo = tmp_path / "repo.git"
    assert delivery.publish_workbooks(tmp_path / "wb", repo) == {"en": "created", "fr": "created"}
    unchanged = {"en": "unchanged", "fr": "unchanged"}
    assert delivery.publish_workbooks(tmp_path / "wb", repo) == unchanged
    files = delivery._git("--git-dir", str(repo), "ls-tree", "-r", "--name-only", "fr").split()
    assert files == ["one/data.csv", "one/intro.fr.ipynb"]
    nbformat.write(graded_notebook("changed"), source / "intro.fr.ipynb")
    assert delivery.publish_workbooks(tmp_path / "wb", repo) == {"en": "unchanged", "fr": "updated"}


def test_trainees_receive_the_student_version_without_solutions_or_answer_sets(tmp_path):
    """Are solutions stripped and answer sets left out of what trainees receive?"""
    import nbformat

    source = tmp_path / "wb" / "one"
    (source / "answers").mkdir(parents=True)
    nbformat.write(graded_notebook("secret"), source / "intro.en.ipynb")
    (source / "answers" / "one.en.json").write_text('{"cells": {"answer": "secret"}}')
    repo = tmp_path / "repo.git"
    delivery.publish_workbooks(tmp_path / "wb", repo)
    delivered = delivery._git("--git-dir", str(repo), "show", "en:one/intro.en.ipynb")
    assert "secret" not in delivered and "BEGIN SOLUTION" not in delivered
    assert "answers" not in delivery._git("--git-dir", str(repo), "ls-tree", "-r", "en")


def test_the_import_fix_defers_rfc3987_syntax_and_keeps_iri_checks(tmp_path):
    """Does importing jsonschema skip the Lark grammars while IRI validation still works?"""
    import subprocess
    import sys

    code = (
        "import atelier.hub_config.servers.importfix, sys, jsonschema;"
        "assert 'lark' not in sys.modules, 'lark imported';"
        "from jsonschema import FormatChecker;"
        "assert FormatChecker().conforms('http://example.org/é', 'iri');"
        "assert not FormatChecker().conforms('::', 'iri');"
        "assert 'lark' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert importfix.PTH_LINE.startswith("import ")


@pytest.fixture(autouse=True)
def machine_apps_account_untouched(monkeypatch):
    """Leave the machine's apps account alone (a running hub's service reads its settings).

    As root, the apps plugin writes that account's settings file; these tests write nothing there.
    """
    from atelier.public import apps

    monkeypatch.setattr(apps, "write_service_settings", lambda settings: None)


def hub_settings(tmp_path, **apps):
    """Settings with every folder in ``tmp_path`` (grading writes its trainee config there)."""
    return load_settings(
        None,
        {
            "hub": {"state_dir": str(tmp_path / "state")},
            "grading": {
                "courses_root": str(tmp_path / "courses"),
                "exchange_root": str(tmp_path / "exchange"),
            },
            "apps": apps,
        },
    )


def build_hub_config(settings):
    """The hub's configuration as ``jupyterhub_config.py`` builds it (layers 1 to 4)."""
    c = Config()
    config.apply_invariants(c)
    config.apply_settings(c, settings)
    config.apply_roster(c, settings)
    return c, config.apply_plugins(c, settings)


def test_the_real_hub_runs_the_public_apps_and_the_dashboard_by_default(tmp_path):
    """Does the real hub config add the public apps (no login) and the dashboard, by default?"""
    c, applied = build_hub_config(hub_settings(tmp_path))
    assert applied == [
        "atelier.grading.hubconfig",
        "atelier.grading.dashboard.dashboard",
        "atelier.public.apps",
        "atelier.slowlink",
    ]
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert set(services) == {"idle-culler", "atelier-quota", "apps", "dashboard"}
    # Each runs at niceness 0, not the hub's (atelier.processes.priority), and is wrapped once.
    for spec in services.values():
        assert spec["command"][:4] == priority.command([])
        assert spec["command"][4:8] != priority.command([])
    public = services["apps"]
    assert "--base-url=/services/apps/" in public["command"]
    assert public["user"] == "atelier-apps"
    # No login: the hub gives the apps no OAuth client, and no role grants access to them.
    assert not {"oauth_client_id", "oauth_no_confirm", "api_token"} & set(public)
    assert not [r for r in c.JupyterHub.load_roles if "service=apps" in str(r["scopes"])]
    dashboard = services["dashboard"]
    assert dashboard["url"] == "http://127.0.0.1:8867"
    # A service the hub starts gets time to come up on a loaded machine (30 s makes the hub exit).
    assert public["timeout"] == dashboard["timeout"] == config.SERVICE_START_TIMEOUT > 30
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "atelier-dashboard")
    assert role["scopes"] == ["access:services!service=dashboard"]


@pytest.mark.parametrize(
    "switches, absent",
    [
        ({"on_hub": False}, {"apps"}),
        ({"dashboard": False}, {"dashboard"}),
        ({"on_hub": False, "dashboard": False}, {"apps", "dashboard"}),
    ],
)
def test_the_apps_and_dashboard_services_can_be_turned_off(tmp_path, switches, absent):
    """Do apps.on_hub / apps.dashboard false leave their service (and role) out of the hub?"""
    c, _ = build_hub_config(hub_settings(tmp_path, **switches))
    names = {s["name"] for s in c.JupyterHub.services}
    assert names == {"idle-culler", "atelier-quota", "apps", "dashboard"} - absent
    roles = {r["name"] for r in c.JupyterHub.load_roles}
    assert ("atelier-dashboard" in roles) == ("dashboard" not in absent)


def test_the_dashboard_is_granted_to_every_cohorts_facilitators(tmp_path):
    """Does the dashboard, applied after the roster layer, grant its role to every cohort?"""
    settings = hub_settings(tmp_path)
    people = parse_roster(ROSTER)
    accounts.save_people(settings["hub"]["state_dir"], {p.username: p for p in people})
    c = Config()
    config.apply_settings(c, settings)
    config.apply_roster(c, settings)
    # Grading left out: as root it would create the cohorts' grader accounts.
    plugins = [p for p in config.PLUGINS if p[0] != "atelier.grading.hubconfig"]
    config.apply_plugins(c, settings, plugins)
    role = next(r for r in c.JupyterHub.load_roles if r["name"] == "atelier-dashboard")
    assert role["groups"] == ["facilitators-x", "facilitators-y"]
    # The roster's own roles are kept beside it.
    assert {"facilitator-x", "facilitator-y"} <= {r["name"] for r in c.JupyterHub.load_roles}


def test_trainee_servers_cull_idle_kernels_even_with_the_page_open(tmp_path):
    """Does ``hub.culler.kernel_timeout`` reach every trainee server's command line?

    Connected kernels are culled too (a workbook left open in a tab is the load case), busy ones
    never; the invariants' options stay.
    """
    path = tmp_path / "settings.yaml"
    path.write_text(
        f"hub:\n  state_dir: {tmp_path / 'state'}\n"
        "  culler:\n    kernel_timeout: 120\n    kernel_every: 15\n"
    )
    c = Config()
    config.apply_invariants(c)
    config.apply_settings(c, load_settings(path))
    args = list(c.Spawner.args)
    assert "--MappingKernelManager.cull_idle_timeout=120" in args
    assert "--MappingKernelManager.cull_interval=15" in args
    assert "--MappingKernelManager.cull_connected=True" in args
    assert "--MappingKernelManager.cull_busy=False" in args
    assert "--LabApp.extension_manager=readonly" in args
    assert "--ServerApp.jpserver_extensions=atelier.hub_config.view.extension=True" in args


def test_kernel_culling_is_on_by_default_and_zero_turns_it_off(settings, tmp_path):
    """Are idle kernels culled with the shipped defaults, and not at all with 0?"""
    c = Config()
    config.apply_settings(c, settings)
    assert "--MappingKernelManager.cull_idle_timeout=900" in c.Spawner.args
    path = tmp_path / "off.yaml"
    path.write_text(f"hub:\n  state_dir: {tmp_path / 'state'}\n  culler:\n    kernel_timeout: 0\n")
    c = Config()
    config.apply_settings(c, load_settings(path))
    assert not any("MappingKernelManager" in arg for arg in c.Spawner.args)


def test_a_negative_kernel_timeout_is_refused_by_name(tmp_path):
    """Does a negative ``hub.culler.kernel_timeout`` stop atelier with a message naming it?"""
    path = tmp_path / "settings.yaml"
    path.write_text("hub:\n  culler:\n    kernel_timeout: -5\n")
    with pytest.raises(SettingsError, match="kernel_timeout"):
        load_settings(path)


@pytest.mark.parametrize(("timeout", "reports"), [(900, 225), (3600, 300), (120, 30), (60, 15)])
def test_use_reaches_the_culler_four_times_per_timeout(tmp_path, timeout, reports):
    """Do servers and the hub report activity well within the culler's timeout, never past 300 s?

    With JupyterHub's fixed 300 s, a 120 s timeout stopped trainees at work (a widget event every
    ten seconds did not reach the culler in time).
    """
    path = tmp_path / "settings.yaml"
    path.write_text(f"hub:\n  state_dir: {tmp_path / 'state'}\n  culler:\n    timeout: {timeout}\n")
    c = Config()
    config.apply_settings(c, load_settings(path))
    assert c.JupyterHub.last_activity_interval == reports
    assert c.Spawner.environment["JUPYTERHUB_ACTIVITY_INTERVAL"] == str(reports)
    assert reports * 4 <= timeout or reports == 15


def test_without_the_culler_activity_is_reported_at_jupyterhubs_pace(tmp_path):
    """With ``hub.culler.enabled`` false nothing needs faster reports: JupyterHub's 300 s."""
    path = tmp_path / "settings.yaml"
    path.write_text(f"hub:\n  state_dir: {tmp_path / 'state'}\n  culler:\n    enabled: false\n")
    c = Config()
    config.apply_settings(c, load_settings(path))
    assert c.JupyterHub.last_activity_interval == 300
