"""One raw RFC 5322 message (bytes) in, one `ParsedMail` out, or `MailParseError` when the bytes are no message.

A file counts as corrupt only by objective checks: it is empty, has NUL bytes in its header block, has no
header fields, or has no From address (RFC 5322 §3.6 requires one). Everything else parses, however sloppy:
wrong or unknown charsets are detected with charset_normalizer, and text never fails to decode.
"""

from __future__ import annotations

import codecs
import email
import functools
import hashlib
import mimetypes
import re
from datetime import UTC, datetime
from email import policy
from email.header import decode_header
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.utils import getaddresses, parsedate_to_datetime, unquote

import charset_normalizer
from inscriptis import get_text
from pydantic import BaseModel

from connectors._html import normalise_text, sanitise_html
from itsm_core.errors import MailParseError
from itsm_core.text import single_line

# Labels that mail clients use for a superset: decoding by the superset reads the same text and also the extra
# characters (the WHATWG Encoding Standard maps these labels the same way; e.g. "€" in mail labelled latin-1).
_SUPERSETS = {
    "iso8859-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "utf-8": "utf-8-sig",  # a leading BOM is not text
}

# Candidates when a declared charset is missing or wrong, most common in mail first; the rank breaks ties,
# since single-byte charsets often score the same on short texts.
_LIKELY_CHARSETS = (
    "cp1252", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r", "cp1253", "cp1254", "cp1257",
    "iso2022_jp", "shift_jis", "euc_jp", "gb18030", "big5", "euc_kr", "cp1255", "cp1256", "cp874",
)  # fmt: skip


class _CachedHeaderRegistry(HeaderRegistry):
    """The stdlib's structured headers, parsed once per distinct (name, value). `policy.default` parses a header
    again on every access — `get_content_type` alone does so a dozen times per message — which made header parsing
    most of the intake's time (bench/ingest.py). Header objects are immutable, so sharing them is safe. The cache
    is small on purpose: the repeats are within one message and a few common values (a header keeps its parse
    tree: 4096 entries cost 50 MB and were slower); long values (a 200 KB subject) are never kept."""

    def __call__(self, name: str, value: str) -> BaseHeader:
        return _parsed_header(name, value) if len(value) <= 1000 else super().__call__(name, value)


_REGISTRY = HeaderRegistry()


@functools.lru_cache(maxsize=128)
def _parsed_header(name: str, value: str) -> BaseHeader:
    return _REGISTRY(name, value)


_POLICY = policy.default.clone(header_factory=_CachedHeaderRegistry())
_ANGLE_ID = re.compile(r"<([^<>\s]+)>")
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


class MailAttachment(BaseModel):
    filename: str
    content_type: str
    content: bytes
    content_id: str | None = None
    inline: bool = False


class ParsedMail(BaseModel):
    message_id: str | None
    subject: str
    from_address: str
    from_name: str | None
    reply_to: list[str]
    to: list[str]
    cc: list[str]
    date: datetime | None
    in_reply_to: str | None
    references: list[str]
    text: str
    html: str | None
    attachments: list[MailAttachment]
    auto_submitted: str | None
    x_loop: list[str] = []  # addresses in X-Loop headers: systems this mail already went through


def parse_message(raw: bytes) -> ParsedMail:
    """Parse one message; raises `MailParseError` when the bytes are not an RFC 5322 message. A leading mbox
    postmark line ("From sender date", no colon), as one-message `.box`/`.mbox` exports start, is not a header and
    is left out."""
    raw = _MBOX_POSTMARK.sub(b"", raw, count=1)
    _check_header_block(raw)
    msg = email.message_from_bytes(raw, policy=_POLICY)
    if not msg.keys():
        raise MailParseError(
            "no header fields: the file does not start with 'Name: value' header lines, "
            "so it is not an RFC 5322 message (binary data or plain text saved as .eml?)"
        )
    from_name, from_address = _sender(msg)
    plain, html_part = _body_parts(msg)
    html = _part_text(html_part) if html_part is not None else None
    return ParsedMail(
        message_id=_bare_id(_raw_header(msg, "Message-ID")),
        subject=single_line(_decoded_header(msg, "Subject")),
        from_address=from_address,
        from_name=from_name,
        reply_to=_address_list(msg, "Reply-To"),
        to=_address_list(msg, "To"),
        cc=_address_list(msg, "Cc"),
        date=_date(msg),
        in_reply_to=_first_id(_raw_header(msg, "In-Reply-To")),
        references=_id_list(_raw_header(msg, "References")),
        text=normalise_text(_body_text(plain, html)),
        html=sanitise_html(html) if html is not None else None,
        attachments=_attachments(msg, skip=[p for p in (plain, html_part) if p is not None]),
        auto_submitted=(_raw_header(msg, "Auto-Submitted") or "").strip() or None,
        x_loop=sorted({a for _, a in getaddresses(msg.get_all("X-Loop") or [])} - {""}),
    )


# --- corruption checks -------------------------------------------------------------------------------------


