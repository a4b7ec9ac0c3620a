"""Rich text shared by the connectors: the fast paths for plain paragraphs read exactly as inscriptis does and
sanitise exactly as nh3 does."""

import re
import string
from html import unescape as html_unescape

import nh3
from hypothesis import given, settings
from hypothesis import strategies as st
from inscriptis import get_text

from connectors._html import (
    _PARAGRAPH,
    _PLAIN_PARAGRAPHS,
    _URL_SCHEMES,
    html_to_text,
    normalise_text,
    sanitise_html,
    unescape,
)

#: Text a paragraph may hold, weighted toward the whitespace the two paths must collapse alike.
_MARKUP = "<>&"
_CHARACTERS = st.sampled_from(
    [
        *(c for c in string.ascii_letters + string.digits + string.punctuation if c not in _MARKUP),
        *(" ", "  ", "\t", "\n", "\r\n", "\xa0", "\u3000", "\u2009", "é", "ß", "日本", "🙂", "\x85", "\x1f", "\x00"),
        *("&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x27;", "&amp;lt;", "&amp;nbsp;", "&amp;#32;", "&amp;amp;"),
        *("&amp", "&ampx", "&nbsp;", "&#32;", "&", ";"),  # entities the fast path leaves to inscriptis
    ]
)
_PARAGRAPH_TEXT = st.lists(_CHARACTERS, max_size=30).map("".join)
_GAP = st.sampled_from(["", " ", "\n", "\r\n", "\t \n"])


@st.composite
def _paragraphs(draw: st.DrawFn) -> str:
    texts = draw(st.lists(_PARAGRAPH_TEXT, min_size=1, max_size=6))
    return draw(_GAP) + "".join(f"<p>{text}</p>{draw(_GAP)}" for text in texts)


def _inscriptis(html: str) -> str:
    return normalise_text(get_text(html))


@settings(max_examples=3000, deadline=None)
@given(_paragraphs())
def test_plain_paragraphs_read_as_inscriptis_reads_them(html):
    assert html_to_text(html) == _inscriptis(html)


@settings(max_examples=3000, deadline=None)
@given(_paragraphs())
def test_plain_paragraphs_are_sanitised_as_nh3_sanitises_them(html):
    assert sanitise_html(html) == nh3.clean(html, url_schemes=_URL_SCHEMES).strip()


def test_the_fast_path_is_taken_for_plain_paragraphs_only():
    assert _PLAIN_PARAGRAPHS.fullmatch("<p>Bonjour,</p>\n<p>le VPN  ne répond plus.</p>")
    assert _PLAIN_PARAGRAPHS.fullmatch("<p>R&amp;D &lt;KB5034441&gt;</p>")
    for html in ("<p>a &nbsp; b</p>", "<p>a<br>b</p>", "text<p>a</p>", "<p class='x'>a</p>", "<p>a</p>tail", "", "a"):
        assert not _PLAIN_PARAGRAPHS.fullmatch(html), html


def test_other_markup_still_goes_through_inscriptis():
    html = "<p>R&amp;D:</p><ul><li>one</li><li>two</li></ul><table><tr><td>a</td><td>b</td></tr></table>"
    assert html_to_text(html) == _inscriptis(html)
    assert "* one" in html_to_text(html)


_ENTITY_SOUP = st.lists(
    st.sampled_from(
        [
            *("a", " ", "é", "<p>", "</p>", ";", "&", "#", "x", "0", "39", "lt", "amp"),
            *("&lt;", "&gt;", "&quot;", "&#039;", "&#39;", "&#x27;", "&amp;", "&amp;lt;", "&amp;#039;"),
            *("&#38;", "&#60;", "&#62;", "&#34;", "&#38;lt;", "&#38;#60;", "&amp;#38;", "&#38;amp;", "38", "60"),
            *("&lt", "&amp", "&nbsp;", "&eacute;", "&#0039;", "&#X27;", "&#233;", "&LT;", "&ampx"),  # html.unescape's
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=3000, deadline=None)
@given(_ENTITY_SOUP)
def test_unescape_reads_as_html_unescape_reads(text):
    assert unescape(text) == html_unescape(text)


#: The fast path's patterns as they read without possessive quantifiers: what they must match, position for position.
_BACKTRACKING_TEXT = r"(?:[^<>&\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]|&(?:amp|lt|gt|quot|#x27|#39);)*"
_BACKTRACKING_PARAGRAPHS = re.compile(rf"(?:[ \t\r\n]*<p>{_BACKTRACKING_TEXT}</p>)+[ \t\r\n]*")
_BACKTRACKING_PARAGRAPH = re.compile(rf"<p>({_BACKTRACKING_TEXT})</p>")


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.sampled_from(["<p>", "</p>", "<", ">", "&amp;", "&lt;", "&", ";", "amp", " ", "\n", "\r", "a", "é", "\x01"]),
        max_size=30,
    )
)
def test_the_possessive_patterns_match_what_backtracking_ones_match(parts):
    text = "".join(parts)
    assert bool(_PLAIN_PARAGRAPHS.fullmatch(text)) == bool(_BACKTRACKING_PARAGRAPHS.fullmatch(text))
    assert _PARAGRAPH.findall(text) == _BACKTRACKING_PARAGRAPH.findall(text)
