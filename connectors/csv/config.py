"""The config of `kind: csv`: tickets (and their comments) from CSV or JSON Lines exports of another helpdesk.

```yaml
sources:
  - name: legacy
    kind: csv
    tickets: exports/tickets.csv     # a file, or a folder read with `pattern`; relative to this config file
    comments: exports/comments.csv   # optional: one row per comment, naming its ticket
    delimiter: ";"                   # Excel in many European locales
    encoding: utf-8-sig              # default; reads Excel's byte-order mark too (cp1252 for older exports)
    timezone: Europe/Paris           # what time zone the export's times without an offset are in
    mapping: csv                     # default; copy mappings/csv.yaml to rename columns
```
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator

from itsm_core.config import SourceBase, anchor
from itsm_core.models import ZoneName

#: Characters the readers need as themselves, byte for byte: line ends, quotes, the usual delimiters.
_ASCII_SYNTAX = "\r\n\"',;|\t: "
#: Ways to write a tab in YAML without a literal tab character.
_TAB_SPELLINGS = {"tab", "\\t", "TAB"}


class CommentColumns(BaseModel):
    """Which column of the comments file holds what (every name may be changed; unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ticket: str = Field(default="ticket_id", min_length=1, description="the id of the ticket the comment is on")
    id: str = Field(default="id", min_length=1, description="the comment's own id (when empty: its content)")
    body: str = Field(default="body", min_length=1)
    author: str = Field(default="author", min_length=1)
    created_at: str = Field(default="created_at", min_length=1)
    public: str = Field(default="public", min_length=1, description="true/false, yes/no, 1/0; empty: public")


class CsvSource(SourceBase):
    """Tickets from CSV or JSON Lines files, one row (one line) per ticket; comments from a second file.

    Read-only and not incremental: every run offers every row and the landing's payload hash makes an unchanged
    row a no-op (`connectors/csv/source.py` states the contract).
    """

    kind: Literal["csv"]
    tickets: Path = Field(description="a file, or a folder whose files matching `pattern` are read in name order")
    pattern: str = Field(default="*.csv", min_length=1, description="files read when `tickets` is a folder")
    comments: Path | None = Field(default=None, description="a file of comment rows, each naming its ticket")
    format: Literal["auto", "csv", "jsonl"] = Field(
        default="auto", description="auto: .jsonl and .ndjson files are JSON Lines, other files CSV"
    )
    delimiter: str = Field(default=",", description="CSV only: one character; 'tab' for tab-separated files")
    encoding: str = Field(default="utf-8-sig", description="a Python codec name; utf-8-sig also reads a UTF-8 BOM")
    id_column: str = Field(default="id", min_length=1, description="the column holding the ticket's own number")
    comment_columns: CommentColumns = Field(default_factory=CommentColumns)
    timezone: ZoneName = Field(default="UTC", description="the zone of the export's date-times that carry no offset")

    @field_validator("delimiter", mode="before")
    @classmethod
    def _one_character(cls, value: object) -> object:
        if isinstance(value, str) and value in _TAB_SPELLINGS:
            return "\t"
        if not isinstance(value, str) or len(value) != 1:
            raise ValueError(
                f"the delimiter must be one character, such as ',', ';', '|' or 'tab' (got {value!r}); "
                "it is the character between the values of a row"
            )
        if value in '\r\n"':
            raise ValueError(f"{value!r} cannot be the delimiter: CSV reserves it (line ends, quotes)")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r}; use a Python codec name such as utf-8-sig (the default, which also "
                "reads Excel's byte-order mark), utf-8, cp1252 or latin-1"
            ) from None
        try:
            readable = _ASCII_SYNTAX.encode("ascii").decode(value) == _ASCII_SYNTAX
        except (UnicodeDecodeError, LookupError):  # LookupError: a codec that is no text encoding (rot13)
            readable = False
        if not readable:
            raise ValueError(
                f"the encoding {value!r} does not write line ends and delimiters as single ASCII bytes (UTF-16 and "
                "UTF-32 do not); save the export as UTF-8 (Excel: 'CSV UTF-8') and use utf-8-sig"
            )
        return value

    def anchored(self, base_dir: Path) -> Self:
        comments = anchor(self.comments, base_dir) if self.comments is not None else None
        return self.model_copy(update={"tickets": anchor(self.tickets, base_dir), "comments": comments})
