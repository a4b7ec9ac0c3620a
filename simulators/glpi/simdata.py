"""The GLPI simulator's data: schemas, compact row storage, GLPI 10's text sanitiser, the server clock and a
deterministic generator of a realistic instance (entities, people, tickets with their timelines, assets).

Rows are tuples in the column order of GLPI 10's tables (one `Table` per itemtype, keyed by id), so 100k tickets
with their ~400k timeline and actor rows fit in a few hundred MB and generate in seconds. Text columns hold what
GLPI 10 stores: HTML special characters entity-encoded (`&#60;p&#62;`), see `encode_html`.
Everything here is plain data and pure functions; the HTTP semantics live in `simulator.py`.
"""

from __future__ import annotations

import html
import random
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"

# Ticket enums (GLPI 10 constants).
INCOMING, ASSIGNED, PLANNED, WAITING, SOLVED, CLOSED = 1, 2, 3, 4, 5, 6
REQUESTER, ASSIGN, OBSERVER = 1, 2, 3
SOLUTION_WAITING, SOLUTION_ACCEPTED, SOLUTION_REFUSED = 2, 3, 4
TIMELINE_LEFT, TIMELINE_RIGHT = 1, 4
#: Entity.autoclose_delay: never close solved tickets automatically / take the parent's setting.
AUTOCLOSE_NEVER, AUTOCLOSE_PARENT = -10, -2

#: `priority_matrix[urgency][impact]`, GLPI's install default.
PRIORITY_MATRIX = {
    1: {1: 1, 2: 1, 3: 2, 4: 2, 5: 2},
    2: {1: 1, 2: 2, 3: 2, 4: 3, 5: 3},
    3: {1: 2, 2: 2, 3: 3, 4: 4, 5: 4},
    4: {1: 2, 2: 3, 3: 4, 4: 4, 5: 5},
    5: {1: 2, 2: 3, 3: 4, 4: 5, 5: 5},
}

#: Between the levels of a tree dropdown's `completename`, as GLPI 10 stores it ("Root entity &#62; Paris").
TREE_SEPARATOR = " &#62; "
#: How `malformed_ids` break a ticket, in turn: kinds of damage a sync must quarantine, not crash on.
MALFORMED_KINDS = ("zero_date", "bad_status", "null_name", "impossible_date_mod")


def compute_priority(urgency: Any, impact: Any) -> int:
    """GLPI's matrix lookup; out-of-range levels fall back to round((u + i) / 2) like `Ticket::computePriority`."""
    try:
        return PRIORITY_MATRIX[int(urgency)][int(impact)]
    except (KeyError, TypeError, ValueError):
        try:
            return max(1, min(5, round((int(urgency) + int(impact)) / 2)))
        except (TypeError, ValueError):
            return 3


# --- text: GLPI 10's Sanitizer -------------------------------------------------------------------------------

_ENCODE_MAP = {"&": "&#38;", "<": "&#60;", ">": "&#62;"}
_RAW_SPECIAL = re.compile(r"<|>|&(?!#?[a-z0-9]+;)", re.IGNORECASE)
_ENCODED_SPECIAL = re.compile(r"&#38;|&#60;|&#62;|&lt;|&gt;|&amp;")
_DECODE_PAIRS = (("&#60;", "<"), ("&lt;", "<"), ("&#62;", ">"), ("&gt;", ">"), ("&#38;", "&"), ("&amp;", "&"))


def encode_html(value: str) -> str:
    """What GLPI 10 stores for `value` (`Sanitizer::encodeHtmlSpecialChars`): `& < >` → `&#38; &#60; &#62;`.

    Like GLPI, a value that already looks encoded (no raw `<`, `>` or bare `&`, and at least one of the entities
    above) is kept as is, so raw input is encoded exactly once and encoded input is not encoded twice.
    """
    if _RAW_SPECIAL.search(value) is None and _ENCODED_SPECIAL.search(value) is not None:
        return value
    return value.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;")


def decode_html(value: Any) -> Any:
    """GLPI's `Sanitizer::decodeHtmlSpecialChars` (only the entities the sanitiser writes); non-strings unchanged."""
    if not isinstance(value, str) or "&" not in value:
        return value
    for entity, char in _DECODE_PAIRS:
        value = value.replace(entity, char)
    return value


def sanitize(value: Any) -> Any:
    """Input as GLPI 10 stores it: every string (also inside lists and objects) through `encode_html`."""
    if isinstance(value, str):
        return encode_html(value)
    if isinstance(value, dict):
        return {key: sanitize(item) for key, item in value.items()}
    if isinstance(value, list):
        return [sanitize(item) for item in value]
    return value


# --- the server's clock ---------------------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ServerTime:
    """'Now' and timestamps as GLPI writes them: zone-less `YYYY-MM-DD HH:MM:SS` in the server's zone.

    `clock` returns an aware datetime (a naive one is read as UTC). Formatting caches UTC offsets per quarter
    hour and dates per day, so generating a million dates stays cheap.
    """

    def __init__(self, timezone: str, clock: Callable[[], datetime] | None = None) -> None:
        self.zone = ZoneInfo(timezone)
        self.timezone = timezone
        self._clock = clock or _utc_now
        self._offsets: dict[int, int] = {}
        self._days: dict[int, str] = {}

    def now_ts(self) -> int:
        """The clock, in whole seconds since the epoch."""
        now = self._clock()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return int(now.timestamp())

    def now(self) -> str:
        """The clock, formatted in the server zone."""
        return self.format(self.now_ts())

    def format(self, ts: int) -> str:
        """Epoch seconds → zone-less local string."""
        bucket = ts // 900
        offset = self._offsets.get(bucket)
        if offset is None:
            delta = datetime.fromtimestamp(bucket * 900, self.zone).utcoffset()
            offset = int(delta.total_seconds()) if delta else 0
            self._offsets[bucket] = offset
        day, seconds = divmod(ts + offset, 86400)
        day_text = self._days.get(day)
        if day_text is None:
            day_text = (date(1970, 1, 1) + timedelta(days=day)).isoformat()
            self._days[day] = day_text
        return f"{day_text} {seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"

    def parse(self, text: Any) -> int | None:
        """Zone-less local string → epoch seconds; None when it is not a valid date."""
        try:
            local = datetime.strptime(str(text), DATE_FORMAT).replace(tzinfo=self.zone)
        except ValueError:
            return None
        return int(local.timestamp())


# --- schemas and storage --------------------------------------------------------------------------------------

_INT_NAMES = frozenset((
    "id", "status", "type", "urgency", "impact", "priority", "global_validation", "level", "actiontime",
    "waiting_duration", "sla_waiting_duration", "ola_waiting_duration", "close_delay_stat", "solve_delay_stat",
    "takeintoaccount_delay_stat", "validation_percent", "timeline_position", "use_notification",
    "use_mode", "list_limit", "authtype", "autoclose_delay",
))  # fmt: skip


def is_int_column(name: str) -> bool:
    """Whether GLPI declares the column as an integer (ids, foreign keys, flags, enums, durations)."""
    return name in _INT_NAMES or name.endswith("_id") or "_id_" in name or name.startswith("is_")


@dataclass(frozen=True)
class Schema:
    """One itemtype: its table, columns (GLPI 10 order) and the behaviour the API derives from them."""

    itemtype: str
    table: str
    columns: tuple[str, ...]
    #: Column defaults beyond the generic ones (0 for integer columns, None otherwise).
    defaults: dict[str, Any] = field(default_factory=dict)
    #: Columns kept indexed for child lookups (a ticket's followups: `items_id`, then filtered on `itemtype`).
    indexes: tuple[str, ...] = ()
    #: Rows restricted to the session's active entities (`isEntityAssign`).
    entity_assign: bool = False
    #: `useDeletedToLockIfDynamic`: a non-dynamic row is purged even without force_purge.
    trash_only_dynamic: bool = False
    #: HATEOAS children listed in `links` (`API::getHatoasClasses`).
    children: tuple[str, ...] = ()
    #: Tree dropdown: `completename` is built from the parent's (`<fk> > name`).
    tree_fk: str | None = None
    #: Integer columns the naming rules of `is_int_column` do not recognise.
    int_columns: frozenset[str] = frozenset()

    @property
    def foreign_key(self) -> str:
        """`getForeignKeyFieldForItemType`: the table name without `glpi_`, plus `_id`."""
        return self.table[5:] + "_id"

    def is_int(self, column: str) -> bool:
        """Whether the column is an integer in this table (a task's `state` is; an address's `state` is text)."""
        return column in self.int_columns or is_int_column(column)

    def default(self, column: str) -> Any:
        if column in self.defaults:
            return self.defaults[column]
        return 0 if self.is_int(column) and column != "id" else None