_MBOX_POSTMARK = re.compile(rb"\AFrom (?![ \t]*:)[^\r\n]*\r?\n")  # "From " then no colon: not a From: header


def _check_header_block(raw: bytes) -> None:
    if not raw or not raw.strip():
        raise MailParseError("empty file: a message needs at least a From header")
    header_block = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    if b"\x00" in header_block:
        raise MailParseError("NUL bytes in the header block: this is binary data, not an RFC 5322 message")


def _sender(msg: EmailMessage) -> tuple[str | None, str]:
    if _raw_header(msg, "From") is None:
        raise MailParseError("no From header: RFC 5322 requires every message to name its sender")
    addresses = _addresses(msg, "From")
    if not addresses:
        shown = _repair(_raw_header(msg, "From") or "").strip()[:80]
        raise MailParseError(f"the From header has no e-mail address (name@domain): {shown!r}")
    name, address = addresses[0]
    return name or None, address


# --- headers -----------------------------------------------------------------------------------------------


def _raw_header(msg: Message, name: str) -> str | None:
    """The first header of that name as it stands in the source, unfolded; bypasses the header registry,
    whose parsers replace undecodable bytes with U+FFFD (and, in some versions, raise on odd values)."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return _FOLD.sub("", str(value))
    return None


def _decoded_header(msg: Message, name: str) -> str:
    """An unstructured header (Subject) with RFC 2047 words decoded, each by its charset with fallback."""
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    # raw 8-bit bytes (RFC 6532 allows UTF-8) come from the parser as surrogates: decode them first
    return _decode_words(_repair(raw))


def _addresses(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, lower-cased addr-spec) for every real address in every header of that name."""
    found: list[tuple[str, str]] = []
    try:
        headers = msg.get_all(name) or []
        # an address without a domain has no "@" in addr_spec; an unterminated quote may hide one in the local part
        pairs = [(a.display_name, a.addr_spec if a.domain else "") for h in headers for a in h.addresses]
    except Exception:  # the registry's parser chokes on some broken lists; the lenient legacy one does not
        pairs = [(_decode_words(n), a) for n, a in getaddresses([_raw_header(msg, name) or ""])]
    for display, addr_spec in pairs:
        address = _repair(addr_spec).strip().lower()
        local, _, domain = address.rpartition("@")
        if local and domain and len(address) <= MAX_ADDRESS:  # "Ann", "<>" or 400 characters name nobody
            found.append((single_line(_repair(display)), address))
    return found


def _address_list(msg: EmailMessage, name: str) -> list[str]:
    return [address for _, address in _addresses(msg, name)]


def _date(msg: Message) -> datetime | None:
    raw = _raw_header(msg, "Date")
    if not raw:
        return None
    try:
        parsed = parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:  # "-0000": RFC 5322 says the time is UTC, the sender's zone unknown
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


#: Longest message id kept as written; a longer one (RFC 5322 sets no limit; the store's column does) is kept
#: by a stable hash, so it still threads and still dedupes.
MAX_MESSAGE_ID = 400
#: Longest address taken: RFC 5321 allows 64 + 1 + 255; a longer "address" names no mailbox.
MAX_ADDRESS = 320


def bounded_message_id(value: str) -> str:
    """`value`, or `sha256:<hex>` of it when longer than MAX_MESSAGE_ID."""
    if len(value) <= MAX_MESSAGE_ID:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", errors="surrogateescape")).hexdigest()


def _bare_id(raw: str | None) -> str | None:
    # the same normalisation as record.message_identity, so a message's identity and its field agree
    value = (raw or "").strip().strip("<>").strip()
    return bounded_message_id(value) if value else None


def _first_id(raw: str | None) -> str | None:
    ids = _id_list(raw)
    return ids[0] if ids else None


def _id_list(raw: str | None) -> list[str]:
    if not raw:
        return []
    return [bounded_message_id(i) for i in _ANGLE_ID.findall(raw) or raw.split()]


# --- charsets ----------------------------------------------------------------------------------------------


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Text of `data` by its declared charset; a wrong or unknown declaration falls back to detection."""
    codec = _codec(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):  # LookupError: a known name that is no text codec (base64)
            pass
    try:
        # valid UTF-8 with non-ASCII bytes almost never happens by accident; it is the default of RFC 6532
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    guessed = _detect(data)
    return guessed if guessed is not None else data.decode("utf-8", errors="replace")


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    label = charset.strip().strip("\"'").split("*")[0].lower()  # "*en": RFC 2231 language suffix
    try:
        name = codecs.lookup(label).name
    except LookupError:  # "unknown-8bit", "x-user-defined", typos
        return None
    return _SUPERSETS.get(name, name)


def _detect(data: bytes) -> str | None:
    """charset_normalizer's best reading among charsets seen in mail; lowest chaos, then coherence, then rank."""
    scored = []
    for rank, candidate in enumerate(_LIKELY_CHARSETS):
        match = charset_normalizer.from_bytes(data, cp_isolation=[candidate]).best()
        if match is not None:
            scored.append((round(match.chaos, 2), -round(match.coherence, 2), rank, str(match)))
    return min(scored)[3] if scored else None


