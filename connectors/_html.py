"""Rich text from upstream systems (mail bodies, GLPI content): sanitised HTML to keep, plain text to read.

Shared by every connector that receives HTML, so a body means the same whichever system it came from.
"""

from __future__ import annotations

import html
import re
from html import unescape as _unescape

import nh3
from inscriptis import get_text

from itsm_core.text import without_controls

_URL_SCHEMES = nh3.ALLOWED_URL_SCHEMES | {"cid"}  # cid: points at an inline part of the same message


def sanitise_html(html: str) -> str:
    """`html` with scripts, styles, event handlers and remote images removed (nh3's allow-list)."""
    if _PLAIN_PARAGRAPHS.fullmatch(html):
        # Plain paragraphs (GLPI's editor writes little else) hold nothing to remove: nh3 would parse them and write
        # them back as they were, but for the entities it writes otherwise and the line ends its parser normalises,
        # which this does directly, at a tenth of the cost (tests/connectors/test_rich_text.py compares the two).
        for written, serialised in _AS_SERIALISED:
            html = html.replace(written, serialised)
        return html.strip()
    return nh3.clean(html, url_schemes=_URL_SCHEMES, attribute_filter=_drop_remote_images).strip()


def html_to_text(html: str) -> str:
    """The text a reader sees in `html` (layout-aware: tables, lists and paragraphs keep their lines)."""
    if _PLAIN_PARAGRAPHS.fullmatch(html):
        # What GLPI's editor writes most: paragraphs of plain text. inscriptis parses a DOM for each (≈0.1 ms);
        # its output here is each paragraph's entities decoded, whitespace collapsed and entities decoded once
        # more (as inscriptis does), joined by one blank line, which this gives directly
        # (tests/connectors/test_rich_text.py compares the two on generated input).
        paragraphs = (unescape(" ".join(unescape(text).split())) for text in _PARAGRAPH.findall(html))
        return normalise_text("\n\n".join(text for text in paragraphs if text))
    return normalise_text(get_text(html))


def text_to_html(text: str, author: str | None = None) -> str:
    """Plain text as a system's rich-text content (GLPI's, Solman's in HTML mode): escaped once, paragraphs and
    line breaks kept, the author named first."""
    paragraphs = [p for p in text.strip().split("\n\n") if p.strip()] or [""]
    body = "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)
    return (f"<p><em>{html.escape(author)} wrote:</em></p>" if author else "") + body


def normalise_text(text: str) -> str:
    """Unix line ends, no trailing blanks, no control characters (PostgreSQL refuses NUL in text columns; ESC
    sequences would drive the terminal that shows them), no blank edges."""
    text = without_controls(text)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


#: `<p>` elements of text without markup or control characters (which the HTML parser may rewrite), with only
#: the entities `html.escape` writes (which the parser and `html.unescape` read alike), whitespace around them.
#: Possessive (`++`, `*+`): each part starts with a character the one before cannot take, so there is nothing to
#: give back, and a run of text is taken in one step instead of one alternation per character (a fifth of the time).
_PLAIN_TEXT = r"(?:[^<>&\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]++|&(?:amp|lt|gt|quot|#x27|#39);)*+"
_PLAIN_PARAGRAPHS = re.compile(rf"(?:[ \t\r\n]*+<p>{_PLAIN_TEXT}</p>)++[ \t\r\n]*+")
_PARAGRAPH = re.compile(rf"<p>({_PLAIN_TEXT})</p>")
#: What an HTML parser and serialiser change in plain paragraphs: quotes need no entity in text, a no-break space
#: gets one, and CR LF or a lone CR become LF.
_AS_SERIALISED = (
    ("&quot;", '"'), ("&#39;", "'"), ("&#x27;", "'"), ("\xa0", "&nbsp;"), ("\r\n", "\n"), ("\r", "\n"),
)  # fmt: skip


def unescape(text: str) -> str:
    """`html.unescape(text)`, by plain replacements when its only entities are those `html.escape`, PHP's
    `htmlspecialchars` and GLPI 10's sanitizer (``&#60;``, ``&#38;``, …) write, as GLPI stores every text: the
    original calls back into Python for each one, and a ticket's HTML holds two per tag. The ampersand's entity
    goes last, so ``&amp;lt;`` gives ``&lt;`` as the one pass does; a text spelling it both ways takes the
    original."""
    if "&" not in text:
        return text
    if _OTHER_AMPERSAND.search(text):
        return _unescape(text)
    ampersand = "&#38;" if "&#38;" in text else "&amp;"
    if ampersand == "&#38;" and "&amp;" in text:
        return _unescape(text)
    for entity, char in _ESCAPES:
        text = text.replace(entity, char)
    return text.replace(ampersand, "&")


_ESCAPES = (
    ("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&#039;", "'"), ("&#39;", "'"), ("&#x27;", "'"),
    ("&#60;", "<"), ("&#62;", ">"), ("&#34;", '"'),
)  # fmt: skip
_OTHER_AMPERSAND = re.compile(r"&(?!(?:lt|gt|quot|#039|#39|#x27|#60|#62|#34|amp|#38);)")


def _drop_remote_images(tag: str, attribute: str, value: str) -> str | None:
    # a remote image is a read receipt for whoever sent it (tracking pixel); inline cid: images stay
    if tag == "img" and attribute in ("src", "srcset") and not value.strip().lower().startswith("cid:"):
        return None
    return value
