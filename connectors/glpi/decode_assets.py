"""A landed GLPI asset document → the plain dict `mappings/glpi_assets.yaml` reads. Pure: no network, no store.

The document is what `GlpiConnector.fetch_page` lands for one asset (a Computer, NetworkEquipment, Printer,
Monitor, …, or a SoftwareVersion), self-contained so it can be replayed without asking GLPI again:

```json
{"itemtype": "Computer", "item": {…Computer row…},
 "installations": […Item_SoftwareVersion rows…],        (computers, when software is read)
 "software": {…Software row…},                          (software versions: their product)
 "names": {"entities": {"1": "Root entity > Paris"}, "locations": {"2": "Bâtiment A"}, "states": {"1": "In use"},
           "manufacturers": {"3": "Lenovo"}, "models": {"1": "ThinkPad T14"}, "types": {"1": "Laptop"},
           "users": {"7": {"name": "jdoe", "email": "…", …}}, "groups": {"3": "Workplace"}}}
```

Identity: ``<itemtype>/<id>`` (GLPI ids are unique per itemtype only), as in a ticket's linked items. Text is
entity-decoded exactly once (GLPI ≤ 10 stores it encoded); `date_mod` is required (an asset without one is
quarantined, like a ticket), the other dates are optional. An asset without a name is named by its identity.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from connectors._html import unescape
from connectors.glpi.decode import _date, _name
from itsm_core import jsondoc
from itsm_core.errors import ParseError

#: What `lifecycle` says for an asset in GLPI's trash (instead of its state's name).
TRASH = "trash"


def asset_external_id(itemtype: str, glpi_id: int | str) -> str:
    """A GLPI id is unique per itemtype only: identities carry the type (``Computer/1001``)."""
    return f"{itemtype}/{glpi_id}"


def decode_asset(payload: bytes, zone: ZoneInfo) -> dict[str, Any]:
    """The document in canonical terms (the mapping turns itemtypes and states into classes and statuses)."""
    try:
        document = jsondoc.loads(payload)
        itemtype = document["itemtype"]
        row = document["item"]
        glpi_id = int(row["id"])
        if not isinstance(itemtype, str) or not itemtype:
            raise TypeError("itemtype is not a name")
    except (ValueError, KeyError, TypeError) as exc:
        raise ParseError(f"not a GLPI asset document ({type(exc).__name__}: {exc})") from None
    names = document.get("names") or {}
    what = itemtype
    external_id = asset_external_id(itemtype, glpi_id)
    decoded: dict[str, Any] = {
        "id": glpi_id,
        "itemtype": itemtype,
        "external_id": external_id,
        "entity": _name(names.get("entities"), row.get("entities_id")),
        "state": _name(names.get("states"), row.get("states_id") or None),
        "comment": _text(row.get("comment")),
        "date_mod": _date(row, "date_mod", zone, required=True, what=what),
        "date_creation": _date(row, "date_creation", zone, what=what),
    }
    if itemtype == "SoftwareVersion":
        decoded.update(_software_version(row, document.get("software") or {}, names))
    else:
        decoded.update(_asset(itemtype, row, names, zone))
        if "installations" in document:
            decoded["installed_software"] = sorted(
                {
                    asset_external_id("SoftwareVersion", install["softwareversions_id"])
                    for install in document.get("installations") or []
                    if install.get("softwareversions_id") and not install.get("is_deleted")
                }
            )
    decoded["name"] = decoded["name"] or external_id
    decoded["lifecycle"] = TRASH if decoded["is_deleted"] else decoded["state"]
    return decoded


def _asset(itemtype: str, row: dict[str, Any], names: dict[str, Any], zone: ZoneInfo) -> dict[str, Any]:
    lower = itemtype.lower()
    user = (names.get("users") or {}).get(str(row.get("users_id"))) or {} if row.get("users_id") else {}
    return {
        "name": _text(row.get("name")),
        "serial": _text(row.get("serial")),
        "asset_tag": _text(row.get("otherserial")),
        "uuid": _text(row.get("uuid")),
        "is_deleted": bool(row.get("is_deleted")),
        "is_dynamic": bool(row.get("is_dynamic")),
        "location": _name(names.get("locations"), row.get("locations_id") or None),
        "manufacturer": _name(names.get("manufacturers"), row.get("manufacturers_id") or None),
        "model": _name(names.get("models"), row.get(f"{lower}models_id") or None),
        "type": _name(names.get("types"), row.get(f"{lower}types_id") or None),
        "user": user.get("email") or (unescape(user["name"]) if user.get("name") else None),
        "group": _name(names.get("groups"), row.get("groups_id") or None),
        "last_inventory_update": _date(row, "last_inventory_update", zone, what=itemtype),
    }


def _software_version(row: dict[str, Any], software: dict[str, Any], names: dict[str, Any]) -> dict[str, Any]:
    """A version of a software product: named "<product> <version>", in the trash with its product."""
    product = _text(software.get("name"))
    version = _text(row.get("name"))
    return {
        "name": " ".join(part for part in (product, version) if part) or None,
        "serial": None,
        "software": product,
        "version": version,
        "arch": _text(row.get("arch")),
        "is_deleted": bool(software.get("is_deleted")),
        "manufacturer": _name(names.get("manufacturers"), software.get("manufacturers_id") or None),
    }


def _text(value: Any) -> str | None:
    """GLPI's entity-encoded text, decoded once and stripped; empty → None."""
    if value is None:
        return None
    text = unescape(str(value)).strip()
    return text or None
