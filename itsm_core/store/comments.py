"""Comments on tickets, written in batches, with their attachments stored once per content hash."""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr

from sqlalchemy import Connection

from itsm_core.models import Comment, utcnow
from itsm_core.store.bulk import insert_returning
from itsm_core.store.tables import CommentRow
from itsm_core.store.tickets import store_attachments

comments = CommentRow.__table__


def add_comments(conn: Connection, items: Sequence[tuple[int, Comment]]) -> list[int]:
    """Add each (ticket id, comment); returns the new comment ids in order."""
    if not items:
        return []
    rows = [
        {
            "ticket_id": ticket_id,
            "public": comment.public,
            "author": comment.author,
            "body": comment.body,
            "origin": comment.origin,
            "created_at": comment.created_at,
        }
        for ticket_id, comment in items
    ]
    ids = insert_returning(conn, comments, rows)
    store_attachments(
        conn,
        [
            (ticket_id, comment_id, attachment)
            for (ticket_id, comment), comment_id in zip(items, ids, strict=True)
            for attachment in comment.attachments
        ],
        utcnow(),
    )
    return ids


def author_address(author: str | None) -> str:
    """The address in a comment's author "Name <address>" (or the text itself: a login), case-folded."""
    text = author or ""
    return (parseaddr(text)[1] or text).strip().casefold() if "<" in text else text.strip().casefold()
