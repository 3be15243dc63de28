"""A roster larger than one page of the hub's API reaches a running hub whole.

JupyterHub answers ``GET /users`` at most 200 at a time (``api_page_max_limit``), even to a
client that does not ask for pages. The IIOE's series had 400 trainees: pushing their cohorts
to a running hub must see every user the hub has, not the first 200.
"""

from __future__ import annotations

import pytest
import requests
from hubs import running_hub

from atelier.hub_config.people.runninghub import HubAPI, push_groups
from atelier.settings import load_settings

pytestmark = pytest.mark.server

#: More hub users than one page holds (200), named apart from the test roster's people.
MANY = [f"t{i:03d}" for i in range(260)]


@pytest.fixture(scope="module")
def hub():
    with running_hub() as instance:
        yield instance


def test_a_cohort_of_260_is_pushed_with_every_existing_user_seen(hub):
    """Does the push count only the one new person as created, and put all 261 in the group?"""
    api = HubAPI(load_settings(hub.settings_path))
    api.call("POST", "/users", json={"usernames": MANY})
    assert len(api.listing("/users")) >= len(MANY) + 4  # the test roster's four people too

    counts = push_groups(api, {"big": [*MANY, "newcomer"]})

    assert counts == {"users": 1, "added": len(MANY) + 1, "removed": 0}
    group = requests.get(
        f"{api.url}/groups/big", headers={"Authorization": f"token {api.token}"}, timeout=30
    ).json()
    assert sorted(group["users"]) == sorted([*MANY, "newcomer"])
    # Pushed again, nothing changes: every member and user is seen.
    assert push_groups(api, {"big": [*MANY, "newcomer"]}) == {"users": 0, "added": 0, "removed": 0}
