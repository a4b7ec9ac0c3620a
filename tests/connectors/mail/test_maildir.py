from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.mail.maildir import MaildirConnector
from connectors.mail.record import message_identity


def mail(subject: str, message_id: str | None = "<m1@example.org>") -> bytes:
    message = EmailMessage()
    message["From"] = "Ann <ann@example.org>"
    message["To"] = "helpdesk@example.org"
    message["Subject"] = subject
    if message_id:
        message["Message-ID"] = message_id
    message.set_content("body")
    return bytes(message)


def test_identity_is_the_message_id_or_the_content_hash():
    assert message_identity(mail("x")) == "m1@example.org"
    no_id = mail("x", message_id=None)
    assert message_identity(no_id).startswith("sha256:")
    assert message_identity(no_id) == message_identity(no_id)
    assert message_identity(mail("y", message_id=None)) != message_identity(no_id)
    assert message_identity(b"\x00\xff\xfe garbage").startswith("sha256:")


def test_plain_folder_pages_in_name_order(tmp_path: Path):
    for i in range(7):
        (tmp_path / f"{i:02d}.eml").write_bytes(mail(f"s{i}", f"<m{i}@x>"))
    (tmp_path / "notes.txt").write_text("not a mail")
    (tmp_path / ".partial.tmp").write_text("a copy still being written")
    every = list(MaildirConnector(tmp_path, page_size=10).plan_pages())  # by content: notes.txt is offered too
    assert every == [[*(f"{i:02d}.eml" for i in range(7)), "notes.txt"]]  # hidden files are not
    connector = MaildirConnector(tmp_path, page_size=3, pattern="*.eml")
    pages = list(connector.plan_pages())
    assert pages == [["00.eml", "01.eml", "02.eml"], ["03.eml", "04.eml", "05.eml"], ["06.eml"]]
    records = connector.fetch_page(pages[0])
    assert [r.external_id for r in records] == ["m0@x", "m1@x", "m2@x"]
    assert records[0].payload == (tmp_path / "00.eml").read_bytes()
    assert records[0].locator == "00.eml" and records[0].received_at.tzinfo is not None


def test_a_page_holds_at_most_max_page_bytes_and_an_oversize_file_counts_as_its_headers(tmp_path: Path):
    for i in range(4):
        (tmp_path / f"{i:02d}.eml").write_bytes(mail(f"s{i}", f"<m{i}@x>") + b"x" * 380_000)
    (tmp_path / "04.eml").write_bytes(mail("huge", "<huge@x>") + b"x" * 3_000_000)
    connector = MaildirConnector(tmp_path, max_page_bytes=1024 * 1024, max_message_bytes=2_000_000)
    pages = list(connector.plan_pages())
    assert pages == [["00.eml", "01.eml"], ["02.eml", "03.eml", "04.eml"]]
    (*_, huge) = connector.fetch_page(pages[1])
    assert len(huge.payload) < 10_000 and huge.external_id == "huge@x"
    assert "exceeds max_message_bytes (2000000)" in connector.decode(huge.payload)["oversize"]["reason"]


def test_maildir_layout_reads_new_and_cur_but_not_tmp(tmp_path: Path):
    for sub in ("new", "cur", "tmp"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / f"1700000000.{sub}.host").write_bytes(mail(sub, f"<{sub}@x>"))
    connector = MaildirConnector(tmp_path)
    (page,) = connector.plan_pages()
    assert page == ["cur/1700000000.cur.host", "new/1700000000.new.host"]


def test_a_file_gone_since_listing_is_skipped(tmp_path: Path):
    (tmp_path / "a.eml").write_bytes(mail("a"))
    connector = MaildirConnector(tmp_path)
    (page,) = connector.plan_pages()
    (tmp_path / "a.eml").unlink()
    assert connector.fetch_page(page) == []


def test_missing_folder_says_what_to_fix(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="fix `path`"):
        list(MaildirConnector(tmp_path / "nope").plan_pages())


def test_acknowledge_moves_only_with_move_to(tmp_path: Path):
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    (inbox / "a.eml").write_bytes(mail("a"))
    keep = MaildirConnector(inbox)
    keep.acknowledge(keep.fetch_page(["a.eml"]))
    assert (inbox / "a.eml").exists()
    move = MaildirConnector(inbox, move_to=done)
    move.acknowledge(move.fetch_page(["a.eml"]))
    assert not (inbox / "a.eml").exists() and (done / "a.eml").exists()


def test_an_attachment_over_max_attachment_bytes_is_left_out_with_a_line_naming_it(tmp_path: Path):
    message = EmailMessage()
    message["From"], message["Subject"], message["Message-ID"] = "ann@example.org", "logs", "<logs@x>"
    message.set_content("see the logs")
    message.add_attachment(b"x" * 5000, maintype="application", subtype="octet-stream", filename="big.log")
    message.add_attachment(b"small", maintype="text", subtype="plain", filename="small.txt")
    (tmp_path / "logs.eml").write_bytes(bytes(message))
    connector = MaildirConnector(tmp_path, max_attachment_bytes=1024)
    (record,) = connector.fetch_page(next(connector.plan_pages()))
    mail = connector.decode(record.payload)
    assert [a["name"] for a in mail["attachments"]] == ["small.txt"]
    assert "attachment big.log (5000 bytes) left out" in mail["text"]