class Table:
    """Rows of one itemtype as tuples keyed by id (dict order = id order, since ids only grow)."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.columns = schema.columns
        self.pos = {name: index for index, name in enumerate(schema.columns)}
        self.rows: dict[int, tuple[Any, ...]] = {}
        self.next_id = 1
        self.indexes: dict[str, dict[Any, list[int]]] = {column: {} for column in schema.indexes}
        self._defaults = tuple(schema.default(name) for name in schema.columns)

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, values: dict[str, Any]) -> int:
        """Insert a row from column values (missing columns take their default); returns its id."""
        row_id = values.get("id")
        if row_id is None:
            row_id = self.next_id
        values = {**values, "id": row_id}
        row = tuple(values.get(name, default) for name, default in zip(self.columns, self._defaults, strict=True))
        self.rows[row_id] = row
        self.next_id = max(self.next_id, row_id + 1)
        for column, index in self.indexes.items():
            index.setdefault(row[self.pos[column]], []).append(row_id)
        return row_id

    def get(self, row_id: int) -> tuple[Any, ...] | None:
        return self.rows.get(row_id)

    def value(self, row: tuple[Any, ...], column: str) -> Any:
        return row[self.pos[column]]

    def as_dict(self, row: tuple[Any, ...]) -> dict[str, Any]:
        return dict(zip(self.columns, row, strict=True))

    def update(self, row_id: int, changes: dict[str, Any]) -> tuple[Any, ...]:
        """Set columns of an existing row (unknown names ignored); indexes follow."""
        old = self.rows[row_id]
        new = list(old)
        for name, value in changes.items():
            index = self.pos.get(name)
            if index is not None and name != "id":
                new[index] = value
        row = tuple(new)
        self.rows[row_id] = row
        for column, index_map in self.indexes.items():
            old_key, new_key = old[self.pos[column]], row[self.pos[column]]
            if old_key != new_key:
                index_map[old_key].remove(row_id)
                ids = index_map.setdefault(new_key, [])
                ids.append(row_id)
                ids.sort()
        return row

    def remove(self, row_id: int) -> tuple[Any, ...] | None:
        row = self.rows.pop(row_id, None)
        if row is not None:
            for column, index_map in self.indexes.items():
                ids = index_map.get(row[self.pos[column]])
                if ids is not None and row_id in ids:
                    ids.remove(row_id)
        return row

    def where(self, **equal: Any) -> list[tuple[Any, ...]]:
        """Rows whose columns equal the given values, in id order (an index narrows the scan when one fits)."""
        positions = [(self.pos[name], value) for name, value in equal.items()]
        indexed = next((name for name in equal if name in self.indexes), None)
        if indexed is not None:
            ids = self.indexes[indexed].get(equal[indexed], ())
            candidates: Iterable[tuple[Any, ...]] = [self.rows[row_id] for row_id in ids]
        else:
            candidates = self.rows.values()
        return [row for row in candidates if all(row[index] == value for index, value in positions)]


def _cols(text: str) -> tuple[str, ...]:
    return tuple(text.split())


TICKET_CHILDREN = (
    "Document_Item", "TicketTask", "TicketValidation", "TicketCost", "Problem_Ticket", "Change_Ticket",
    "Ticket_Ticket", "Item_Ticket", "ITILSolution", "ITILFollowup", "Ticket_User", "Group_Ticket", "Supplier_Ticket",
)  # fmt: skip
ASSET_CHILDREN = (
    "ReservationItem", "Document_Item", "Contract_Item", "Infocom", "Item_Ticket", "Item_Project", "NetworkPort",
)  # fmt: skip
ASSET_TYPES = ("Computer", "Monitor", "Printer", "NetworkEquipment")

_ASSET_HEAD = "id entities_id name serial otherserial contact contact_num users_id_tech groups_id_tech comment date_mod"
_ASSET_TAIL = (
    "is_template template_name manufacturers_id is_deleted is_dynamic users_id groups_id states_id ticket_tco uuid "
    "date_creation is_recursive last_inventory_update"
)
_ASSET_EXTRA = {
    "Computer": "autoupdatesystems_id locations_id networks_id computermodels_id computertypes_id",
    "Monitor": "locations_id monitortypes_id monitormodels_id size have_micro have_speaker is_global",
    "Printer": "locations_id printertypes_id printermodels_id have_usb have_ethernet is_global init_pages_counter",
    "NetworkEquipment": "locations_id networkequipmenttypes_id networkequipmentmodels_id ram mac",
}
_DROPDOWN = "id name comment date_mod date_creation"


def _schemas() -> dict[str, Schema]:
    """Every itemtype the simulator knows, in GLPI 10's column order (a realistic subset for the wide ones)."""
    schemas = [
        Schema("Entity", "glpi_entities", _cols(
            "id name entities_id completename comment level sons_cache ancestors_cache registration_number address "
            "postcode town state country website phonenumber email admin_email tag autoclose_delay date_mod "
            "date_creation"), defaults={"autoclose_delay": AUTOCLOSE_PARENT}, entity_assign=True,
            children=("Document_Item",), tree_fk="entities_id"),
        Schema("User", "glpi_users", _cols(
            "id name phone phone2 mobile realname firstname locations_id language use_mode list_limit is_active "
            "comment auths_id authtype last_login date_mod date_sync is_deleted profiles_id entities_id usertitles_id "
            "usercategories_id registration_number is_deleted_ldap begin_date end_date groups_id users_id_supervisor "
            "timezone date_creation"), defaults={"is_active": 1, "authtype": 1}, children=("Document_Item",)),
        Schema("UserEmail", "glpi_useremails", _cols("id users_id is_default is_dynamic email"),
               indexes=("users_id",)),
        Schema("Group", "glpi_groups", _cols(
            "id entities_id is_recursive name comment ldap_field ldap_value ldap_group_dn date_mod groups_id "
            "completename level ancestors_cache sons_cache is_requester is_watcher is_assign is_task is_notify "
            "is_itemgroup is_usergroup is_manager date_creation"), entity_assign=True, tree_fk="groups_id"),
        Schema("Group_User", "glpi_groups_users", _cols("id users_id groups_id is_dynamic is_manager is_userdelegate"),
               indexes=("users_id", "groups_id")),
        Schema("ITILCategory", "glpi_itilcategories", _cols(
            "id entities_id is_recursive itilcategories_id name completename comment level knowbaseitemcategories_id "
            "users_id groups_id code ancestors_cache sons_cache is_helpdeskvisible tickettemplates_id_incident "
            "tickettemplates_id_demand changetemplates_id problemtemplates_id is_incident is_request is_problem "
            "is_change date_mod date_creation"), entity_assign=True, tree_fk="itilcategories_id"),
        Schema("RequestType", "glpi_requesttypes", _cols(
            "id name is_helpdesk_default is_followup_default is_mail_default is_mailfollowup_default is_active "
            "is_ticketheader is_itilfollowup comment date_mod date_creation")),
        Schema("Location", "glpi_locations", _cols(
            "id entities_id is_recursive name locations_id completename comment level ancestors_cache sons_cache "
            "address postcode town state country building room latitude longitude altitude date_mod date_creation"),
            entity_assign=True, tree_fk="locations_id"),
        Schema("SolutionType", "glpi_solutiontypes", _cols(
            "id name comment entities_id is_recursive is_incident is_request is_problem is_change date_mod "
            "date_creation")),
        Schema("TaskCategory", "glpi_taskcategories", _cols(
            "id entities_id is_recursive taskcategories_id name completename comment level ancestors_cache "
            "sons_cache is_active is_helpdeskvisible date_mod date_creation")),
        Schema("State", "glpi_states", _cols(
            "id name entities_id is_recursive comment states_id completename level ancestors_cache sons_cache "
            "is_visible_computer is_visible_monitor is_visible_printer is_visible_networkequipment date_mod "
            "date_creation")),
        Schema("Manufacturer", "glpi_manufacturers", _cols(_DROPDOWN)),
        Schema("Ticket", "glpi_tickets", _cols(
            "id entities_id name date closedate solvedate takeintoaccountdate date_mod users_id_lastupdater status "
            "users_id_recipient requesttypes_id content urgency impact priority itilcategories_id type "
            "global_validation slas_id_ttr slas_id_tto slalevels_id_ttr time_to_resolve time_to_own "
            "begin_waiting_date sla_waiting_duration ola_waiting_duration olas_id_tto olas_id_ttr olalevels_id_ttr "
            "ola_ttr_begin_date internal_time_to_resolve internal_time_to_own waiting_duration close_delay_stat "
            "solve_delay_stat takeintoaccount_delay_stat actiontime is_deleted locations_id validation_percent "
            "date_creation"), defaults={"status": INCOMING, "urgency": 3, "impact": 3, "priority": 3, "type": 1,
                                        "global_validation": 1, "requesttypes_id": 1},
            entity_assign=True, children=TICKET_CHILDREN),
        Schema("ITILFollowup", "glpi_itilfollowups", _cols(
            "id itemtype items_id date users_id users_id_editor content is_private requesttypes_id date_mod "
            "date_creation timeline_position sourceitems_id sourceof_items_id"),
            indexes=("items_id",)),
        Schema("ITILSolution", "glpi_itilsolutions", _cols(
            "id itemtype items_id solutiontypes_id solutiontype_name content date_creation date_mod date_approval "
            "users_id user_name users_id_editor users_id_approval user_name_approval status itilfollowups_id"),
            defaults={"status": SOLUTION_WAITING}, indexes=("items_id",)),
        Schema("TicketTask", "glpi_tickettasks", _cols(
            "id uuid tickets_id taskcategories_id date users_id users_id_editor content is_private actiontime begin "
            "end state users_id_tech groups_id_tech date_mod date_creation tasktemplates_id timeline_position "
            "sourceitems_id"), defaults={"state": 1}, indexes=("tickets_id",), int_columns=frozenset({"state"})),
        Schema("Ticket_User", "glpi_tickets_users", _cols(
            "id tickets_id users_id type use_notification alternative_email"),
            defaults={"use_notification": 1, "alternative_email": ""}, indexes=("tickets_id",)),
        Schema("Group_Ticket", "glpi_groups_tickets", _cols("id tickets_id groups_id type"),
               indexes=("tickets_id",)),
        Schema("Supplier_Ticket", "glpi_suppliers_tickets", _cols(
            "id tickets_id suppliers_id type use_notification alternative_email"), indexes=("tickets_id",)),
        Schema("Item_Ticket", "glpi_items_tickets", _cols("id itemtype items_id tickets_id"),
               indexes=("tickets_id", "items_id")),
        Schema("Document", "glpi_documents", _cols(
            "id entities_id is_recursive name filename filepath documentcategories_id mime date_mod comment "
            "is_deleted link users_id tickets_id sha1sum is_blacklisted tag date_creation"), entity_assign=True,
            children=("Document_Item",)),
        Schema("Document_Item", "glpi_documents_items", _cols(
            "id documents_id items_id itemtype entities_id is_recursive date_mod users_id timeline_position "
            "date_creation date"), indexes=("items_id", "documents_id")),
        Schema("TicketValidation", "glpi_ticketvalidations", _cols(
            "id entities_id users_id tickets_id itemtype_target items_id_target comment_submission "
            "comment_validation status submission_date validation_date timeline_position"),
            indexes=("tickets_id",)),
        Schema("TicketCost", "glpi_ticketcosts", _cols(
            "id tickets_id name comment begin_date end_date actiontime cost_time cost_fixed cost_material "
            "budgets_id entities_id"), indexes=("tickets_id",)),
        Schema("Problem_Ticket", "glpi_problems_tickets", _cols("id problems_id tickets_id"),
               indexes=("tickets_id",)),
        Schema("Change_Ticket", "glpi_changes_tickets", _cols("id changes_id tickets_id"),
               indexes=("tickets_id",)),
        Schema("Ticket_Ticket", "glpi_tickets_tickets", _cols("id tickets_id_1 tickets_id_2 link")),
        Schema("Supplier", "glpi_suppliers", _cols(
            "id entities_id is_recursive name suppliertypes_id address postcode town state country website "
            "phonenumber comment is_deleted fax email date_mod date_creation is_active"), entity_assign=True),
        Schema("Software", "glpi_softwares", _cols(
            "id entities_id is_recursive name comment locations_id users_id_tech groups_id_tech is_update "
            "softwares_id manufacturers_id is_deleted is_template template_name date_mod users_id groups_id "
            "ticket_tco is_helpdesk_visible softwarecategories_id is_valid date_creation"), defaults={"is_valid": 1},
            entity_assign=True, children=("Document_Item", "Contract_Item", "Infocom", "Item_Ticket")),
        Schema("SoftwareVersion", "glpi_softwareversions", _cols(
            "id entities_id is_recursive softwares_id states_id name arch comment operatingsystems_id date_mod "
            "date_creation"), indexes=("softwares_id",)),
        Schema("Item_SoftwareVersion", "glpi_items_softwareversions", _cols(
            "id items_id itemtype softwareversions_id is_deleted_item is_template_item entities_id is_deleted "
            "is_dynamic date_install date_mod date_creation"), trash_only_dynamic=True,
            indexes=("items_id", "softwareversions_id")),
        Schema("ReservationItem", "glpi_reservationitems", _cols(
            "id itemtype entities_id is_recursive items_id comment is_active is_deleted"), indexes=("items_id",)),
        Schema("Contract_Item", "glpi_contracts_items", _cols("id contracts_id items_id itemtype"),
               indexes=("items_id",)),
        Schema("Infocom", "glpi_infocoms", _cols(
            "id items_id itemtype entities_id is_recursive buy_date use_date warranty_duration warranty_info "
            "suppliers_id order_number delivery_number immo_number value warranty_value sink_time sink_type "
            "sink_coeff comment bill budgets_id date_mod date_creation"), indexes=("items_id",)),
        Schema("Item_Project", "glpi_items_projects", _cols("id projects_id itemtype items_id"),
               indexes=("items_id",)),
        Schema("NetworkPort", "glpi_networkports", _cols(
            "id items_id itemtype entities_id is_recursive logical_number name instantiation_type mac comment "
            "is_deleted is_dynamic date_mod date_creation"), trash_only_dynamic=True,
            indexes=("items_id",)),
    ]  # fmt: skip
    for asset in ASSET_TYPES:
        columns = _cols(f"{_ASSET_HEAD} {_ASSET_EXTRA[asset]} {_ASSET_TAIL}")
        schemas.append(Schema(asset, f"glpi_{asset.lower()}s", columns, entity_assign=True, children=ASSET_CHILDREN))
        for kind in ("Model", "Type"):
            name = f"{asset}{kind}"
            extra = " product_number" if kind == "Model" else ""
            schemas.append(Schema(name, f"glpi_{name.lower()}s", _cols(_DROPDOWN + extra)))
    return {schema.itemtype: schema for schema in schemas}


