"""One raw RFC 5322 message (bytes) in, one `ParsedMail` out, or `MailParseError` when the bytes are no message.

A file counts as corrupt only by objective checks: it is empty, is binary (NUL bytes in a header block that does
not start with a header line), has no header fields, or names no sender and has no content either. Everything
else parses, however sloppy, the way mature mail clients read it: a junk first line, a continuation line that is
not indented or NUL bytes in the headers are repaired; a missing or unusable From is taken from Reply-To, Sender
or Return-Path, else the mail is an "unknown requester" one for an agent; wrong or unknown charsets are detected
with charset_normalizer, and text never fails to decode. What was repaired is listed in `ParsedMail.defects`.
"""

from __future__ import annotations

import binascii
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
        try:
            return _parsed_header(name, value) if len(value) <= 1000 else super().__call__(name, value)
        except UnicodeError:
            # An RFC 2231 parameter in a charset the stdlib's decoder chokes on (iso-2022-jp with NEC characters,
            # utf-7) raises from any access to the header (get_body, is_attachment). Read its parameters as
            # ASCII instead: one bad file name must never cost the mail (`_filename` decodes it from the raw value).
            return super().__call__(name, _RFC2231_CHARSET.sub(r"\1us-ascii'", value))


_REGISTRY = HeaderRegistry()
_RFC2231_CHARSET = re.compile(r"(\*\s*=\s*\"?)[^'\";\s]*'")  # the charset of name*=charset'lang'value


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
    requester_unknown: bool = False  # no header names a usable sender: from_address is UNKNOWN_REQUESTER
    defects: list[str] = []  # what was repaired to read the mail (kept on the ticket for an agent)


#: The requester of a mail whose headers name no usable sender (RFC 2606 reserves `.invalid`: it is never mailed).
UNKNOWN_REQUESTER = "unknown-requester@unknown.invalid"


def parse_message(raw: bytes) -> ParsedMail:
    """Parse one message; raises `MailParseError` when the bytes are not an RFC 5322 message. A leading mbox
    postmark line ("From sender date", no colon), as one-message `.box`/`.mbox` exports start, is not a header and
    is left out."""
    raw = _MBOX_POSTMARK.sub(b"", raw, count=1)
    defects: list[str] = []
    raw = _tolerant_header_block(raw, defects)
    msg = email.message_from_bytes(raw, policy=_POLICY)
    if not msg.keys():
        raise MailParseError(
            "no header fields: the file does not start with 'Name: value' header lines, "
            "so it is not an RFC 5322 message (binary data or plain text saved as .eml?)"
        )
    from_name, from_address = _sender(msg, defects)
    plains, html_part = _body_parts(msg)
    html = _part_text(html_part) if html_part is not None else None
    text, uuencoded = _uudecoded(_body_text(plains, html))
    body = plains[0] if plains else html_part
    subject = single_line(_decoded_header(msg, "Subject", body.get_content_charset() if body is not None else None))
    attachments = _attachments(msg, skip=[p for p in (*plains, html_part) if p is not None]) + uuencoded
    text = normalise_text(text)
    if from_address is None:
        if not subject and not text and not attachments:
            raise MailParseError("no sender and no content: no header names an address and the mail is empty")
        if not any(_MAIL_FIELD.match(f"{key}:".encode("ascii", "replace")) for key in msg):
            raise MailParseError(
                "no sender and no mail header (From, To, Subject, Date, …): a text with a colon, not a message"
            )
        defects.append("no header names a usable sender: an agent must find the requester")
    return ParsedMail(
        message_id=_bare_id(_raw_header(msg, "Message-ID")),
        subject=subject,
        from_address=from_address or UNKNOWN_REQUESTER,
        from_name=from_name,
        reply_to=_address_list(msg, "Reply-To"),
        to=_address_list(msg, "To"),
        cc=_address_list(msg, "Cc"),
        date=_date(msg),
        in_reply_to=_first_id(_raw_header(msg, "In-Reply-To")),
        references=_id_list(_raw_header(msg, "References")),
        text=text,
        html=sanitise_html(html) if html is not None else None,
        attachments=attachments,
        auto_submitted=(_raw_header(msg, "Auto-Submitted") or "").strip() or None,
        x_loop=sorted({a for _, a in getaddresses(msg.get_all("X-Loop") or [])} - {""}),
        requester_unknown=from_address is None,
        defects=defects,
    )


