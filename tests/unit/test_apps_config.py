"""Public apps configuration as pure functions of the settings: hub service, Voila config."""

from __future__ import annotations

import pytest
from harness import FIXTURES
from traitlets.config import Config

from atelier.errors import AtelierError
from atelier.public import apps
from atelier.settings import load_settings

pytestmark = pytest.mark.unit


def test_hub_service_is_public_and_runs_as_its_own_account():
    """Does apply() add one public apps service, at /services/apps/, run as the service account?"""
    c = Config()
    c.JupyterHub.services = [{"name": "idle-culler", "command": ["x"]}]
    settings = load_settings(None, {"apps": {"port": 9123}})
    # Not touching the disk: the machine's apps account may serve a running hub (its settings).
    apps.apply(c, settings, touch_disk=False)
    apps.apply(c, settings, touch_disk=False)  # applying twice changes nothing
    names = [s["name"] for s in c.JupyterHub.services]
    assert names == ["idle-culler", "apps"]
    spec = c.JupyterHub.services[1]
    assert spec["url"] == "http://127.0.0.1:9123"
    assert "--base-url=/services/apps/" in spec["command"]
    assert spec["user"] == "atelier-apps"
    assert "oauth_client_id" not in spec and "api_token" not in spec


def test_voila_config_hides_sources_and_bounds_kernels():
    """Does Voila's config strip sources, hide tracebacks, pin the template, bound kernels?"""
    settings = load_settings(None, {"apps": {"pool_size": 2, "max_kernels": 30}})
    c = apps.voila_config(settings, base_url="/x/")
    assert c.Voila.base_url == "/x/"
    assert c.VoilaConfiguration.strip_sources is True
    assert c.VoilaConfiguration.show_tracebacks is False
    assert c.VoilaConfiguration.template == "atelier"
    assert c.VoilaConfiguration.allow_template_override == "NO"
    assert c.VoilaKernelManager.kernel_pools_config == {"default": {"pool_size": 2}}
    assert c.BoundedKernelManager.max_kernels == 30
    assert c.MappingKernelManager.cull_connected is True


def test_pools_must_leave_room_for_visitors():
    """Is a bound the preheated pools alone would fill refused, naming the keys?"""
    settings = load_settings(None, {"apps": {"pool_size": 4, "max_kernels": 12}})
    with pytest.raises(AtelierError, match=r"apps\.max_kernels"):
        apps.check_capacity(settings, 3)
    apps.check_capacity(settings, 2)


def test_only_app_notebooks_are_staged(tmp_path):
    """Are app notebooks staged with their data, and nothing else from their folders?"""
    staged = apps.stage_apps(FIXTURES / "apps", tmp_path / "served")
    assert sorted(p.as_posix() for p in staged) == [
        "broken/broken.en.ipynb",
        "planner/planner.en.ipynb",
        "planner/planner.fr.ipynb",
    ]
    files = sorted(
        p.relative_to(tmp_path / "served").as_posix() for p in tmp_path.rglob("*") if p.is_file()
    )
    assert files == [
        "broken/broken.en.ipynb",
        "planner/data/unit.txt",
        "planner/planner.en.ipynb",
        "planner/planner.fr.ipynb",
    ]
    planner = (tmp_path / "served/planner/planner.en.ipynb").read_text("utf-8")
    # The graded exercises (a solution and its test) are not part of the app.
    assert "SOLUTION-MARKER" not in planner and "weekly_mb" not in planner
    assert "SOURCE-MARKER" in planner  # the app's own code stays
    # Prose tagged not-in-app (instructions for the graded exercise) stays on the hub.
    assert "HUB-ONLY-MARKER" not in planner
    assert "HUB-ONLY-MARKER" in (FIXTURES / "apps/planner/planner.en.ipynb").read_text("utf-8")


def test_links_in_an_apps_folder_are_not_staged(tmp_path):
    """Root stages the apps: does a link in their data (to a secret, to /etc) stay behind?"""
    import shutil

    source = tmp_path / "source"
    shutil.copytree(FIXTURES / "apps" / "planner", source / "planner")
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET")
    (source / "planner" / "data" / "leak.txt").symlink_to(secret)
    (source / "planner" / "images").symlink_to("/etc")
    apps.stage_apps(source, tmp_path / "served")
    served = tmp_path / "served" / "planner"
    assert sorted(p.name for p in (served / "data").iterdir()) == ["unit.txt"]
    assert not (served / "images").exists()


