"""GLPI asset documents → decoded dicts → canonical CIs (pure: no simulator, no store)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from connectors.glpi.decode_assets import decode_asset
from itsm_core.errors import MappingError, ParseError
from itsm_core.mapping import load_ci_mapping, map_ci
from itsm_core.models import CIStatus

PARIS = ZoneInfo("Europe/Paris")
MAPPING = load_ci_mapping("glpi_assets")


def computer(**row) -> dict:
    return {
        "itemtype": "Computer",
        "item": {
            "id": 12,
            "entities_id": 1,
            "name": "PC-PAR-00012 &#60;spare&#62;",
            "serial": "ABC123",
            "otherserial": "INV-000012",
            "uuid": "u-1",
            "states_id": 1,
            "locations_id": 2,
            "manufacturers_id": 3,
            "computermodels_id": 1,
            "computertypes_id": 2,
            "users_id": 7,
            "groups_id": 0,
            "is_deleted": 0,
            "is_dynamic": 1,
            "comment": "Imported by the inventory agent",
            "date_mod": "2026-07-01 10:00:00",
            "date_creation": "2025-01-01 08:00:00",
            "last_inventory_update": "0000-00-00 00:00:00",
            **row,
        },
        "installations": [
            {"id": 1, "softwareversions_id": 4, "is_deleted": 0},
            {"id": 2, "softwareversions_id": 2, "is_deleted": 0},
            {"id": 3, "softwareversions_id": 9, "is_deleted": 1},
        ],
        "names": {
            "entities": {"1": "Root entity &#62; Paris"},
            "states": {"1": "In use"},
            "locations": {"2": "B&#226;timent A"},
            "manufacturers": {"3": "Lenovo"},
            "models": {"1": "ThinkPad T14"},
            "types": {"2": "Desktop"},
            "users": {"7": {"name": "jdoe", "email": "jdoe@example.fr"}},
            "groups": {},
        },
    }


def payload(document: dict) -> bytes:
    return json.dumps(document).encode()


def test_a_computer_is_decoded_once_with_its_names_dates_and_installed_software():
    decoded = decode_asset(payload(computer()), PARIS)
    assert decoded["external_id"] == "Computer/12"
    assert decoded["name"] == "PC-PAR-00012 <spare>"
    assert decoded["entity"] == "Root entity > Paris" and decoded["location"] == "Bâtiment A"
    assert (decoded["state"], decoded["lifecycle"], decoded["is_deleted"]) == ("In use", "In use", False)
    assert (decoded["manufacturer"], decoded["model"], decoded["type"]) == ("Lenovo", "ThinkPad T14", "Desktop")
    assert decoded["user"] == "jdoe@example.fr" and decoded["group"] is None
    assert decoded["date_mod"] == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)  # Paris summer time → UTC
    assert decoded["last_inventory_update"] is None
    assert decoded["installed_software"] == ["SoftwareVersion/2", "SoftwareVersion/4"]  # the trashed one left out


def test_a_computer_without_installations_read_does_not_say_what_it_has():
    document = computer()
    del document["installations"]
    assert "installed_software" not in decode_asset(payload(document), PARIS)


def test_a_trashed_asset_without_a_name_is_named_by_its_identity():
    decoded = decode_asset(payload(computer(name="", is_deleted=1, states_id=0)), PARIS)
    assert decoded["name"] == "Computer/12" and decoded["lifecycle"] == "trash" and decoded["state"] is None


def test_a_software_version_is_named_by_its_product_and_in_the_trash_with_it():
    document = {
        "itemtype": "SoftwareVersion",
        "item": {"id": 4, "entities_id": 0, "softwares_id": 2, "states_id": 1, "name": "124.0", "arch": "x86_64",
                 "date_mod": "2025-01-01 08:00:00"},
        "software": {"id": 2, "name": "Mozilla Firefox", "manufacturers_id": 9, "is_deleted": 1},
        "names": {"entities": {"0": "Root entity"}, "states": {"1": "In use"}, "manufacturers": {"9": "Mozilla"}},
    }  # fmt: skip
    decoded = decode_asset(payload(document), PARIS)
    assert decoded["name"] == "Mozilla Firefox 124.0" and decoded["external_id"] == "SoftwareVersion/4"
    assert (decoded["software"], decoded["version"], decoded["manufacturer"]) == ("Mozilla Firefox", "124.0", "Mozilla")
    assert decoded["lifecycle"] == "trash"
    item = map_ci(decoded, MAPPING)
    assert item.ci_class == "software" and item.status == CIStatus.RETIRED and item.tenant == "Root entity"
    assert "model" not in item.attributes and item.attributes["version"] == "124.0"


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        ({"date_mod": "0000-00-00 00:00:00"}, "Computer 12: date_mod .0000-00-00 00:00:00. is not a date"),
        ({"date_mod": "2025-02-30 25:61:00"}, "Computer 12: date_mod '2025-02-30 25:61:00' is not a date"),
        ({"id": None}, "not a GLPI asset document"),
    ],
)
def test_a_damaged_asset_is_refused_with_its_reason(damage, reason):
    with pytest.raises(ParseError, match=reason):
        decode_asset(payload(computer(**damage)), PARIS)


def test_not_json_is_refused():
    with pytest.raises(ParseError, match="not a GLPI asset document"):
        decode_asset(b"<html>", PARIS)


@pytest.mark.parametrize(
    ("itemtype", "ci_class"),
    [("Computer", "computer"), ("NetworkEquipment", "network_device"), ("Printer", "printer"), ("Monitor", "monitor")],
)
def test_the_mapping_gives_the_class_of_each_itemtype(itemtype, ci_class):
    document = computer()
    document["itemtype"] = itemtype
    assert map_ci(decode_asset(payload(document), PARIS), MAPPING).ci_class == ci_class


@pytest.mark.parametrize(
    ("state", "deleted", "status"),
    [
        ("In use", 0, CIStatus.ACTIVE),
        ("In stock", 0, CIStatus.PLANNED),
        ("Under repair", 0, CIStatus.MAINTENANCE),
        ("Retired", 0, CIStatus.RETIRED),
        ("Loaned to a partner", 0, CIStatus.ACTIVE),  # any other state: active, its name kept
        (None, 0, CIStatus.ACTIVE),
        ("In use", 1, CIStatus.RETIRED),  # in GLPI's trash
    ],
)
def test_the_status_comes_from_the_state_or_the_trash(state, deleted, status):
    document = computer(is_deleted=deleted, states_id=1 if state else 0)
    document["names"]["states"] = {"1": state} if state else {}
    item = map_ci(decode_asset(payload(document), PARIS), MAPPING)
    assert item.status == status
    assert item.attributes["glpi_state"] == state and item.attributes["glpi_deleted"] is bool(deleted)


def test_the_mapping_keeps_identity_tenant_and_attributes():
    item = map_ci(decode_asset(payload(computer()), PARIS), MAPPING)
    assert (item.name, item.serial, item.tenant) == ("PC-PAR-00012 <spare>", "ABC123", "Root entity > Paris")
    assert item.attributes["asset_tag"] == "INV-000012" and item.attributes["location"] == "Bâtiment A"
    assert item.attributes["installed_software"] == ["SoftwareVersion/2", "SoftwareVersion/4"]
    assert item.attributes["inventoried"] is True and item.attributes["group"] is None  # empty, yet said
    assert "software" not in item.attributes  # a computer has no product: not said, so not set


def test_a_long_name_is_clipped_and_a_serial_too_long_for_the_store_is_refused():
    item = map_ci(decode_asset(payload(computer(name="x" * 400)), PARIS), MAPPING)
    assert len(item.name) == 300 and item.name.endswith("…")
    with pytest.raises(MappingError, match="serial"):
        map_ci(decode_asset(payload(computer(serial="S" * 201)), PARIS), MAPPING)
