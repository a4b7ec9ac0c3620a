"""The names a ticket document carries: users with their default e-mail, read in bulk when that is cheaper."""

from __future__ import annotations

import re

from simulators.glpi.simulator import GlpiSimulator
from tests.support.glpi import GlpiHub

PER_USER = re.compile(r"^/User/\d+/UserEmail")


def test_user_emails_come_from_one_walk_when_that_is_cheaper_than_a_list_per_user(tmp_path):
    with GlpiSimulator(tickets=5, seed=3) as sim:
        hub = GlpiHub.start(sim, f"sqlite:///{tmp_path / 'hub.db'}", tmp_path, assets=[])
        users = sorted(row["id"] for row in sim.rows("User"))
        assert len(users) > 2
        connector = hub.runtime().connector
        try:
            before = len(sim.requests)
            connector.names.load([{"users": ("User", set(users))}])
            walked = [target for _, target, _ in list(sim.requests)[before:]]
            from_walk = {user_id: name["email"] for user_id, name in connector.names.tables["User"].items()}
            expected = {}
            for user_id in users:
                emails = connector.client.all_sub_items("User", user_id, "UserEmail")
                default = next((e for e in emails if e.get("is_default")), emails[0] if emails else {})
                expected[str(user_id)] = default.get("email")
            one = len(sim.requests)
            connector.names.tables.clear()
            connector.names.load([{"users": ("User", {users[0]})}])
            alone = [target for _, target, _ in list(sim.requests)[one:]]
        finally:
            connector.close()
    assert not [target for target in walked if PER_USER.match(target)]
    assert [target for target in walked if target.startswith("/UserEmail")]
    assert from_walk == expected and any(expected.values())
    assert [target for target in alone if PER_USER.match(target)]  # one user: its own list, not a walk