SCHEMAS = _schemas()

#: `getItemTypeForTable` for the foreign keys found in the simulated tables (HATEOAS `rel` names).
_FK_TABLE_ITEMTYPES = {schema.table[5:]: schema.itemtype for schema in SCHEMAS.values()} | {
    "slas": "SLA", "olas": "OLA", "slalevels": "SlaLevel", "olalevels": "OlaLevel", "profiles": "Profile",
    "auths": "Auth", "usertitles": "UserTitle", "usercategories": "UserCategory", "documentcategories":
    "DocumentCategory", "tasktemplates": "TaskTemplate", "autoupdatesystems": "AutoUpdateSystem",
    "networks": "Network", "softwarecategories": "SoftwareCategory", "operatingsystems": "OperatingSystem",
    "itilfollowups": "ITILFollowup", "knowbaseitemcategories": "KnowbaseItemCategory", "tickettemplates":
    "TicketTemplate", "changetemplates": "ChangeTemplate", "problemtemplates": "ProblemTemplate", "contracts":
    "Contract", "projects": "Project", "problems": "Problem", "changes": "Change", "budgets": "Budget",
    "suppliertypes": "SupplierType", "sourceitems": "Sourceitem", "sourceof_items": "SourceofItem",
}  # fmt: skip
_FOREIGN_KEY = re.compile(r"^(.+?s)_id(_.+)?$")