def _repair(value: str) -> str:
    """Undecodable header bytes come back from the parser as surrogate escapes; decode them properly."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    return _decode_bytes(value.encode("ascii", errors="surrogateescape"), None)


# --- body --------------------------------------------------------------------------------------------------


def _body_parts(msg: EmailMessage) -> tuple[Message | None, Message | None]:
    """The text/plain and text/html parts that render the message (not attachments); either may be None."""
    if msg.get_content_maintype() == "multipart" and not msg.is_multipart():
        return msg, None  # multipart without a usable boundary: the parser kept the body as one text
    return msg.get_body(preferencelist=("plain",)), msg.get_body(preferencelist=("html",))


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return _decode_bytes(data, part.get_content_charset())


def _body_text(plain: Message | None, html: str | None) -> str:
    text = _part_text(plain) if plain is not None else ""
    if not text.strip() and html:  # some mailers send an empty text/plain next to the real HTML
        text = get_text(html)
    return text


# --- attachments -------------------------------------------------------------------------------------------


def _attachments(msg: EmailMessage, skip: list[Message]) -> list[MailAttachment]:
    found = []
    for number, (part, parent) in enumerate(_leaves(msg, None), start=1):
        if any(part is body for body in skip) or _is_alternative_rendering(part, parent):
            continue
        found.append(_attachment(part, number))
    return found


def _leaves(part: Message, parent: Message | None):
    """Every non-container part with its parent; an attached message counts as one leaf, not a container."""
    if part.get_content_maintype() == "message" or not part.is_multipart():
        yield part, parent
        return
    for child in part.iter_parts():
        yield from _leaves(child, part)


def _is_alternative_rendering(part: Message, parent: Message | None) -> bool:
    # a second text/* inside multipart/alternative is the same body in another format, not a file
    return (
        parent is not None
        and parent.get_content_type() == "multipart/alternative"
        and part.get_content_maintype() == "text"
        and not part.is_attachment()
    )


def _attachment(part: Message, number: int) -> MailAttachment:
    content_type = part.get_content_type()
    content_id = _bare_id(_raw_header(part, "Content-ID"))
    if part.get_content_maintype() == "message":
        content = _message_bytes(part)
        filename = _filename(part) or _forwarded_filename(part)
    else:
        data = part.get_payload(decode=True)
        content = data if isinstance(data, bytes) else b""
        filename = _filename(part) or f"part-{number}{_extension(content_type)}"
    disposition = part.get_content_disposition()
    inline = disposition == "inline" or (disposition is None and content_id is not None)
    return MailAttachment(
        filename=filename, content_type=content_type, content=content, content_id=content_id, inline=inline
    )


def _filename(part: Message) -> str | None:
    """The decoded filename from Content-Disposition, else the legacy Content-Type name."""
    for header, param in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        raw = _raw_header(part, header)
        if raw is None:
            continue
        # the compat32 Message keeps parameter bytes undecoded, so a wrong RFC 2231 charset can still be repaired
        legacy = Message()
        legacy[header] = raw
        value = legacy.get_param(param, header=header)
        if value:
            name = _decode_param(value)
            cleaned = _UNSAFE_FILENAME.sub("_", name).strip(" .")
            if cleaned:
                return cleaned
    return None


def _decode_param(value: str | tuple[str | None, str | None, str]) -> str:
    if isinstance(value, tuple):  # RFC 2231: (charset, language, percent-decoded text as latin-1 characters)
        charset, _, text = value
        return _decode_bytes(text.encode("latin-1", errors="surrogateescape"), charset or None)
    unquoted = unquote(value)
    return _decode_words(_repair(unquoted))


def _decode_words(value: str) -> str:
    """RFC 2047 encoded words decoded, each by its own charset with fallback. Also used inside quoted
    parameters, where the RFC forbids them but Outlook and Gmail put them anyway."""
    try:
        chunks = decode_header(value)
    except Exception:  # a malformed encoded word: show it as written rather than lose the text
        return value
    return "".join(_chunk_text(data, charset) for data, charset in chunks)


def _chunk_text(data: str | bytes, charset: str | None) -> str:
    # unencoded stretches come back as str (no encoded word at all) or as raw-unicode-escape bytes
    if isinstance(data, str):
        return data
    return _decode_bytes(data, charset) if charset else data.decode("raw-unicode-escape")


def _message_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list):
        # refold_source="none": keep the attached message's header lines as they were written
        keep = policy.default.clone(refold_source="none")
        return b"\n".join(inner.as_bytes(policy=keep) for inner in payload)
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _forwarded_filename(part: Message) -> str:
    payload = part.get_payload()
    inner = payload[0] if isinstance(payload, list) and payload else None
    subject = " ".join(_decoded_header(inner, "Subject").split()) if inner is not None else ""
    stem = _UNSAFE_FILENAME.sub("_", subject).strip(" ._")[:100]
    return f"{stem}.eml" if stem else "forwarded.eml"


def _extension(content_type: str) -> str:
    return mimetypes.guess_extension(content_type, strict=False) or ".bin"
