"""Text from outside, made safe to store and to show: no terminal control sequences, no stray control characters.

A subject or a name is printed by the CLI and shown in the Prefect UI: an ESC sequence in it could move the
cursor, retitle the terminal or hide text (OSC 8 links), so intake removes them and the CLI removes them again
from whatever an older record holds. The raw record keeps the original bytes.
"""

from __future__ import annotations

import re

# CSI (ESC [ … final byte), OSC (ESC ] … BEL or ST), other two-byte ESC sequences, then lone C0/C1 controls.
_SEQUENCES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS_IN_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROLS_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # keeps tab, LF, CR


# Every whitespace but the ideographic space (U+3000): Japanese and Chinese text uses it as a character of its
# own (an indent, a gap between names), so it is kept as written, never turned into an ASCII space.
_SPACES = re.compile(r"[^\S\u3000]+")


def collapse_spaces(value: str) -> str:
    """Runs of whitespace as one space, no blank edges; an ideographic space (U+3000) is kept as it is."""
    return _SPACES.sub(" ", value).strip(" ")


def single_line(value: str) -> str:
    """A one-line value (subject, name): control sequences removed, other controls and line breaks as spaces."""
    value = _SEQUENCES.sub("", value)
    return collapse_spaces(_CONTROLS_IN_LINE.sub(" ", value))


def without_controls(text: str) -> str:
    """A multi-line text (a body): control sequences and controls removed; tabs and line breaks kept."""
    return _CONTROLS_IN_TEXT.sub("", _SEQUENCES.sub("", text))