def foreign_key_itemtype(column: str) -> str | None:
    """The itemtype a foreign-key column points to (`users_id_recipient` → User), None when not a foreign key."""
    match = _FOREIGN_KEY.match(column)
    if match is None:
        return None
    base = match.group(1)
    return _FK_TABLE_ITEMTYPES.get(base, base[:-1].capitalize())


# --- the generated instance -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataOptions:
    """What to generate. `anchor_ts` is the instant the history ends (dates spread over the two years before)."""

    tickets: int
    seed: int
    assets: int
    anchor_ts: int
    malformed_ids: tuple[int, ...] = ()
    #: Logins to create when the installer users do not already have them (token and credential accounts).
    extra_logins: tuple[str, ...] = ()


class Dataset:
    """All tables of one simulated GLPI, plus the name lookups the API and the search engine need."""

    def __init__(self) -> None:
        self.tables: dict[str, Table] = {itemtype: Table(schema) for itemtype, schema in SCHEMAS.items()}
        self.tables["Entity"].next_id = 0

    def __getitem__(self, itemtype: str) -> Table:
        return self.tables[itemtype]

    def user_id(self, login: str) -> int | None:
        pos = self.tables["User"].pos["name"]
        return next((row[0] for row in self.tables["User"].rows.values() if row[pos] == login), None)

    def entity_descendants(self, entity_id: int) -> set[int]:
        """The entity and every entity below it."""
        table = self.tables["Entity"]
        parent = table.pos["entities_id"]
        found, frontier = {entity_id}, [entity_id]
        while frontier:
            current = frontier.pop()
            for row in table.rows.values():
                if row[parent] == current and row[0] not in found:
                    found.add(row[0])
                    frontier.append(row[0])
        return found

    def entity_ancestors(self, entity_id: int) -> list[int]:
        """The entity's parents, nearest first."""
        table, chain = self.tables["Entity"], []
        row = table.get(entity_id)
        while row is not None and row[table.pos["entities_id"]] is not None:
            parent = row[table.pos["entities_id"]]
            if parent in chain or parent == entity_id:
                break
            chain.append(parent)
            row = table.get(parent)
        return chain


# Text pools per language. Raw text; the generator escapes it into HTML and then GLPI-encodes it.
_TEXTS: dict[str, dict[str, list[str]]] = {
    "en": {
        "titles": [
            "VPN connection drops every few minutes",
            "Printer on 3rd floor jams",
            "Cannot log in to Outlook",
            "New laptop for onboarding",
            "Wi-Fi slow in meeting room B",
            "Password reset needed",
            "Excel crashes when opening macros",
            "Monitor flickering",
            "Install Adobe Reader",
            "Error <500> on the intranet page",
            "Phone & headset not working",
            "Teams calls drop after 10 minutes",
            "Disk space low on C:",
            "Access to shared drive \\\\finance",
            "Badge reader at main entrance broken",
        ],
        "greetings": ["Hello,", "Hi team,", "Good morning,", "Dear IT support,"],
        "details": [
            "Since this morning I cannot work: the application shows <b>Access denied</b>.",
            "It worked yesterday & stopped after the update. Steps: open, click > Save, crash.",
            'The error says "code <0x80070005>"; rebooting did not help.',
            "Three colleagues have the same problem, see the attached screenshot.",
            "Please order it before Monday, the new colleague starts then.",
            "Only happens on battery; on the docking station everything is fine.",
        ],
        "closings": ["Thanks in advance.", "Best regards,", "Cheers,", "Thank you!"],
        "requester_replies": [
            "Any news on this?",
            "Still not working, sorry.",
            "Thanks, it works again!",
            "I tried again & got the same error <timeout>.",
        ],
        "tech_replies": [
            "I restarted the service & cleared the cache.",
            "Could you send a screenshot of the error?",
            "Remote session done; please confirm it works.",
            "Escalated to the network team (ticket > level 2).",
            "Driver updated to version <2.3.1>.",
        ],
        "solutions": [
            "Cache cleared & profile rebuilt; confirmed working with the user.",
            "Replaced the toner cartridge.",
            "Password reset and MFA re-enrolled.",
            "Installed the update <KB5034441>.",
        ],
        "tasks": ["Check the logs on the server.", "Order replacement part.", "Call the user back at 14:00."],
    },
    "fr": {
        "titles": [
            "Imprimante du 2e étage en panne",
            "Impossible d'accéder à la messagerie",
            "Demande de création de compte pour stagiaire",
            "Écran noir au démarrage",
            "Lenteur réseau – bâtiment A",
            "Mot de passe expiré",
            "Problème d'accès VPN & Wi-Fi",
            "Installer le logiciel « Comptabilité »",
            "Le PC redémarre tout seul",
            "Erreur <404> sur l'intranet",
            "Souris et clavier sans fil à remplacer",
        ],
        "greetings": ["Bonjour,", "Bonjour à tous,", "Madame, Monsieur,"],
        "details": [
            "Depuis ce matin, le poste affiche « Accès refusé » à l'ouverture de session.",
            "L'imprimante indique un bourrage papier & clignote en orange.",
            "Message d'erreur : <code>0x0000007B</code> au démarrage.",
            "Merci de prévoir l'installation avant lundi : le stagiaire arrive à 9 h.",
            "Le problème survient uniquement sur le réseau Wi-Fi « Invités ».",
        ],
        "closings": ["Merci d'avance.", "Cordialement,", "Bien à vous,", "Bonne journée."],
        "requester_replies": [
            "Des nouvelles ?",
            "Toujours en attente…",
            "Merci, ça fonctionne à nouveau !",
            "Même erreur après redémarrage <code 5>.",
        ],
        "tech_replies": [
            "J'ai redémarré le poste & vidé le cache.",
            "Pouvez-vous m'envoyer une capture d'écran ?",
            "Intervention à distance effectuée ; merci de confirmer.",
            "Transmis à l'équipe réseau (niveau > 1).",
        ],
        "solutions": [
            "Profil utilisateur recréé, problème résolu.",
            "Cartouche de toner remplacée.",
            "Mot de passe réinitialisé & compte déverrouillé.",
        ],
        "tasks": ["Vérifier les journaux du serveur.", "Commander la pièce de rechange.", "Rappeler l'utilisateur."],
    },
    "de": {
        "titles": [
            "Drucker im Erdgeschoss druckt nicht",
            "Zugang zum SAP-System beantragen",
            "Laptop lässt sich nicht einschalten",
            "Passwort zurücksetzen",
            "Bildschirm flackert",
            "Netzwerkausfall im Büro München",
            "Outlook-Kalender & Termine fehlen",
            "Fehlermeldung <Zugriff verweigert>",
            "Größere Festplatte benötigt",
            "Telefon klingelt nicht",
        ],
        "greetings": ["Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,"],
        "details": [
            "Seit heute früh erscheint die Meldung „Zugriff verweigert“ beim Öffnen der Datei.",
            "Der Drucker zeigt Papierstau & blinkt rot, obwohl kein Papier feststeckt.",
            "Fehlercode <0x80004005> nach dem letzten Update.",
            "Bitte bis Freitag erledigen, der neue Kollege fängt am Montag an.",
            "Das Problem tritt nur im Gäste-WLAN auf; über Kabel funktioniert alles.",
        ],
        "closings": ["Vielen Dank im Voraus.", "Mit freundlichen Grüßen", "Viele Grüße", "Danke!"],
        "requester_replies": [
            "Gibt es Neuigkeiten?",
            "Leider immer noch defekt.",
            "Danke, funktioniert wieder!",
            "Gleicher Fehler <Timeout> nach Neustart.",
        ],
        "tech_replies": [
            "Dienst neu gestartet & Cache geleert.",
            "Können Sie bitte einen Screenshot schicken?",
            "Fernwartung abgeschlossen, bitte kurz bestätigen.",
            "Treiber auf Version <5.2> aktualisiert.",
        ],
        "solutions": [
            "Benutzerprofil neu angelegt, Problem behoben.",
            "Tonerkartusche ersetzt.",
            "Passwort zurückgesetzt & Konto entsperrt.",
        ],
        "tasks": ["Serverprotokolle prüfen.", "Ersatzteil bestellen.", "Benutzer zurückrufen."],
    },
    "pl": {
        "titles": [
            "Drukarka nie drukuje",
            "Brak dostępu do poczty",
            "Prośba o nowy laptop dla pracownika",
            "Hasło wygasło – proszę o reset",
            "Wolne działanie sieci Wi-Fi",
            "Błąd logowania do systemu ERP",
            "Monitor się nie włącza",
            "Problem z VPN & pocztą",
            "Komunikat <Brak połączenia>",
            "Zgłoszenie: uszkodzona klawiatura",
        ],
        "greetings": ["Dzień dobry,", "Witam,", "Szanowni Państwo,"],
        "details": [
            "Od rana system wyświetla komunikat „Odmowa dostępu”.",
            "Drukarka zgłasza zacięcie papieru & miga na pomarańczowo.",
            "Kod błędu <0xC000021A> po ostatniej aktualizacji.",
            "Proszę o przygotowanie sprzętu do poniedziałku, nowy pracownik zaczyna o 8:00.",
            "Problem występuje tylko w sieci Wi-Fi dla gości.",
        ],
        "closings": ["Z góry dziękuję.", "Pozdrawiam,", "Z poważaniem,"],
        "requester_replies": [
            "Czy są jakieś informacje?",
            "Nadal nie działa.",
            "Dziękuję, działa!",
            "Ten sam błąd <timeout> po restarcie.",
        ],
        "tech_replies": [
            "Zrestartowałem usługę & wyczyściłem pamięć podręczną.",
            "Proszę przesłać zrzut ekranu błędu.",
            "Sesja zdalna zakończona, proszę o potwierdzenie.",
            "Sterownik zaktualizowany do wersji <3.1>.",
        ],
        "solutions": [
            "Profil użytkownika odtworzony, problem rozwiązany.",
            "Wymieniono toner.",
            "Hasło zresetowane & konto odblokowane.",
        ],
        "tasks": ["Sprawdzić logi serwera.", "Zamówić część zamienną.", "Oddzwonić do użytkownika."],
    },
}
_LANGS = ("en", "fr", "de", "pl")
_LANG_WEIGHTS = (40, 25, 20, 15)

