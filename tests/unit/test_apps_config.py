"""Public apps configuration as pure functions of the settings: hub service, Voila config."""

from __future__ import annotations

import pytest
from atelier.hub_config import apps
from conftest import FIXTURES
from traitlets.config import Config

from atelier.errors import AtelierError
from atelier.settings import load_settings

pytestmark = pytest.mark.unit


def test_hub_service_is_public_and_runs_as_its_own_account():
    """Does apply() add one public apps service, at /services/apps/, run as the service account?"""
    c = Config()
    c.JupyterHub.services = [{"name": "idle-culler", "command": ["x"]}]
    settings = load_settings(None, {"apps": {"port": 9123}})
    apps.apply(c, settings)
    apps.apply(c, settings)  # applying twice changes nothing
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
