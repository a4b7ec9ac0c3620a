"""The condition language of rules and policies: each operator, the combinations, and the errors people see."""

import pytest
from pydantic import ValidationError

from itsm_core.models import TicketStatus
from itsm_core.rules.conditions import RequesterGroups, compile_condition, parse_condition, record_view
from itsm_core.rules.spec import RulesConfig

TICKET = record_view(
    {
        "title": "VPN down for all users",
        "description": "Since the upgrade nobody in Munich can connect.",
        "status": TicketStatus.NEW,
        "priority": 2,
        "category": "Network > VPN",
        "requester": "Anna.Schmidt@Example.DE",
        "source_type": "email",
        "tenant": None,
        "custom_fields": {"glpi_id": 42, "labels": ["vip", "munich"]},
    }
)


def holds(condition) -> bool:
    return compile_condition(parse_condition(condition))(TICKET)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"field": "category", "equals": "network > vpn"}, True),  # text ignores case
        ({"field": "status", "equals": "new"}, True),  # enums by their value
        ({"field": "priority", "equals": 3}, False),
        ({"field": "priority", "in": [1, 2]}, True),
        ({"field": "source", "in": ["glpi", "solman"]}, False),
        ({"field": "tenant", "exists": False}, True),  # None counts as absent
        ({"field": "custom_fields.glpi_id", "exists": True}, True),
        ({"field": "custom_fields.nope", "exists": True}, False),
        ({"field": "title", "contains": "vpn"}, True),
        ({"field": "custom_fields.labels", "contains": "VIP"}, True),  # a list: membership
        ({"field": "custom_fields.labels", "contains": "vi"}, False),  # … not a substring of an element
        ({"field": "text", "contains": "munich"}, True),  # title and description together
        ({"field": "text", "contains_any": ["printer", "all users"]}, True),
        ({"field": "category", "startswith": "NETWORK"}, True),
        ({"field": "text", "regex": r"\bdown\b"}, True),
        ({"field": "text", "regex": r"^printer"}, False),
        ({"field": "requester_domain", "equals": "example.de"}, True),
        ({"field": "priority", "gt": 2}, False),
        ({"field": "priority", "gte": 2}, True),
        ({"field": "priority", "lt": 3}, True),
        ({"field": "priority", "lte": 1}, False),
        ({"field": "title", "gt": 1}, False),  # not a number: never compares
        ({"field": "nonexistent", "lt": 5}, False),  # missing: never compares
    ],
)
def test_each_operator(condition, expected):
    assert holds(condition) is expected


def test_all_any_not_combine_and_nest():
    vpn = {"field": "text", "contains": "vpn"}
    printer = {"field": "text", "contains": "printer"}
    assert holds({"all": [vpn, {"not": printer}]})
    assert not holds({"all": [vpn, printer]})
    assert holds({"any": [printer, {"all": [vpn, {"field": "priority", "lte": 2}]}]})
    assert not holds({"any": []}) and holds({"all": []})
    assert holds({"not": {"not": vpn}})


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ({"field": "title", "contains": "a", "equals": "b"}, "exactly one operator for 'title'"),
        ({"field": "title"}, "exactly one operator"),
        ({"field": "title", "regex": "(unclosed"}, "not a valid regular expression"),
        ({"field": "title", "containz": "a"}, "containz"),
        ({"all": [{"field": "title", "contains": "a"}], "extra": 1}, "extra"),
        ({"any": [{"not": {"field": "x", "gte": "high"}}]}, "gte"),
    ],
)
def test_a_wrong_condition_is_refused_naming_what_is_wrong(condition, fragment):
    with pytest.raises(ValidationError) as caught:
        parse_condition(condition)
    assert fragment in str(caught.value)


def test_describe_match_says_which_leaves_hold_and_what_they_found():
    from itsm_core.rules.conditions import describe_match

    condition = parse_condition(
        {
            "all": [
                {"field": "text", "contains_any": ["vpn", "anyconnect"]},
                {"not": {"field": "category", "equals": "hardware"}},
                {"any": [{"field": "title", "regex": r"\bdown\b"}, {"field": "priority", "lte": 2}]},
            ]
        }
    )
    view = record_view({"title": "AnyConnect is down", "description": "", "priority": 4, "category": None})
    assert describe_match(condition, view) == [
        "text contains 'anyconnect'",
        "not (category equals 'hardware')",
        r"title matches /\bdown\b/ ('down')",
    ]
    assert describe_match(condition, record_view({"title": "AnyConnect is up", "priority": 4})) == []
    by_priority = record_view({"title": "VPN slow", "priority": 1})
    assert describe_match(condition, by_priority)[-1] == "priority lte 2.0 (1)"


def test_requester_groups_come_from_the_source_and_from_the_config():
    configured = RequesterGroups(
        {"vip": ["CEO@example.org", "@board.example.org"], "finance": ["@example.org"], "none": ["x@other.org"]}
    )

    def groups(requester, named=None):
        return record_view({"requester": requester, "custom_fields": {"requester_groups": named}}, configured)[
            "requester_groups"
        ]

    assert groups("ceo@Example.org") == ["finance", "vip"]  # an address (any case) and its domain
    assert groups("ann@paris.board.example.org") == ["finance", "vip"]  # a domain takes its subdomains
    assert groups("ann@notexample.org") == []  # … but not a name that merely ends alike
    assert groups("example.org") == []  # a login (no @) is in no domain
    assert groups("ann@other.org", named=["Helpdesk"]) == ["Helpdesk"]  # what the source names (GLPI)
    assert groups("ann@other.org", named="Helpdesk") == ["Helpdesk"]
    assert groups("") == [] and record_view({"title": "t"})["requester_groups"] == []
    vip = compile_condition(parse_condition({"field": "requester_groups", "contains": "VIP"}))
    assert vip(record_view({"requester": "ceo@example.org"}, configured))
    assert not vip(record_view({"requester": "ann@example.org"}, configured))


@pytest.mark.parametrize("member", ["board.example.org", "ceo@", " @example.org"])
def test_a_requester_group_member_must_be_an_address_or_a_domain(member):
    with pytest.raises(ValidationError, match=r"(?s)requester_groups.*requester group 'vip'.*neither an address"):
        RulesConfig.model_validate({"requester_groups": {"vip": ["ok@example.org", member]}})
