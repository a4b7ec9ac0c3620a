"""Issue 23, mail fidelity: no real mail is lost over a bad header, Japanese and Chinese mail decodes, every text
part is kept. One fixture per case (fixtures/fidelity/*.eml, written from the RFCs), each read through
`decode_message` as every mail source reads it: requester, subject and body text, and that nothing is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.mail.parse import UNKNOWN_REQUESTER
from connectors.mail.record import decode_message
from itsm_core.errors import MailParseError
from itsm_core.mapping import load_mapping, map_ticket
from itsm_core.models import utcnow

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fidelity"


def read(name: str) -> dict:
    return decode_message((FIXTURES / name).read_bytes())  # raises MailParseError if the mail were refused


# --- 1. sender recovery instead of quarantine --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "address", "display", "taken_from"),
    [
        ("empty-from-reply-to.eml", "Kenji.Sato@example.jp", "Helpdesk user", "Reply-To"),
        ("no-from-sender.eml", "ops-robot@example.org", "Ops Robot", "Sender"),
        ("empty-from-return-path.eml", "Ann.Lee@example.org", None, "Return-Path"),
    ],
)
def test_a_sender_missing_from_from_is_taken_from_reply_to_sender_or_return_path(name, address, display, taken_from):
    mail = read(name)
    assert mail["from_address"] == address and mail["from_name"] == display
    assert mail["requester_unknown"] is None and mail["noise"] is None
    assert any(f"taken from {taken_from}" in defect for defect in mail["defects"])
    assert mail["subject"] and mail["text"]


def test_a_trailing_dot_domain_is_normalised():
    mail = read("trailing-dot-domain.eml")
    assert mail["from_address"] == "Ann.Lee@example.com" and mail["from_name"] == "Ann Lee"
    assert mail["subject"] == "Trailing dot" and mail["text"] == "My mailer writes absolute domains."
    assert mail["defects"] is None  # a normalisation, not a repair


def test_a_mail_naming_no_sender_is_an_unknown_requester_ticket_for_an_agent():
    mail = read("unknown-requester.eml")
    assert mail["from_address"] == UNKNOWN_REQUESTER and mail["requester_unknown"] is True
    assert mail["from_name"] == "Someone" and mail["subject"] == "Who am I" and mail["text"] == "No address anywhere."
    ticket = map_ticket(mail, load_mapping("email"), received_at=utcnow())
    assert ticket.requester == UNKNOWN_REQUESTER and ticket.custom_fields["requester_unknown"] is True
    assert "an agent must find the requester" in ticket.custom_fields["mail_defects"][-1]


def test_a_bare_mailer_daemon_still_goes_the_bounce_path():
    mail = read("bare-mailer-daemon.eml")
    assert mail["noise"]["kind"] == "bounce" and mail["noise"]["reason"] == "sent by mailer-daemon"
    assert mail["noise"]["original_message_id"] == "hub-sent-1@northwind.example"
    assert mail["from_name"] == "MAILER-DAEMON"


# --- 2. tolerant header block ------------------------------------------------------------------------------


def test_a_junk_first_line_before_the_headers_is_dropped_and_noted():
    mail = read("junk-first-line.eml")
    assert mail["from_address"] == "ann@example.com" and mail["subject"] == "Junk first line"
    assert mail["text"] == "The archive tool adds a banner."
    assert mail["defects"] == ["a line before the headers was dropped: 'Exported by BrokenMailArchiver 2.1'"]


def test_a_continuation_line_without_indent_is_folded_into_its_header():
    mail = read("unindented-continuation.eml")
    assert mail["subject"] == "A subject folded without indent"
    assert mail["message_id"] == "unindented@example.com"  # the headers after it are still headers
    assert mail["from_address"] == "ann@example.com" and mail["text"] == "Body after a badly folded subject."
    assert mail["defects"] == ["a header continuation line without indent was folded: 'without indent'"]
    ticket = map_ticket(mail, load_mapping("email"), received_at=utcnow())
    assert ticket.custom_fields["mail_defects"] == mail["defects"]  # the repair stays on the ticket


def test_nul_bytes_in_a_header_are_removed_and_noted():
    mail = read("nul-in-header.eml")
    assert mail["from_address"] == "ann@example.com" and mail["subject"] == "NUL in a header"
    assert mail["to"] == ["helpdesk@northwind.example"] and mail["text"] == "Body after a NUL."
    assert mail["defects"] == ["NUL bytes in the header block were removed"]


# --- 4. addresses as written -------------------------------------------------------------------------------


def test_the_local_part_and_the_name_keep_their_case_only_the_domain_is_lower_cased():
    mail = read("address-case.eml")
    assert mail["from_address"] == "Kenji.Sato@mail.example.jp" and mail["from_name"] == "Kenji SATO"


def test_an_address_without_angle_brackets_after_a_name():
    mail = read("no-angle-brackets.eml")
    assert mail["from_address"] == "name@example.com" and mail["from_name"] == "Name"
    assert mail["subject"] == "No angle brackets" and mail["text"] == "Please help."


# --- 5. every text part ------------------------------------------------------------------------------------


def test_text_interleaved_with_images_is_one_description_in_order():
    mail = read("interleaved-text-images.eml")
    assert mail["from_address"] == "ann@example.com" and mail["subject"] == "Screenshots"
    assert mail["text"] == "First I open the app.\n\nThen it shows this error.\n\nThanks, Ann"
    assert [a["name"] for a in mail["attachments"]] == ["one.png", "two.png"]


# --- 6. uuencoded content ----------------------------------------------------------------------------------


def test_a_uuencoded_block_in_a_text_becomes_an_attachment():
    mail = read("uuencoded-in-text.eml")
    assert mail["from_address"] == "ann@example.com" and mail["subject"] == "Log attached"
    assert mail["text"] == "Here is the log file.\n\nRegards, Ann"
    [attachment] = mail["attachments"]
    assert attachment["name"] == "error log.bin" and attachment["content_type"] == "application/octet-stream"
    assert attachment["content"] == bytes(range(256)) + b"log line\n" * 3


# --- 3. one bad attachment name never costs the mail --------------------------------------------------------


def test_an_rfc2231_filename_the_stdlib_chokes_on_costs_neither_the_mail_nor_the_file():
    """policy.default raised UnicodeDecodeError on `filename*=iso-2022-jp''…` with a NEC character (①) or bytes
    that are no JIS at all, from any access to the part (get_body, is_attachment)."""
    mail = read("iso-2022-jp-filename.eml")
    assert mail["from_address"] == "ann@example.com" and mail["subject"] == "Quote attached"
    assert mail["text"] == "Please see the quote."
    assert [a["name"] for a in mail["attachments"]] == ["①見積書.pdf", "part-3.pdf"]  # undecodable: a safe name
    assert all(a["content"] == b"%PDF-1.4\n" for a in mail["attachments"])


# --- 7. Japanese and Chinese -------------------------------------------------------------------------------


def test_iso_2022_jp_with_nec_characters_decodes_in_headers_and_body():
    """① is NEC row 13 (ESC $ B, then 0x2D 0x21), ㈱ is 0x2D 0x6A: what Windows mailers write (CP50220); no
    Python codec reads them under ESC $ B (iso2022_jp_2004 has them only under ESC $ ( Q)."""
    raw = (FIXTURES / "iso-2022-jp-nec.eml").read_bytes()
    assert b"\x1b$B-!" in raw and b"\x1b$B-j" in raw
    mail = read("iso-2022-jp-nec.eml")
    assert mail["from_address"] == "Taro.Yamada@yamada.example.jp" and mail["from_name"] == "山田\u3000太郎"
    assert mail["subject"] == "㈱山田商事\u3000サーバー障害①"  # the ideographic space kept as written
    assert mail["text"] == (
        "お世話になっております。\n㈱山田商事の山田です。\n①サーバーが起動しません。\n②再起動も失敗します。"
    )
    ticket = map_ticket(mail, load_mapping("email"), received_at=utcnow())
    assert ticket.title == "㈱山田商事\u3000サーバー障害①" and ticket.requester_name == "山田\u3000太郎"


@pytest.mark.parametrize(
    ("name", "address", "subject", "text"),
    [
        ("shift-jis-raw-subject.eml", "sato@example.jp", "パスワード変更のお願い", "パスワードを変更したいです。"),
        (
            "gb18030-unlabelled.eml",
            "wang@example.cn",
            "打印机无法连接网络",
            "办公室的打印机从今天早上开始无法连接网络。",
        ),
        ("big5-unlabelled.eml", "chen@example.tw", "印表機無法連線", "請協助處理，謝謝。"),
    ],
)
def test_an_unlabelled_8bit_subject_is_read_as_shift_jis_gb18030_or_big5(name, address, subject, text):
    mail = read(name)
    assert mail["from_address"] == address and mail["subject"] == subject and mail["text"] == text


@pytest.mark.parametrize(
    ("text", "charset"),
    [
        ("프린터가 작동하지 않습니다", "euc_kr"),
        ("Grüße aus Köln, schöne Tage", "cp1252"),
        ("Problème de réseau à l'étage", "cp1252"),
        ("Принтер не работает", "cp1251"),
        ("Zażółć gęślą jaźń", "cp1250"),
        ("Windows更新のお知らせ", "cp932"),
        ("VPN连接失败", "gb18030"),
    ],
)
def test_asian_detection_does_not_take_european_or_korean_subjects(text, charset):
    raw = b"From: a@example.com\r\nSubject: " + text.encode(charset) + b"\r\n\r\nbody\r\n"
    assert decode_message(raw)["subject"] == text


def test_what_only_looks_like_a_header_is_no_reason_to_repair():
    """A repair needs a real mail field after the odd line: a missing blank line before the body stays body text,
    and a text file with a colon in it is still no mail."""
    mail = decode_message(b"From: ann@example.com\r\nSubject: s\r\nHello team,\r\nNote: the server is down\r\n")
    assert mail["subject"] == "s" and mail["text"] == "Hello team,\nNote: the server is down"
    assert mail["defects"] is None
    with pytest.raises(MailParseError, match="no header fields"):  # its first line no header, nor junk before one
        decode_message(b"Shopping list\r\nNote: milk\r\nTodo: eggs\r\n\r\nand bread\r\n")
    with pytest.raises(MailParseError, match="no mail header"):
        decode_message(b"Note: milk\r\nTodo: eggs\r\n\r\nand bread\r\n")


@pytest.mark.parametrize("label", ["iso-2022-jp", "ISO-2022-JP-MS", "cp50220", None])
def test_jis_text_with_nec_characters_whatever_its_label(label):
    declared = f"Content-Type: text/plain; charset={label}\r\n" if label else ""
    raw = (
        b"From: a@example.jp\r\nSubject: =?ISO-2022-JP?B?GyRCLSEtai1BGyhC?=\r\n" + declared.encode()
        + b"\r\n\x1b$B-!-j\x1b(B OK\r\n"
    )  # fmt: skip
    mail = decode_message(raw)
    assert mail["subject"] == "①㈱㌔"  # NEC row 13: 0x2D21, 0x2D6A, 0x2D41 and mail["text"] == "①㈱ OK"
