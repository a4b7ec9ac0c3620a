"""ITIL priority: a lookup in the impact × urgency matrix.

Impact and urgency are 1-based levels where 1 is the highest; the matrix is configurable in size and values
(`rules.priority.matrix` in the config). The default is the common 3 × 3 ITIL matrix giving priorities 1–5.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_MATRIX: list[list[int]] = [
    # urgency: 1  2  3
    [1, 2, 3],  # impact 1 (high: many users or a critical service)
    [2, 3, 4],  # impact 2 (medium)
    [3, 4, 5],  # impact 3 (low: one user)
]


class PriorityMatrix(BaseModel):
    """Rows are impact levels 1..n, columns urgency levels 1..m; cells are priorities (1 = most urgent)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    matrix: list[list[int]] = Field(default_factory=lambda: [row[:] for row in DEFAULT_MATRIX])
    default_impact: int = 3
    default_urgency: int = 3

    @model_validator(mode="after")
    def _rectangular(self) -> PriorityMatrix:
        if not self.matrix or not self.matrix[0]:
            raise ValueError("matrix must have at least one row and one column")
        width = len(self.matrix[0])
        if any(len(row) != width for row in self.matrix):
            raise ValueError("every row of the matrix must have the same number of urgency columns")
        if any(cell < 1 for row in self.matrix for cell in row):
            raise ValueError("priorities in the matrix must be 1 or more")
        if not 1 <= self.default_impact <= self.impact_levels:
            raise ValueError(f"default_impact must be within 1..{self.impact_levels}")
        if not 1 <= self.default_urgency <= self.urgency_levels:
            raise ValueError(f"default_urgency must be within 1..{self.urgency_levels}")
        return self

    @property
    def impact_levels(self) -> int:
        return len(self.matrix)

    @property
    def urgency_levels(self) -> int:
        return len(self.matrix[0])

    def priority(self, impact: int | None, urgency: int | None) -> int:
        """The priority for an impact and urgency; unknown levels take the configured defaults.

        Out-of-range levels raise ValueError: a mapping that produces them is wrong, and guessing would hide it.
        """
        impact = self.default_impact if impact is None else impact
        urgency = self.default_urgency if urgency is None else urgency
        if not 1 <= impact <= self.impact_levels:
            raise ValueError(f"impact {impact} is outside the matrix (1..{self.impact_levels})")
        if not 1 <= urgency <= self.urgency_levels:
            raise ValueError(f"urgency {urgency} is outside the matrix (1..{self.urgency_levels})")
        return self.matrix[impact - 1][urgency - 1]
