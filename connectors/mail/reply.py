"""The new part of a reply: quoted history and signature cut by mail-parser-reply (several languages)."""

from __future__ import annotations

from functools import cache

from mailparser_reply import EmailReplyParser

LANGUAGES = ("en", "de", "fr", "it", "es", "nl", "pl", "sv")


@cache
def _parser() -> EmailReplyParser:
    return EmailReplyParser(languages=list(LANGUAGES))


def reply_text(text: str) -> str:
    """The latest reply without quotes and signature; the whole text when cutting would leave nothing."""
    try:
        latest = (_parser().parse_reply(text) or "").strip()
    except Exception:  # a parser hiccup must not lose the mail: keep everything
        latest = ""
    return latest or text.strip()