_PEOPLE = {
    "en": (["James", "Emma", "Oliver", "Sophie", "Harry", "Chloe", "Jack", "Grace"],
           ["Smith", "Taylor", "Brown", "O'Neill", "Wilson", "Clarke", "Evans", "Walker"]),
    "fr": (["Élodie", "François", "Amélie", "Jérôme", "Hélène", "Loïc", "Camille", "Benoît"],
           ["Dupont", "Lefèvre", "Moreau", "Gaillard", "Rousseau", "Bénard", "Faure", "Mercier"]),
    "de": (["Jürgen", "Anna", "Björn", "Lena", "Matthias", "Sönke", "Katrin", "Uwe"],
           ["Müller", "Schröder", "Weiß", "Groß", "Bäcker", "Köhler", "Schäfer", "Fuchs"]),
    "pl": (["Łukasz", "Zofia", "Paweł", "Małgorzata", "Grzegorz", "Agnieszka", "Wojciech", "Żaneta"],
           ["Wiśniewski", "Kowalska", "Nowak", "Wójcik", "Zieliński", "Szymańska", "Dąbrowski", "Łęcka"]),
}  # fmt: skip
_ASCII = str.maketrans("ÉéèêëàâäçîïôöùûüÿñœæÆßłŁśŚźŹżŻąĄęĘćĆńŃóÓ'", "EeeeeaaaciioouuuynoaAslLsSzZzZaAeEcCnNoO-")


@dataclass(frozen=True)
class _Entity:
    id: int
    name: str
    lang: str
    code: str
    mail_domain: str


_ENTITIES = (
    _Entity(1, "Paris", "fr", "PAR", "example.fr"),
    _Entity(2, "Berlin", "de", "BER", "example.de"),
    _Entity(3, "Kraków", "pl", "KRK", "example.pl"),
)
_GROUPS = (
    # name, parent index (None = top), is_requester, is_assign
    ("IT", None, 0, 1),
    ("Service Desk", 0, 0, 1),
    ("Network & Security", 0, 0, 1),
    ("Workplace", 0, 0, 1),
    ("Servers <Linux/Windows>", 0, 0, 1),
    ("Sales & Marketing", None, 1, 0),
    ("Finance", None, 1, 0),
)
_CATEGORIES = (
    ("Network", None), ("VPN", 0), ("Wi-Fi", 0), ("Hardware", None), ("Laptop", 3), ("Printer", 3),
    ("Software", None), ("Office & Mail", 6), ("ERP", 6), ("Access", None), ("Password reset", 9),
    ("New account", 9),
)  # fmt: skip
_REQUEST_TYPES = ("Helpdesk", "E-Mail", "Phone", "Direct", "Written", "Other")
_STATES = ("In use", "In stock", "Retired", "Under repair")
_MANUFACTURERS = ("Dell", "HP", "Lenovo", "Cisco", "Brother", "Samsung", "EIZO", "Microsoft", "Mozilla", "SAP")
_ASSET_SPECS = {
    # prefix, manufacturers (indexes into _MANUFACTURERS), models, types, share of the asset count
    "Computer": ("PC", (0, 1, 2), ("Latitude 7440", "EliteBook 840 G10", "ThinkPad T14", "OptiPlex 7010"),
                 ("Laptop", "Desktop", "Workstation"), 0.6),
    "Monitor": ("MON", (0, 5, 6), ("P2423D", "S27A600", "FlexScan EV2495"), ("LCD", "OLED"), 0.2),
    "Printer": ("PRN", (1, 4), ("LaserJet M507", "HL-L8360CDW"), ("Laser", "Inkjet"), 0.1),
    "NetworkEquipment": ("NET", (3,), ("Catalyst 9200", "Meraki MR46"), ("Switch", "Access point"), 0.1),
}  # fmt: skip
_SOFTWARE = (
    ("Mozilla Firefox", 8, ("115.8 ESR", "124.0")), ("LibreOffice", None, ("7.6.4", "24.2")),
    ("Microsoft 365 Apps", 7, ("2402", "2403")), ("7-Zip", None, ("23.01",)), ("SAP GUI", 9, ("7.70", "8.00")),
    ("Adobe Acrobat Reader", None, ("2023.008",)), ("Notepad++", None, ("8.6.4",)),
    ("Cisco Secure Client", 3, ("5.1.2",)), ("Teams <new>", 7, ("24004",)), ("AT&T Global Network Client", None,
                                                                            ("9.9",)),
)  # fmt: skip
_STATUS_WEIGHTS_RECENT = (18, 24, 5, 12, 14, 27)
_STATUS_WEIGHTS_OLD = (2, 4, 1, 2, 5, 86)