def test_the_hub_serves_a_staged_copy_of_the_apps_folder_never_the_folder(tmp_path):
    """With apps.workbooks_dir set, does the service get the copy beside the repository?"""
    settings = load_settings(
        None,
        {
            "hub": {"workbooks_repo": str(tmp_path / "workbooks.git")},
            "apps": {"workbooks_dir": str(FIXTURES / "apps" / "planner")},
        },
    )
    command = apps.service(settings)["command"]
    assert f"--workbooks={tmp_path / 'apps-workbooks'}" in command
    assert not [arg for arg in command if str(FIXTURES) in arg]
    staged = apps.stage_for_service(settings)
    assert staged == tmp_path / "apps-workbooks"
    assert sorted(p.name for p in staged.iterdir()) == [
        "data",
        "planner.en.ipynb",
        "planner.fr.ipynb",
    ]
    assert all(p.stat().st_mode & 0o004 for p in [staged, *staged.rglob("*")])


def install_app(settings_path, workbooks, prefix):
    """``atelier install`` with these options (its steps are called one at a time)."""
    from atelier.hub_config.hub.installapp import InstallApp

    return InstallApp(
        settings_file=str(settings_path), workbooks=str(workbooks), prefix=str(prefix)
    )


def test_install_stages_the_apps_world_readable_as_the_default_folder(tmp_path, monkeypatch):
    """Does install stage the apps, world-readable, in the prefix, replaced whole on a re-run?"""
    settings = tmp_path / "settings.yaml"
    settings.write_text("apps:\n  service_user: ''\n")
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    monkeypatch.setenv("ATELIER_PREFIX", str(prefix))
    assert apps.default_workbooks_dir() != prefix / "apps-workbooks"  # the checkout's, before
    install_app(settings, FIXTURES / "apps", prefix).ensure_public_apps()
    staged = prefix / "apps-workbooks"
    assert apps.default_workbooks_dir() == staged
    assert (staged / "planner" / "planner.fr.ipynb").is_file()
    assert all(p.stat().st_mode & 0o004 for p in staged.rglob("*"))
    assert all(p.stat().st_mode & 0o001 for p in [staged, *staged.rglob("*")] if p.is_dir())
    # A re-run replaces the staged apps whole, leaving no temporary folder behind.
    (staged / "planner" / "stale.ipynb").write_text("{}")
    install_app(settings, FIXTURES / "apps", prefix).ensure_public_apps()
    assert not (staged / "planner" / "stale.ipynb").exists()
    assert sorted(p.name for p in prefix.iterdir()) == ["apps-workbooks"]
    # The apps service finds them with no apps.workbooks_dir.
    assert apps.find_apps(apps.default_workbooks_dir())


def test_the_apps_account_reads_only_the_apps_settings(tmp_path):
    """Does the apps service get its own settings file, with none of the site's secrets?"""
    import random
    import string
    import subprocess

    account = "atapps-" + "".join(random.choices(string.ascii_lowercase, k=4))
    site = tmp_path / "settings.yaml"
    site.write_text(
        f"apps:\n  service_user: {account}\n"
        "database:\n  url: postgresql+psycopg://atelier:SECRET@db.example.org/atelier\n"
    )
    site.chmod(0o600)
    try:
        install_app(site, "", tmp_path).ensure_public_apps()
        settings = load_settings(site)
        own = apps.service_settings_path(settings)
        assert apps.service(settings)["environment"]["ATELIER_SETTINGS"] == str(own)
        read = subprocess.run(
            ["runuser", "-u", account, "--", "cat", str(own)], capture_output=True, text=True
        )
        assert read.returncode == 0 and account in read.stdout
        assert "SECRET" not in read.stdout and "database" not in read.stdout
        assert load_settings(own)["apps"]["service_user"] == account
        # The account can neither change its settings nor read the site's.
        write = subprocess.run(["runuser", "-u", account, "--", "touch", str(own)])
        assert write.returncode != 0
        site_read = subprocess.run(["runuser", "-u", account, "--", "cat", str(site)])
        assert site_read.returncode != 0
    finally:
        subprocess.run(["userdel", "--remove", account], capture_output=True)