# --- corruption checks -------------------------------------------------------------------------------------


_MBOX_POSTMARK = re.compile(rb"\AFrom (?![ \t]*:)[^\r\n]*\r?\n")  # "From " then no colon: not a From: header


# A line the stdlib's feedparser takes as a header line (its headerRE): a field name and a colon, or a fold
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[ \t]")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
# Fields every mail stack writes (RFC 5322, 2045, 5321 trace, common extensions): only a line naming one proves
# that an odd line before it is inside the header block — "Note: the server is down" after a missing blank
# line is body text, and a text file that merely has a colon in it is no mail.
_MAIL_FIELD = re.compile(
    rb"(?i)(?:from|sender|reply-to|to|cc|bcc|subject|date|message-id|in-reply-to|references|received|return-path"
    rb"|mime-version|content-[a-z-]+|x-[a-z0-9-]+|dkim-signature|arc-[a-z-]+|authentication-results|thread-[a-z]+"
    rb"|importance|priority|organization|user-agent|list-[a-z-]+|precedence|auto-submitted|delivered-to)[ \t]*:"
)
_NUL_SHARE = 20  # more than one byte in 20 of the header block NUL: binary data, whatever its first line says


def _tolerant_header_block(raw: bytes, defects: list[str]) -> bytes:
    """The message with its header block repaired as mature parsers (Thunderbird, mutt) read it: NUL bytes
    dropped, a junk first line (a broken exporter's) dropped, a continuation line that is not indented folded
    into the header before it. Each repair is noted in `defects`. Refuses what is no message (empty, binary).
    Without the repairs the stdlib ends the headers at the first odd line and takes the rest for the body."""
    if not raw or not raw.strip():
        raise MailParseError("empty file: a message needs at least a From header")
    end = _HEADER_END.search(raw)
    head, rest = (raw[: end.start()], raw[end.start() :]) if end else (raw, b"")
    lines = head.split(b"\n")
    if b"\x00" in head:
        cleaned = [line.replace(b"\x00", b"") for line in lines]
        first = next((i for i, line in enumerate(cleaned[:2]) if _HEADER_LINE.match(line)), None)
        if head.count(b"\x00") * _NUL_SHARE > len(head) or first is None:
            raise MailParseError("NUL bytes in the header block: this is binary data, not an RFC 5322 message")
        lines = cleaned
        defects.append("NUL bytes in the header block were removed")
    if len(lines) > 1 and lines[0].strip() and not _HEADER_LINE.match(lines[0]) and _MAIL_FIELD.match(lines[1]):
        shown = lines[0].decode("ascii", "replace").strip()[:80]
        defects.append(f"a line before the headers was dropped: {shown!r}")
        lines = lines[1:]
    # a later line that is a header proves the odd line is inside the header block, not the start of the body
    last_header = max((i for i, line in enumerate(lines) if _MAIL_FIELD.match(line)), default=0)
    for i in range(1, last_header):
        if lines[i].strip(b"\r") and not _HEADER_LINE.match(lines[i]):
            shown = lines[i].decode("ascii", "replace").strip()[:80]
            defects.append(f"a header continuation line without indent was folded: {shown!r}")
            lines[i] = b" " + lines[i]
    if not defects:
        return raw
    return b"\n".join(lines) + rest


#: Where a sender may be named when From names none, in order: where the sender wants answers, who sent it for
#: the author (RFC 5322 §3.6.2), the envelope sender the delivering server recorded (RFC 5321 §4.4).
_SENDER_FALLBACKS = ("Reply-To", "Sender", "Return-Path")


def _sender(msg: EmailMessage, defects: list[str]) -> tuple[str | None, str | None]:
    """(display name, address) of the sender; the address None when no header names a usable one."""
    addresses = _addresses(msg, "From")
    if addresses:
        name, address = addresses[0]
        return name or None, address
    raw_from = _raw_header(msg, "From")
    problem = "no From header" if raw_from is None else f"the From header names no address: {raw_from.strip()[:80]!r}"
    name = _from_name_without_address(raw_from)
    for header in _SENDER_FALLBACKS:
        if fallback := _addresses(msg, header):
            defects.append(f"{problem}; the sender was taken from {header}")
            fallback_name, address = fallback[0]
            return name or fallback_name or None, address
    defects.append(problem)
    return name, None


