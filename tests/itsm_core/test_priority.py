import pytest
from pydantic import ValidationError

from itsm_core.rules.priority import PriorityMatrix


def test_default_itil_matrix():
    matrix = PriorityMatrix()
    assert matrix.priority(1, 1) == 1
    assert matrix.priority(1, 3) == 3
    assert matrix.priority(3, 1) == 3
    assert matrix.priority(2, 2) == 3
    assert matrix.priority(3, 3) == 5


def test_unknown_levels_take_the_defaults():
    matrix = PriorityMatrix(default_impact=2, default_urgency=1)
    assert matrix.priority(None, None) == 2
    assert matrix.priority(1, None) == 1


def test_a_configured_five_by_four_matrix():
    rows = [[1, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [3, 4, 5, 5], [4, 5, 5, 5]]
    matrix = PriorityMatrix(matrix=rows, default_impact=5, default_urgency=4)
    assert (matrix.impact_levels, matrix.urgency_levels) == (5, 4)
    assert matrix.priority(4, 2) == 4
    assert matrix.priority(None, None) == 5
    with pytest.raises(ValueError, match="urgency 5 is outside the matrix"):
        matrix.priority(1, 5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"matrix": [[1, 2], [3]]}, "same number"),
        ({"matrix": []}, "at least one row"),
        ({"matrix": [[0, 1], [1, 2]], "default_impact": 1, "default_urgency": 1}, "1 or more"),
        ({"default_impact": 4}, "default_impact"),
    ],
)
def test_invalid_matrices_are_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        PriorityMatrix(**kwargs)
