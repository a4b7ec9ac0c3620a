"""A customer's Solution Manager profile (`connectors/solman/profile.py`): the bundled SMIN profile loads, a
mistake names its key, and the start-up self-check names every mapped code the system lacks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connectors.solman.profile import SolmanProfile, load_profile
from itsm_core.errors import ConfigError
from itsm_core.models import TicketStatus

SMIN = load_profile("solman_smin")


def variant(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((Path(__file__).parents[3] / "mappings" / "solman_smin.yaml").read_text())
    data.update(changes)
    path = tmp_path / "customer.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_bundled_smin_profile_maps_the_documented_codes():
    assert SMIN.status_of("SMIN", "E0005") == TicketStatus.RESOLVED
    assert SMIN.status_of("SMIN", "E0008") == TicketStatus.CLOSED
    assert SMIN.status_of("SMIN", "E0010") == TicketStatus.CANCELLED
    assert SMIN.status_of("SMIN", "E0099") is None and SMIN.status_of("ZMIN", "E0001") is None
    assert SMIN.text_types.description == "SU99" and SMIN.limits.short_text == 40


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"status_map": {"SMIN": {"X0001": "new"}}}, "X0001"),
        ({"status_map": {"SMIN": {"E0001": "finished"}}}, "finished"),
        ({"process_types": ["SMIN", "ZMIN"]}, "ZMIN"),
        ({"timezones": {"crm_timestamps": "Mars/Olympus"}}, "Mars/Olympus"),
        ({"transitions": {"resolved": {"ict": "E0003"}}}, "transitions.resolved.ict"),
        ({"lock_retry": 3}, "lock_retry"),
    ],
)
def test_a_mistake_in_a_profile_names_its_key(tmp_path, changes, named):
    with pytest.raises(ConfigError) as caught:
        load_profile(str(variant(tmp_path, **changes)))
    assert caught.value.key == "profile" and named in str(caught.value) and "customer.yaml" in str(caught.value)


def test_an_unknown_profile_name_says_where_it_looked():
    with pytest.raises(ConfigError, match="no profile named 'solman_nope' in mappings/"):
        load_profile("solman_nope")


def test_the_self_check_names_every_mapped_code_the_system_lacks():
    system = {"SMIN0001": {"E0001", "E0002", "E0003", "E0005", "E0008"}}  # no E0004, no E0010
    problems = SMIN.problems_against(system)
    assert problems == [
        "status E0004 (in_progress) is mapped for SMIN but status profile SMIN0001 has no such code",
        "status E0010 (cancelled) is mapped for SMIN but status profile SMIN0001 has no such code",
    ]
    assert SMIN.problems_against({"SMIN0001": set(SMIN.status_map["SMIN"]) | {"E0017"}}) == []
    assert SMIN.problems_against({}) == ["status profile SMIN0001 (process type SMIN) does not exist in the system"]


def test_a_profile_is_data_not_code():
    copy = SolmanProfile.model_validate(
        {"process_types": ["ZMIN"], "status_profiles": {"ZMIN": "ZMIN0001"},
         "status_map": {"ZMIN": {"E0001": "new", "E0017": "pending"}}, "priority_map": {"1": 1}}
    )  # fmt: skip
    assert copy.status_of("ZMIN", "E0017") == TicketStatus.PENDING
