"""The sub-item stage: rows by ticket, in id order, exactly as they were put in."""

from __future__ import annotations

import math

from connectors.glpi.staging import SubItemStage
from connectors.glpi.timelines import ticket_of


def test_rows_come_back_by_ticket_in_id_order_exactly_as_added_the_last_copy_of_a_row_winning() -> None:
    stage = SubItemStage()
    try:
        owner = ticket_of("TicketTask")
        stage.add("TicketTask", [{"id": 9, "tickets_id": 1, "v": "a"}, {"id": 3, "tickets_id": 2, "v": "b"}], owner)
        stage.add(
            "TicketTask",
            [
                {"id": 5, "tickets_id": 1, "v": math.inf, "big": 10**30, "nested": {"l": [1, None, 2.5]}},
                {"id": 9, "tickets_id": 1, "v": "a, read again"},  # a later page's copy of the same row
                {"id": 7, "tickets_id": 0, "v": "no ticket: not kept"},
            ],
            owner,
        )
        first = stage.rows("TicketTask", [1, 2, 3])
        # added after the first read (its index exists by then): still found
        stage.add("TicketTask", [{"id": 1, "tickets_id": 3, "v": float("nan")}], owner)
        later = stage.rows("TicketTask", [3])
        other = stage.rows("ITILSolution", [1])
    finally:
        stage.close()
    assert first == {
        1: [
            {"id": 5, "tickets_id": 1, "v": math.inf, "big": 10**30, "nested": {"l": [1, None, 2.5]}},
            {"id": 9, "tickets_id": 1, "v": "a, read again"},
        ],
        2: [{"id": 3, "tickets_id": 2, "v": "b"}],
        3: [],
    }
    assert [row["id"] for row in later[3]] == [1] and math.isnan(later[3][0]["v"])
    assert other == {1: []}
    assert not stage.path.exists()