def _from_name_without_address(raw_from: str | None) -> str | None:
    # '"Ann" <>' names Ann; a bare 'MAILER-DAEMON' names the daemon
    if not raw_from:
        return None
    return single_line(re.sub(r"<[^<>]*>", "", _decode_words(_repair(raw_from))).replace('"', ""))[:200] or None


# --- headers -----------------------------------------------------------------------------------------------


def _raw_header(msg: Message, name: str) -> str | None:
    """The first header of that name as it stands in the source, unfolded; bypasses the header registry,
    whose parsers replace undecodable bytes with U+FFFD (and, in some versions, raise on odd values)."""
    wanted = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == wanted:
            return _FOLD.sub("", str(value))
    return None


def _decoded_header(msg: Message, name: str, hint: str | None = None) -> str:
    """An unstructured header (Subject) with RFC 2047 words decoded, each by its charset with fallback."""
    raw = _raw_header(msg, name)
    if raw is None:
        return ""
    # raw 8-bit bytes (RFC 6532 allows UTF-8) come from the parser as surrogates: decode them first
    return _decode_words(_repair(raw, hint))


def _addresses(msg: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, addr-spec) for every real address in every header of that name. The address is kept as
    written but for its domain, which is lower-cased (RFC 5321 §2.4: only the domain is case-insensitive;
    compare addresses case-insensitively instead) and loses a trailing dot (an absolute DNS name)."""
    found: list[tuple[str, str]] = []
    try:
        headers = msg.get_all(name) or []
        # an address without a domain has no "@" in addr_spec; an unterminated quote may hide one in the local part
        pairs = [(a.display_name, a.addr_spec if a.domain else "") for h in headers for a in h.addresses]
    except Exception:  # the registry's parser chokes on some broken lists; the lenient legacy one does not
        pairs = []
    if not any("@" in a for _, a in pairs):  # the registry finds none in "a@example.com." or "Ann a@example.com"
        pairs = [(_decode_words(n), a) for n, a in getaddresses([_raw_header(msg, name) or ""])]
    for display, addr_spec in pairs:
        address = _repair(addr_spec).strip()
        local, _, domain = address.rpartition("@")
        local = local.strip()
        if " " in local.strip('"') and '"' not in (_raw_header(msg, name) or ""):
            # "From: Ann Lee ann@example.com" without angle brackets: the address is the last word (as mail
            # clients read it), not a quoted local part "Ann Lee ann"
            *words, local = local.strip('"').split()
            display = display or " ".join(words)
        domain = domain.strip().rstrip(".").lower()
        address = f"{local}@{domain}"
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
    if codec is None and (b"\x1b$B" in data or b"\x1b$@" in data):  # unlabelled JIS: 7-bit, so "valid UTF-8"
        codec = "iso2022_jp"
    if codec == "iso2022_jp":
        text = _iso2022_jp(data)
        if text is not None:
            return text
    elif codec is not None:
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
    if label.startswith(("iso-2022-jp", "csiso2022jp", "cp5022")):  # -ms, -2, CP50220: read the way mailers do
        return "iso2022_jp"
    try:
        name = codecs.lookup(label).name
    except LookupError:  # "unknown-8bit", "x-user-defined", typos
        return None
    return _SUPERSETS.get(name, name)


def _iso2022_jp(data: bytes) -> str | None:
    """Text labelled iso-2022-jp as mail clients read it (CP50220/CP50221, as Windows and Thunderbird do): strictly
    first, then with the NEC row-13 (①, ㈱) and NEC-selected IBM extensions that Windows mailers put under
    ESC $ B — no Python codec decodes those there —, then JIS X 0213 and ISO-2022-JP-2 designations."""
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    text = _jis_as_cp932(data)
    if text is not None:
        return text
    for codec in ("iso2022_jp_2004", "iso2022_jp_2", "iso2022_jp_ext"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


_JIS_ESCAPE = re.compile(rb"(\x1b\$[@B]|\x1b\([BJHI])")


def _jis_as_cp932(data: bytes) -> str | None:
    """ISO-2022-JP (JIS X 0208 two-byte mode, JIS X 0201 kana) re-encoded as Shift_JIS and read as cp932, whose
    table has the vendor extensions; None when the bytes use other designations or are no valid JIS."""
    out = bytearray()
    mode = b"B"
    for chunk in _JIS_ESCAPE.split(data):
        if chunk.startswith(b"\x1b"):
            mode = b"2" if chunk[1:2] == b"$" else chunk[2:3]
            continue
        if b"\x1b" in chunk:  # another designation (JIS X 0212, 0213, ISO-2022-JP-2): not ours
            return None
        if mode == b"2":
            for line in re.split(rb"(\r?\n)", chunk):  # a line break inside two-byte mode: sloppy but common
                if line.strip(b"\r\n") == b"" or len(line) % 2:
                    if line.strip(b"\r\n"):
                        return None
                    out += line
                    continue
                for j1, j2 in zip(line[::2], line[1::2], strict=True):
                    if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
                        return None
                    s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
                    s2 = j2 + (0x1F + (j2 >= 0x60) if j1 & 1 else 0x7E)
                    out += bytes((s1, s2))
        elif mode == b"I":  # JIS X 0201 katakana: the Shift_JIS single bytes 0xA1-0xDF
            out += bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in chunk)
        else:
            out += chunk
    try:
        return out.decode("cp932")
    except UnicodeDecodeError:
        return None


# The multibyte charsets of unlabelled Asian mail (the supersets Windows writes); a strict decoding that gives
# Asian text in runs, not single characters inside Latin words, is far likelier than the single-byte reading
# charset_normalizer may prefer on a short subject (Big5 came out as Central European).
_CJK_CHARSETS = ("cp932", "euc_jp", "gb18030", "cp950", "euc_kr")  # EUC-KR: its UHC extension reads Big5 too
_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff01-\uff5e"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_KANA = re.compile("[\u3041-\u30ff]")
_HANGUL = re.compile("[\uac00-\ud7af]")
_NOT_CJK_OR_ASCII = re.compile(f"[^\x00-\x7f{_CJK}]")


def _cjk_candidates(data: bytes) -> list[str]:
    found = []
    for codec in _CJK_CHARSETS:
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            continue
        runs = list(_CJK_RUN.finditer(text))
        if not runs or _NOT_CJK_OR_ASCII.search(text):
            continue
        # "Grüße" read as GB18030 is one ideograph inside a Latin word: a single character glued to letters
        glued = sum(1 for run in runs if len(run.group()) == 1 and _glued_to_a_letter(text, run))
        if glued * 2 > len(runs):
            continue
        # Japanese is never without kana, Chinese never with it (GB2312 has kana where JIS has them: EUC-JP reads
        # as GB18030 too), Korean has Hangul: a reading that contradicts its language is a last resort
        kana, hangul = bool(_KANA.search(text)), bool(_HANGUL.search(text))
        language_fits = kana if codec in ("cp932", "euc_jp") else hangul if codec == "euc_kr" else not kana
        found.append((not language_fits, codec))
    return [codec for misfit, codec in sorted(found, key=lambda f: f[0]) if misfit == min(f[0] for f in found)]


def _glued_to_a_letter(text: str, run: re.Match[str]) -> bool:
    before, after = text[run.start() - 1 : run.start()], text[run.end() : run.end() + 1]
    return any(ch.isascii() and ch.isalpha() for ch in (before, after))


def _detect(data: bytes) -> str | None:
    """charset_normalizer's best reading among charsets seen in mail; lowest chaos, then coherence, then rank.
    When the bytes read as Asian text in a multibyte charset, only those charsets are candidates."""
    scored = []
    candidates = _cjk_candidates(data) if any(b >= 0x80 for b in data) else []
    if len(candidates) == 1:
        return data.decode(candidates[0])
    for rank, candidate in enumerate(candidates or _LIKELY_CHARSETS):
        match = charset_normalizer.from_bytes(data, cp_isolation=[candidate]).best()
        if match is not None:
            scored.append((round(match.chaos, 2), -round(match.coherence, 2), rank, str(match)))
    if not scored and candidates:
        return data.decode(candidates[0])
    return min(scored)[3] if scored else None


def _repair(value: str, hint: str | None = None) -> str:
    """Undecodable header bytes come back from the parser as surrogate escapes; decode them properly: by `hint`
    (the charset the body declares: a mailer that writes raw 8-bit headers writes them in its body's charset)
    when they read in it, else by detection."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("ascii", errors="surrogateescape")
    try:
        return data.decode("utf-8")  # RFC 6532; valid UTF-8 with 8-bit bytes almost never happens by accident
    except UnicodeDecodeError:
        pass
    codec = _codec(hint)
    if codec is not None and codec not in ("ascii", "utf-8-sig", "iso2022_jp"):  # 7-bit or tried already
        try:
            return data.decode(codec)
        except (UnicodeDecodeError, LookupError):
            pass
    return _decode_bytes(data, None)


# --- body --------------------------------------------------------------------------------------------------


def _body_parts(msg: EmailMessage) -> tuple[list[Message], Message | None]:
    """The text/plain parts and the text/html part that render the message (not attachments). Several plain
    parts when a mail interleaves text and images (text, image, text in multipart/mixed, as Apple Mail sends):
    every inline text of that run is the body, in order; the images stay attachments."""
    if msg.get_content_maintype() == "multipart" and not msg.is_multipart():
        return [msg], None  # multipart without a usable boundary: the parser kept the body as one text
    plain, html = msg.get_body(preferencelist=("plain",)), msg.get_body(preferencelist=("html",))
    if plain is None or plain is msg:
        return ([plain] if plain is not None else []), html
    parent = _parent_of(msg, plain)
    if parent is not None and parent.get_content_type() == "multipart/alternative":
        parent = _parent_of(msg, parent)  # text, image, text in Apple Mail's rich form: alternatives in a mixed
    if parent is None or parent.get_content_type() != "multipart/mixed":
        return [plain], html
    run = []
    for child in parent.iter_parts():
        if child.get_content_type() == "multipart/alternative":
            child = next((p for p in child.iter_parts() if p.get_content_type() == "text/plain"), child)
        if child is plain or (_inline_text(child) and run):  # the run starts at the body get_body chose
            run.append(child)
    return run, html


def _inline_text(part: Message) -> bool:
    return (
        part.get_content_type() == "text/plain"
        and part.get_content_disposition() != "attachment"
        and _filename(part) is None
    )


def _parent_of(root: Message, wanted: Message) -> Message | None:
    stack = [root]
    while stack:
        part = stack.pop()
        if part.get_content_maintype() == "multipart" and part.is_multipart():
            children = list(part.iter_parts())
            if any(child is wanted for child in children):
                return part
            stack.extend(children)
    return None


def _part_text(part: Message) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return _decode_bytes(data, part.get_content_charset())


def _body_text(plains: list[Message], html: str | None) -> str:
    texts = [text.strip("\r\n") for text in map(_part_text, plains) if text.strip()]
    text = "\n\n".join(texts)
    if not text.strip() and html:  # some mailers send an empty text/plain next to the real HTML
        text = get_text(html)
    return text


_UUENCODED = re.compile(r"^begin [0-7]{3,4} ([^\r\n]+)\r?\n(.*?)^end[ \t]*\r?$\n?(?:\r?\n)?", re.MULTILINE | re.DOTALL)


def _uudecoded(text: str) -> tuple[str, list[MailAttachment]]:
    """uuencoded files inside a text ("begin 644 name" … "end", as old clients and scripts attach them) taken out
    of the text as attachments; a block that does not decode stays text."""
    if "begin " not in text:
        return text, []
    found: list[MailAttachment] = []

    def take(block: re.Match[str]) -> str:
        try:
            data = b"".join(
                binascii.a2b_uu(line.encode("ascii")) for line in block.group(2).splitlines() if line.strip()
            )
        except (binascii.Error, UnicodeEncodeError):
            return block.group(0)
        name = _UNSAFE_FILENAME.sub("_", block.group(1).strip()).strip(" .") or f"uuencoded-{len(found) + 1}.bin"
        content_type = mimetypes.guess_type(name, strict=False)[0] or "application/octet-stream"
        found.append(MailAttachment(filename=name, content_type=content_type, content=data))
        return ""

    return _UUENCODED.sub(take, text), found


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
            if cleaned and "\ufffd" not in name:  # undecodable in any charset: a made-up name beats mojibake
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