class _Generator:
    """Builds a `Dataset` from `DataOptions`; every random choice comes from one `random.Random(seed)`."""

    def __init__(self, options: DataOptions, time: ServerTime) -> None:
        self.options = options
        self.time = time
        self.rng = random.Random(options.seed)
        self.data = Dataset()
        self._html_cache: dict[tuple[Any, ...], str] = {}
        self._encoded: dict[str, str] = {}
        self._langs: dict[int, str] = {}  # user id → the language they write in
        self._taken: set[str] = set()  # logins in use

    def run(self) -> Dataset:
        self._reference_data()
        self._users()
        self._assets()
        self._tickets()
        self._break_tickets()
        return self.data

    # - text helpers

    def _enc(self, raw: str) -> str:
        """Encoded once per distinct text, shared afterwards (keeps memory flat)."""
        found = self._encoded.get(raw)
        if found is None:
            found = self._encoded[raw] = encode_html(raw)
        return found

    def _html(self, *paragraphs: str) -> str:
        key = paragraphs
        found = self._html_cache.get(key)
        if found is None:
            body = "".join(f"<p>{html.escape(text, quote=False)}</p>" for text in paragraphs)
            found = self._html_cache[key] = encode_html(body)
        return found

    def _date(self, ts: int) -> str:
        return self.time.format(ts)

    # - reference data

    def _reference_data(self) -> None:
        stamp = self._date(self.options.anchor_ts - 800 * 86400)
        dated = {"date_mod": stamp, "date_creation": stamp}
        entities = self.data["Entity"]
        entities.add(
            {
                "id": 0,
                "name": self._enc("Root entity"),
                "entities_id": None,
                "level": 1,
                "completename": self._enc("Root entity"),
                "autoclose_delay": AUTOCLOSE_NEVER,
                **dated,
            }
        )
        for entity in _ENTITIES:
            entities.add(
                {
                    "id": entity.id,
                    "name": self._enc(entity.name),
                    "entities_id": 0,
                    "level": 2,
                    "completename": self._enc(f"Root entity > {entity.name}"),
                    "tag": entity.code,
                    "town": self._enc(entity.name),
                    "email": f"it@{entity.mail_domain}",
                    **dated,
                }
            )
        self._tree(
            "Group",
            [(name, parent) for name, parent, *_ in _GROUPS],
            dated,
            recursive=True,
            extra=[
                {
                    "is_requester": req,
                    "is_watcher": 1,
                    "is_assign": assign,
                    "is_notify": 1,
                    "is_task": assign,
                    "is_usergroup": 1,
                    "is_itemgroup": 1,
                    "is_manager": 1,
                }
                for _, _, req, assign in _GROUPS
            ],
        )
        self._tree(
            "ITILCategory",
            list(_CATEGORIES),
            dated,
            recursive=True,
            extra=[
                {"is_helpdeskvisible": 1, "is_incident": 1, "is_request": 1, "is_problem": 1, "is_change": 1}
                for _ in _CATEGORIES
            ],
        )
        for index, name in enumerate(_REQUEST_TYPES):
            self.data["RequestType"].add(
                {
                    "name": name,
                    "is_active": 1,
                    "is_ticketheader": 1,
                    "is_itilfollowup": 1,
                    "is_helpdesk_default": int(index == 0),
                    "is_followup_default": int(index == 0),
                    "is_mail_default": int(index == 1),
                    "is_mailfollowup_default": int(index == 1),
                    **dated,
                }
            )
        for name in ("Workaround", "Permanent fix", "Not reproducible"):
            self.data["SolutionType"].add(
                {
                    "name": name,
                    "is_recursive": 1,
                    "is_incident": 1,
                    "is_request": 1,
                    "is_problem": 1,
                    "is_change": 1,
                    **dated,
                }
            )
        for name in ("Diagnosis", "Intervention", "Ordering"):
            self.data["TaskCategory"].add(
                {
                    "name": name,
                    "completename": name,
                    "level": 1,
                    "is_recursive": 1,
                    "is_active": 1,
                    "is_helpdeskvisible": 1,
                    **dated,
                }
            )
        for name in _STATES:
            self.data["State"].add(
                {
                    "name": name,
                    "completename": name,
                    "level": 1,
                    "is_recursive": 1,
                    "is_visible_computer": 1,
                    "is_visible_monitor": 1,
                    "is_visible_printer": 1,
                    "is_visible_networkequipment": 1,
                    **dated,
                }
            )
        for name in _MANUFACTURERS:
            self.data["Manufacturer"].add({"name": name, **dated})
        for entity in _ENTITIES:
            for name in (("Bâtiment A", "Salle serveurs"), ("Hauptgebäude", "Lager"), ("Biuro główne", "Magazyn"))[
                entity.id - 1
            ]:
                self.data["Location"].add(
                    {
                        "entities_id": entity.id,
                        "name": self._enc(name),
                        "level": 1,
                        "completename": self._enc(name),
                        "building": self._enc(name),
                        **dated,
                    }
                )
        for asset, (_, _, models, types, _) in _ASSET_SPECS.items():
            for model in models:
                self.data[f"{asset}Model"].add({"name": self._enc(model), **dated})
            for kind in types:
                self.data[f"{asset}Type"].add({"name": self._enc(kind), **dated})

    def _tree(
        self,
        itemtype: str,
        nodes: list[tuple[str, int | None]],
        dated: dict[str, str],
        *,
        recursive: bool,
        extra: list[dict[str, Any]],
    ) -> None:
        """Rows of a tree dropdown in the root entity: `completename` = parent's + ' > ' + name, all encoded."""
        table, fk = self.data[itemtype], SCHEMAS[itemtype].tree_fk or ""
        ids: list[int] = []
        for (name, parent), more in zip(nodes, extra, strict=True):
            parent_id = ids[parent] if parent is not None else 0
            parent_row = table.get(parent_id) if parent_id else None
            completename = self._enc(name)
            if parent_row is not None:
                completename = f"{table.value(parent_row, 'completename')}{TREE_SEPARATOR}{completename}"
            ids.append(
                table.add(
                    {
                        "entities_id": 0,
                        "is_recursive": int(recursive),
                        "name": self._enc(name),
                        fk: parent_id,
                        "completename": completename,
                        "level": 1 if parent_row is None else 2,
                        **more,
                        **dated,
                    }
                )
            )

    # - people

    def _users(self) -> None:
        users, memberships = self.data["User"], self.data["Group_User"]
        stamp = self._date(self.options.anchor_ts - 790 * 86400)
        base = {
            "date_mod": stamp,
            "date_creation": stamp,
            "is_active": 1,
            "authtype": 1,
            "profiles_id": 0,
            "list_limit": None,
            "language": None,
        }
        # GLPI's installer users keep their ids (2..6); `tech` is the human technician of the tests.
        installer = (
            (2, "glpi", None, None, "glpi@example.org"), (3, "post-only", None, None, None),
            (4, "tech", "Lefèvre", "Chloé", "chloe.lefevre@example.fr"), (5, "normal", None, None, None),
            (6, "glpi-system", "Support", None, None),
        )  # fmt: skip
        for user_id, login, realname, firstname, email in installer:
            self._add_user(user_id, login, realname, firstname, email, 0, base)
        self.data["Group_User"].add({"users_id": 4, "groups_id": 2})
        self._taken = {row[users.pos["name"]] for row in users.rows.values()}
        hub_logins = ("itsm-hub", *self.options.extra_logins)
        for login in dict.fromkeys(hub_logins):
            if login not in self._taken:
                realname, firstname = ("Hub", "ITSM") if login == "itsm-hub" else (None, None)
                self._add_user(None, login, realname, firstname, f"{login}@example.org", 0, base)
                self._taken.add(login)
        n = self.options.tickets
        self.technicians = [4] + [self._person(base, tech=True) for _ in range(max(6, min(40, n // 2000)))]
        self.requesters = [self._person(base, tech=False) for _ in range(max(20, min(600, n // 100)))]
        assign_groups = [row[0] for row in self.data["Group"].rows.values() if row[self._gpos("is_assign")]]
        self.assign_groups = assign_groups[1:]  # "IT" itself is only a parent
        self.requester_groups = [row[0] for row in self.data["Group"].rows.values() if row[self._gpos("is_requester")]]
        for tech in self.technicians[1:]:
            memberships.add({"users_id": tech, "groups_id": self.rng.choice(self.assign_groups)})
        for requester in self.requesters:
            if self.rng.random() < 0.3:
                memberships.add({"users_id": requester, "groups_id": self.rng.choice(self.requester_groups)})
        self.user_entity = {row[0]: row[users.pos["entities_id"]] for row in users.rows.values()}

    def _gpos(self, column: str) -> int:
        return self.data["Group"].pos[column]

    def _add_user(
        self,
        user_id: int | None,
        login: str,
        realname: str | None,
        firstname: str | None,
        email: str | None,
        entity: int,
        base: dict[str, Any],
    ) -> int:
        values = {
            **base,
            "name": self._enc(login),
            "realname": self._enc(realname) if realname else None,
            "firstname": self._enc(firstname) if firstname else None,
            "entities_id": entity,
        }
        if user_id is not None:
            values["id"] = user_id
        new_id = self.data["User"].add(values)
        if email:
            self.data["UserEmail"].add({"users_id": new_id, "is_default": 1, "email": email})
        return new_id

    def _person(self, base: dict[str, Any], *, tech: bool) -> int:
        rng = self.rng
        entity = rng.choice(_ENTITIES)
        lang = entity.lang if rng.random() < 0.8 else "en"
        firstnames, lastnames = _PEOPLE[lang]
        firstname, realname = rng.choice(firstnames), rng.choice(lastnames)
        stem = f"{firstname}.{realname}".lower().translate(_ASCII)
        login = stem
        suffix = 1
        while login in self._taken:
            suffix += 1
            login = f"{stem}{suffix}"
        self._taken.add(login)
        domain = "example.org" if tech else entity.mail_domain
        user_id = self._add_user(
            None,
            login,
            realname,
            firstname,
            f"{login}@{domain}",
            entity.id,
            {**base, "phone": f"+{rng.randint(30, 49)} {rng.randint(100, 999)} {rng.randint(1000, 9999)}"},
        )
        if rng.random() < 0.15:  # a second, non-default address (aliases are common)
            self.data["UserEmail"].add({"users_id": user_id, "is_default": 0, "email": f"{stem}@alias.{domain}"})
        self._langs[user_id] = lang
        return user_id

    # - assets

    def _assets(self) -> None:
        rng, anchor = self.rng, self.options.anchor_ts
        self.asset_ids: dict[str, list[int]] = {}
        total = self.options.assets
        for asset, (prefix, makers, models, types, share) in _ASSET_SPECS.items():
            table = self.data[asset]
            model_col, type_col = f"{asset.lower()}models_id", f"{asset.lower()}types_id"
            ids = []
            count = max(1, round(total * share)) if total else 0
            for number in range(1, count + 1):
                entity = rng.choice(_ENTITIES)
                created = anchor - rng.randint(30 * 86400, 760 * 86400)
                modified = min(anchor - 60, created + rng.randint(0, 400 * 86400))
                dynamic = int(asset == "Computer" and rng.random() < 0.6)
                values = {
                    "entities_id": entity.id, "name": f"{prefix}-{entity.code}-{number:05d}",
                    "serial": "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=10)),
                    "otherserial": f"INV-{number:06d}", "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "states_id": rng.choice((1, 1, 1, 2, 3, 4)), "manufacturers_id": rng.choice(makers) + 1,
                    model_col: rng.randint(1, len(models)), type_col: rng.randint(1, len(types)),
                    "locations_id": rng.choice((0, entity.id * 2 - 1, entity.id * 2)),
                    "users_id": rng.choice(self.requesters) if asset == "Computer" else 0,
                    "groups_id": rng.choice(self.assign_groups) if asset != "Computer" else 0,
                    "is_dynamic": dynamic, "comment": self._enc("Imported by the inventory agent") if dynamic else None,
                    "date_mod": self._date(modified), "date_creation": self._date(created),
                    "last_inventory_update": self._date(modified) if dynamic else None,
                }  # fmt: skip
                ids.append(table.add(values))
            self.asset_ids[asset] = ids
        # Templates are rows too, and `GET /Computer` does not filter them out.
        stamp = self._date(anchor - 700 * 86400)
        for asset, name in (("Computer", "Standard laptop"), ("Monitor", "Standard screen")):
            self.data[asset].add(
                {
                    "entities_id": 0,
                    "name": None,
                    "is_template": 1,
                    "template_name": name,
                    "date_mod": stamp,
                    "date_creation": stamp,
                }
            )
        self._software(stamp)

    def _software(self, stamp: str) -> None:
        rng = self.rng
        versions: list[int] = []
        for name, maker, numbers in _SOFTWARE:
            software_id = self.data["Software"].add({
                "entities_id": 0, "is_recursive": 1, "name": self._enc(name), "is_valid": 1,
                "manufacturers_id": (maker + 1) if maker is not None else 0, "is_helpdesk_visible": 1,
                "date_mod": stamp, "date_creation": stamp})  # fmt: skip
            for number in numbers:
                versions.append(self.data["SoftwareVersion"].add({
                    "entities_id": 0, "is_recursive": 1, "softwares_id": software_id, "states_id": 1,
                    "name": number, "arch": "x86_64", "date_mod": stamp, "date_creation": stamp}))  # fmt: skip
        installs = self.data["Item_SoftwareVersion"]
        computers = self.data["Computer"]
        for computer_id in self.asset_ids["Computer"]:
            row = computers.rows[computer_id]
            for version in rng.sample(versions, rng.randint(2, 5)):
                installs.add(
                    {
                        "items_id": computer_id,
                        "itemtype": "Computer",
                        "softwareversions_id": version,
                        "entities_id": row[computers.pos["entities_id"]],
                        "is_dynamic": row[computers.pos["is_dynamic"]],
                        "date_install": row[computers.pos["date_creation"]][:10],
                        "date_mod": row[computers.pos["date_mod"]],
                        "date_creation": row[computers.pos["date_creation"]],
                    }
                )

    # - tickets and their timelines

    def _tickets(self) -> None:
        rng = self.rng
        rnd, choice = rng.random, rng.choice
        anchor, n = self.options.anchor_ts, self.options.tickets
        two_years = 730 * 86400
        d = self.data
        tickets, followups, solutions, tasks = d["Ticket"], d["ITILFollowup"], d["ITILSolution"], d["TicketTask"]
        actors, groups, items = d["Ticket_User"], d["Group_Ticket"], d["Item_Ticket"]
        texts = {lang: _TEXTS[lang] for lang in _LANGS}
        names = {lang: [self._enc(title) for title in texts[lang]["titles"]] for lang in _LANGS}
        replies = {
            (lang, side): [self._html(text) for text in texts[lang][key]]
            for lang in _LANGS for side, key in ((0, "requester_replies"), (1, "tech_replies"))
        }  # fmt: skip
        solution_texts = {lang: [self._html(text) for text in texts[lang]["solutions"]] for lang in _LANGS}
        task_texts = {lang: [self._html(text) for text in texts[lang]["tasks"]] for lang in _LANGS}
        linkable = [
            (asset, asset_id)
            for asset in ("Computer", "Printer", "Monitor", "NetworkEquipment")
            for asset_id in self.asset_ids.get(asset, [])
        ]
        requesters, techs = self.requesters, self.technicians
        stamps: dict[int, str] = {}  # one string per instant of the current ticket, shared by its rows

        def fmt(ts: int) -> str:
            found = stamps.get(ts)
            if found is None:
                found = stamps[ts] = self.time.format(ts)
            return found

        for ticket_id in range(1, n + 1):
            stamps.clear()
            requester = choice(requesters)
            lang = self._langs.get(requester, "en") if rnd() < 0.85 else choice(_LANGS)
            age = int(two_years * rnd() ** 1.4) + 3600
            opened = anchor - age
            status = rng.choices(range(1, 7), _STATUS_WEIGHTS_RECENT if age < 45 * 86400 else _STATUS_WEIGHTS_OLD)[0]
            tech = choice(techs) if status >= ASSIGNED else 0
            span = min(age - 60, int(rng.expovariate(1 / (2 * 86400))) + 600)
            n_followups = rng.choices((0, 1, 2, 3, 4), (22, 30, 26, 14, 8))[0]
            moments = sorted(opened + int(span * rnd()) + 1 for _ in range(n_followups + 1))
            closing = opened + span
            urgency = rng.choices((1, 2, 3, 4, 5), (5, 20, 50, 18, 7))[0]
            impact = rng.choices((1, 2, 3, 4, 5), (5, 20, 50, 18, 7))[0]
            text = texts[lang]
            content = self._html(choice(text["greetings"]), choice(text["details"]), choice(text["closings"]))
            last_updater = requester
            last_event = opened
            entity = self.user_entity.get(requester, 0)
            taken = None
            if status >= ASSIGNED:
                taken = min(opened + 300 + int(rnd() * 7200), closing)
            # actors
            actors.add({"tickets_id": ticket_id, "users_id": requester, "type": REQUESTER})
            if rnd() < 0.03:  # an unknown mail sender, kept as an e-mail-only requester
                actors.add(
                    {
                        "tickets_id": ticket_id,
                        "users_id": 0,
                        "type": REQUESTER,
                        "use_notification": 1,
                        "alternative_email": f"external{ticket_id}@partner.example.com",
                    }
                )
            if tech:
                actors.add({"tickets_id": ticket_id, "users_id": tech, "type": ASSIGN})
                if rnd() < 0.8:
                    groups.add({"tickets_id": ticket_id, "groups_id": choice(self.assign_groups), "type": ASSIGN})
            if rnd() < 0.08:
                actors.add({"tickets_id": ticket_id, "users_id": choice(requesters), "type": OBSERVER})
            if rnd() < 0.1:
                groups.add({"tickets_id": ticket_id, "groups_id": choice(self.requester_groups), "type": REQUESTER})
            # timeline: followups alternate between the requester and the technician
            for index in range(n_followups):
                side = (index + (1 if tech else 0)) % 2 if tech else 0
                author = tech if side else requester
                at = fmt(moments[index])
                followups.add({
                    "itemtype": "Ticket", "items_id": ticket_id, "date": at, "users_id": author,
                    "content": choice(replies[(lang, side)]), "is_private": int(side == 1 and rnd() < 0.2),
                    "requesttypes_id": 2 if side == 0 else 1, "date_mod": at, "date_creation": at,
                    "timeline_position": TIMELINE_RIGHT if side else TIMELINE_LEFT})  # fmt: skip
                last_updater, last_event = author, max(last_event, moments[index])
            actiontime = 0
            if tech and rnd() < 0.3:
                for _ in range(1 + int(rnd() < 0.3)):
                    at_ts = opened + int(span * rnd()) + 1
                    at = fmt(at_ts)
                    duration = 900 * rng.randint(1, 8)
                    actiontime += duration
                    tasks.add({
                        "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "tickets_id": ticket_id,
                        "taskcategories_id": rng.randint(0, 3), "date": at, "users_id": tech,
                        "content": choice(task_texts[lang]), "is_private": int(rnd() < 0.5), "actiontime": duration,
                        "state": 2 if status >= SOLVED or rnd() < 0.5 else 1, "users_id_tech": tech,
                        "date_mod": at, "date_creation": at, "timeline_position": TIMELINE_RIGHT})  # fmt: skip
                    last_event = max(last_event, at_ts)
            solvedate = closedate = closed_ts = None
            if status >= SOLVED:
                solved_ts = max(closing, last_event + 60)
                solvedate = fmt(solved_ts)
                if rnd() < 0.05:  # a first solution the requester refused, then a second one
                    refused_ts = opened + span // 2
                    solutions.add({"itemtype": "Ticket", "items_id": ticket_id, "content": choice(solution_texts[lang]),
                                   "date_creation": fmt(refused_ts), "date_mod": fmt(refused_ts), "users_id": tech,
                                   "status": SOLUTION_REFUSED, "date_approval": fmt(refused_ts + 3600),
                                   "users_id_approval": requester})  # fmt: skip
                closed_ts = min(anchor - 30, solved_ts + rng.randint(3600, 7 * 86400)) if status == CLOSED else None
                solution_status = SOLUTION_ACCEPTED if status == CLOSED else SOLUTION_WAITING
                solutions.add({
                    "itemtype": "Ticket", "items_id": ticket_id, "solutiontypes_id": rng.randint(0, 3),
                    "content": choice(solution_texts[lang]), "date_creation": solvedate, "date_mod": solvedate,
                    "users_id": tech, "status": solution_status,
                    "date_approval": fmt(closed_ts) if closed_ts else None,
                    "users_id_approval": requester if closed_ts else 0})  # fmt: skip
                last_updater, last_event = tech, max(last_event, solved_ts)
                if closed_ts is not None:
                    closed_ts = max(closed_ts, solved_ts)
                    closedate = fmt(closed_ts)
                    last_event = closed_ts
            waiting_since = fmt(last_event) if status == WAITING else None
            if linkable and rnd() < 0.35:
                asset, asset_id = choice(linkable)
                items.add({"itemtype": asset, "items_id": asset_id, "tickets_id": ticket_id})
            if rnd() < 0.03:
                self._document(ticket_id, requester, entity, opened)
            date = fmt(opened)
            tickets.add({
                "id": ticket_id, "entities_id": entity, "name": choice(names[lang]), "date": date,
                "closedate": closedate, "solvedate": solvedate,
                "takeintoaccountdate": fmt(taken) if taken else None, "date_mod": fmt(min(last_event, anchor)),
                "users_id_lastupdater": last_updater, "status": status, "users_id_recipient": requester,
                "requesttypes_id": rng.choices((1, 2, 3), (50, 40, 10))[0], "content": content,
                "urgency": urgency, "impact": impact, "priority": compute_priority(urgency, impact),
                "itilcategories_id": rng.randint(0, len(_CATEGORIES)), "type": 1 if rnd() < 0.7 else 2,
                "global_validation": 1, "time_to_resolve": fmt(opened + 5 * 86400) if rnd() < 0.4 else None,
                "begin_waiting_date": waiting_since, "close_delay_stat": (closed_ts - opened) if closedate else 0,
                "solve_delay_stat": (max(closing, last_event) - opened) if solvedate else 0,
                "takeintoaccount_delay_stat": (taken - opened) if taken else 0, "actiontime": actiontime,
                "is_deleted": int(rnd() < 0.01), "locations_id": rng.choice((0, 0, 0, entity * 2)) if entity else 0,
                "date_creation": date})  # fmt: skip

    def _document(self, ticket_id: int, user: int, entity: int, opened: int) -> None:
        rng = self.rng
        name, mime = rng.choice(
            (
                ("screenshot.png", "image/png"),
                ("error log.txt", "text/plain"),
                ("Rechnung & Lieferschein.pdf", "application/pdf"),
            )
        )
        at = self._date(opened + 30)
        sha1 = f"{rng.getrandbits(160):040x}"
        extension = name.rsplit(".", 1)[1].upper()
        document_id = self.data["Document"].add({
            "entities_id": entity, "name": self._enc(f"Document Ticket {ticket_id}"), "filename": self._enc(name),
            "filepath": f"{extension}/{sha1[:2]}/{sha1[2:]}.{extension.lower()}", "mime": mime, "date_mod": at,
            "users_id": user, "tickets_id": ticket_id, "sha1sum": sha1, "tag": f"{rng.getrandbits(64):016x}",
            "date_creation": at})  # fmt: skip
        self.data["Document_Item"].add(
            {
                "documents_id": document_id,
                "items_id": ticket_id,
                "itemtype": "Ticket",
                "entities_id": entity,
                "date_mod": at,
                "users_id": user,
                "timeline_position": TIMELINE_LEFT,
                "date_creation": at,
                "date": at,
            }
        )

    def _break_tickets(self) -> None:
        tickets = self.data["Ticket"]
        for index, ticket_id in enumerate(sorted(set(self.options.malformed_ids))):
            if ticket_id in tickets.rows:
                break_ticket(tickets, ticket_id, MALFORMED_KINDS[index % len(MALFORMED_KINDS)])


def break_ticket(tickets: Table, ticket_id: int, kind: str) -> None:
    """Damage a ticket the way real GLPI data is sometimes damaged (imports, old upgrades, direct SQL)."""
    changes = {
        "zero_date": {"date": "0000-00-00 00:00:00"},
        "bad_status": {"status": 99},
        "null_name": {"name": None},
        "impossible_date_mod": {"date_mod": "2025-02-30 25:61:00"},
    }
    if kind not in changes:
        raise ValueError(f"unknown malformation {kind!r}; one of {', '.join(MALFORMED_KINDS)}")
    tickets.update(ticket_id, changes[kind])


def generate(options: DataOptions, time: ServerTime) -> Dataset:
    """A deterministic instance: the same options (seed, sizes, anchor) always give the same rows."""
    return _Generator(options, time).run()
