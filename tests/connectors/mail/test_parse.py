import base64
import hashlib
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from connectors.mail.parse import UNKNOWN_REQUESTER, ParsedMail, parse_message
from itsm_core.errors import MailParseError, ParseError

REPO = Path(__file__).resolve().parents[3]
SAMPLES = REPO / "flows" / "demo" / "mail"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# The demo also ships one file that is no message (a scanner's PDF), to show quarantine.
NOT_A_MESSAGE = SAMPLES / "12-scanner-dropped-a-pdf.eml"
SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.eml") if p != NOT_A_MESSAGE)


def sample(name: str) -> ParsedMail:
    return parse_message((SAMPLES / name).read_bytes())


# --- every demo sample -------------------------------------------------------------------------------------


def test_there_are_about_ten_samples():
    assert len(SAMPLE_FILES) >= 10


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_every_demo_sample_parses(path: Path):
    mail = parse_message(path.read_bytes())
    assert mail.subject.strip()
    assert re.fullmatch(r"[A-Za-z0-9._-]+@northwind\.example", mail.from_address)  # the local part as written
    assert mail.text.strip()
    assert mail.to == ["helpdesk@northwind.example"]
    assert mail.message_id and mail.message_id.endswith("@northwind.example")
    assert mail.date is not None and mail.date.utcoffset() == timedelta(0)
    assert (mail.date.year, mail.date.month) == (2026, 11)
    assert "\ufffd" not in mail.text + mail.subject  # no replacement characters: every charset decoded


def test_the_demo_pdf_is_refused_as_no_message():
    with pytest.raises(MailParseError, match="no header fields"):
        parse_message(NOT_A_MESSAGE.read_bytes())


def test_sample_message_ids_are_unique():
    ids = [parse_message(p.read_bytes()).message_id for p in SAMPLE_FILES]
    assert len(set(ids)) == len(ids)


# --- the samples, one by one -------------------------------------------------------------------------------


def test_plain_english_incident():
    mail = sample("01-vpn-not-connecting.eml")
    assert mail.subject == "VPN not connecting from home office"
    assert mail.from_address == "Oliver.Bennett@northwind.example"  # as written: only the domain is lower-cased
    assert mail.from_name == "Oliver Bennett"
    assert mail.message_id == "CAOB7f3a91c2vpn@northwind.example"
    assert mail.date == datetime(2026, 11, 2, 8, 47, 12, tzinfo=UTC)
    assert mail.text.startswith("Hi,\n\nsince this morning I cannot connect to the company VPN")
    assert mail.text.endswith("+44 20 7946 0321")
    assert mail.html is None and mail.attachments == [] and mail.auto_submitted is None


def test_german_quoted_printable_utf8_with_encoded_subject():
    mail = sample("02-drucker-2og.eml")
    assert mail.subject == "Drucker im 2. OG druckt nicht"
    assert mail.from_name == "Jürgen Weiß"
    assert mail.cc == ["disposition-dus@northwind.example"]
    assert "der Drucker im 2. OG (Flur neben der Küche, Gerät NW-PRN-2OG-01)" in mail.text
    assert "Display steht „Papierstau Fach 2“ – es ist aber kein Papier eingeklemmt." in mail.text
    assert mail.text.endswith("Viele Grüße\nJürgen Weiß\nDisposition, Standort Düsseldorf\nTel. +49 211 555 0147")
    assert mail.date == datetime(2026, 11, 3, 8, 14, 37, tzinfo=UTC)  # sent 09:14:37 +0100


def test_french_iso_8859_1():
    mail = sample("03-acces-dossier-partage.eml")
    assert mail.subject == "Problème d'accès au dossier partagé « Comptabilité »"
    assert mail.from_name == "Amélie Durand"
    assert "je n'arrive plus à accéder au dossier partagé « Comptabilité »" in mail.text
    assert "« Accès refusé. Contactez votre\nadministrateur réseau »" in mail.text
    assert "Je dois clôturer les factures fournisseurs" in mail.text


def test_polish_iso_8859_2():
    mail = sample("04-skaner-magazyn.eml")
    assert mail.subject == "Skaner w magazynie nie łączy się z siecią"
    assert mail.from_name == "Łukasz Wójcik"
    assert mail.text.startswith("Dzień dobry,")
    assert '"Błąd uwierzytelniania". Pozostałe skanery działają poprawnie.' in mail.text
    assert mail.text.endswith("Kierownik zmiany, magazyn Łódź")


def test_service_request_keeps_reply_to_and_cc():
    mail = sample("05-laptop-new-hire.eml")
    assert mail.subject == "New starter 16 Nov: laptop and accounts for Mia Schneider"
    assert mail.from_name == "Okafor, Sarah (HR)"
    assert mail.reply_to == ["hr-onboarding@northwind.example"]
    assert mail.cc == ["daniel.brooks@northwind.example"]
    assert "  Start date:  Monday, 16 November 2026, London office" in mail.text.splitlines()


def test_html_only_mail_is_sanitised_and_its_table_survives_as_text():
    mail = sample("06-meeting-room-displays.eml")
    assert mail.html is not None
    for unsafe in ("<script", "document.cookie", "evil.example", "onload", "onclick", "t.mailtrack.example"):
        assert unsafe not in mail.html
    assert "<td>NW-DSP-412</td>" in mail.html
    assert 'href="https://intranet.northwind.example/rooms/harbour"' in mail.html
    rows = mail.text.splitlines()
    assert ["Harbour", "3", "NW-DSP-301", "No signal"] in [row.split(None, 3) for row in rows]
    assert ["Lighthouse", "4", "NW-DSP-412", "Flickering"] in [row.split(None, 3) for row in rows]
    assert "document.cookie" not in mail.text and "td {" not in mail.text
    assert mail.text.startswith("Hello Helpdesk,")
    assert mail.date == datetime(2026, 11, 6, 21, 5, tzinfo=UTC)  # Fri 16:05 -0500


def test_attachment_with_rfc2231_filename_and_exact_content():
    raw = (SAMPLES / "07-inventur-anhang.eml").read_bytes()
    mail = parse_message(raw)
    assert mail.subject == "Inventur Lager Köln: Geräteliste zur Prüfung"
    [attachment] = mail.attachments
    assert attachment.filename == "Geräteübersicht_Köln.csv"
    assert attachment.content_type == "text/csv"
    assert attachment.inline is False and attachment.content_id is None
    # decode the base64 block independently of the parser
    block = raw.split(b"Content-Disposition: attachment;", 1)[1].split(b"\n\n", 1)[1].split(b"\n--", 1)[0]
    expected = base64.b64decode(block)
    assert hashlib.sha256(attachment.content).hexdigest() == hashlib.sha256(expected).hexdigest()
    assert attachment.content.decode("utf-8").startswith("Inventarnummer;Gerät;Standort;Zustand\n")
    assert "Zwei Geräte sind auffällig" in mail.text  # the body is the text part, not the CSV


def test_inline_image_in_multipart_related():
    mail = sample("08-sap-login-screenshot.eml")
    [image] = mail.attachments
    assert image.content_id == "screenshot-001.3f9a@northwind.example"
    assert image.inline is True
    assert image.filename == "sap-error.png" and image.content_type == "image/png"
    assert image.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert mail.html is not None and 'src="cid:screenshot-001.3f9a@northwind.example"' in mail.html
    assert "[error screenshot]" in mail.text and "<p>" not in mail.text  # text/plain preferred over HTML


def test_reply_points_at_the_earlier_sample():
    original = sample("01-vpn-not-connecting.eml")
    reply = sample("09-re-vpn-not-connecting.eml")
    assert reply.subject == "Re: VPN not connecting from home office"
    assert reply.in_reply_to == original.message_id
    assert reply.references == [original.message_id]
    assert "> since this morning I cannot connect to the company VPN from my home office." in reply.text


def test_out_of_office_keeps_auto_submitted():
    mail = sample("10-abwesenheitsnotiz.eml")
    assert mail.auto_submitted == "auto-replied"
    assert mail.subject == "Automatische Antwort: [T-000002] Drucker im 2. OG druckt nicht"
    assert "bis einschließlich 13.11.2026 nicht im\nBüro" in mail.text


def test_body_declared_utf8_but_really_cp1252_is_not_mojibake():
    raw = (SAMPLES / "11-kassenterminal-falscher-zeichensatz.eml").read_bytes()
    assert b"charset=utf-8" in raw
    with pytest.raises(UnicodeDecodeError):
        raw.split(b"\n\n", 1)[1].decode("utf-8")  # the sample really is mislabelled
    mail = parse_message(raw)
    assert "Café au lait für 2,80 € und ein Menü für 7,50 €." in mail.text
    assert "„Fehler 0x12 – Verbindung zum Zahlungsdienst“" in mail.text
    assert mail.text.endswith("Grüße aus der Kantine\nRenée Fischer")
    assert "\ufffd" not in mail.text and "Ã" not in mail.text


# --- built inline ------------------------------------------------------------------------------------------


def test_text_line_endings_and_trailing_whitespace_are_normalised():
    raw = b"From: a@x.example\r\nSubject:  many   spaces\r\n\r\nline one   \r\nline two\t\r\nold mac\rline\r\n\r\n\r\n"
    mail = parse_message(raw)
    assert mail.text == "line one\nline two\nold mac\nline"
    assert mail.subject == "many spaces"


def test_raw_8bit_latin1_headers_and_encoded_words_with_a_wrong_charset():
    raw = (
        b"From: Ren\xe9e M\xfcller <R.Mueller@X.example>\n"
        b"Subject: Caf\xe9 kaputt, Gr\xfc\xdfe aus K\xf6ln\n"
        b"To: =?unknown-8bit?q?J=E4rgen_M=FCller?= <j@x.example>, =?utf-8?q?Doe=2C_John?= <jd@x.example>\n\n"
        b"body\n"
    )
    mail = parse_message(raw)
    assert mail.subject == "Café kaputt, Grüße aus Köln"
    assert mail.from_name == "Renée Müller" and mail.from_address == "R.Mueller@x.example"
    assert mail.to == ["j@x.example", "jd@x.example"]


def test_unknown_8bit_body_is_detected():
    raw = (
        b"From: a@x.example\nSubject: s\nContent-Type: text/plain; charset=unknown-8bit\n\n"
        b"Le caf\xe9 co\xfbte 3 \x80, merci pour l'aide avec l'imprimante apr\xe8s-midi.\n"
    )
    assert parse_message(raw).text == "Le café coûte 3 €, merci pour l'aide avec l'imprimante après-midi."


def test_dates_unparsable_missing_and_minus_zero():
    base = b"From: a@x.example\nSubject: s\n"
    assert parse_message(base + b"Date: next Tuesday\n\nx").date is None
    assert parse_message(base + b"\nx").date is None
    assert parse_message(base + b"Date: Tue, 03 Nov 2026 09:14:00 -0000\n\nx").date == datetime(
        2026, 11, 3, 9, 14, tzinfo=UTC
    )


def test_outlook_style_rfc2047_filename_and_a_synthesised_name():
    message = EmailMessage()
    message["From"] = "Ann <ann@x.example>"
    message["Subject"] = "files"
    message.set_content("two files")
    message.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="placeholder")
    message.add_attachment(b"\x89PNG\r\n\x1a\n", maintype="image", subtype="png")
    raw = bytes(message).replace(b'filename="placeholder"', b'filename="=?utf-8?q?R=C3=A9sum=C3=A9_=C3=9Cbung.pdf?="')
    pdf, png = parse_message(raw).attachments
    assert pdf.filename == "Résumé Übung.pdf" and pdf.content == b"%PDF-1.4 fake"
    assert re.fullmatch(r"part-\d+\.png", png.filename) and png.content == b"\x89PNG\r\n\x1a\n"


def test_forwarded_message_is_kept_as_an_attachment():
    inner = EmailMessage()
    inner["From"] = "Bob <bob@x.example>"
    inner["Subject"] = "Toner leer: Drucker 3. OG"
    inner.set_content("Der Toner ist leer.")
    outer = EmailMessage()
    outer["From"] = "Ann <ann@x.example>"
    outer["Subject"] = "Fwd: Toner leer: Drucker 3. OG"
    outer.set_content("see the forwarded mail")
    outer.add_attachment(inner)
    mail = parse_message(bytes(outer))
    assert mail.text == "see the forwarded mail"
    [forwarded] = mail.attachments
    assert forwarded.content_type == "message/rfc822"
    assert forwarded.filename == "Toner leer_ Drucker 3. OG.eml"
    assert parse_message(forwarded.content).text == "Der Toner ist leer."

    del inner["Subject"]
    untitled = EmailMessage()
    untitled["From"] = "Ann <ann@x.example>"
    untitled.set_content("fwd")
    untitled.add_attachment(inner)
    assert parse_message(bytes(untitled)).attachments[0].filename == "forwarded.eml"


def test_multipart_signed_passes_through():
    raw = b"""From: Ann <ann@x.example>
Subject: signed
MIME-Version: 1.0
Content-Type: multipart/signed; micalg=pgp-sha256; protocol="application/pgp-signature"; boundary="sig"

--sig
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Bitte das Zertifikat f=C3=BCr vpn-lon erneuern.
--sig
Content-Type: application/pgp-signature; name="signature.asc"
Content-Disposition: attachment; filename="signature.asc"

-----BEGIN PGP SIGNATURE-----
iHUEARYIAB0WIQ
-----END PGP SIGNATURE-----
--sig--
"""
    mail = parse_message(raw)
    assert mail.text == "Bitte das Zertifikat für vpn-lon erneuern."
    [signature] = mail.attachments
    assert signature.filename == "signature.asc" and signature.content_type == "application/pgp-signature"
    assert signature.content.startswith(b"-----BEGIN PGP SIGNATURE-----")


def test_plain_text_preferred_in_alternative_and_html_kept():
    message = EmailMessage()
    message["From"] = "Ann <ann@x.example>"
    message["Subject"] = "alt"
    message.set_content("plain version")
    message.add_alternative("<p onclick='x()'>html <b>version</b></p>", subtype="html")
    mail = parse_message(bytes(message))
    assert mail.text == "plain version"
    assert mail.html == "<p>html <b>version</b></p>"
    assert mail.attachments == []


# --- not a message -----------------------------------------------------------------------------------------


def test_empty_bytes_are_not_a_message():
    with pytest.raises(MailParseError, match="empty"):
        parse_message(b"")


def test_binary_file_renamed_eml_is_not_a_message():
    raw = (FIXTURES / "corrupt-binary.eml").read_bytes()
    with pytest.raises(MailParseError, match=r"NUL bytes|no header fields") as caught:
        parse_message(raw)
    assert isinstance(caught.value, ParseError)


def test_headerless_prose_is_not_a_message():
    with pytest.raises(MailParseError, match="no header fields"):
        parse_message(b"Hello helpdesk,\n\nmy printer is broken again.\n\nThanks, Ann\n")


# Issue 23 changed these three: a mail without a usable sender is an "unknown requester" mail (still refused when
# it has no content either), and a stray NUL in a header is repaired; only binary data is refused.
def test_message_without_from_is_an_unknown_requester_mail():
    message = EmailMessage()
    message["To"] = "helpdesk@northwind.example"
    message["Subject"] = "who sent this?"
    message.set_content("body")
    mail = parse_message(bytes(message))
    assert mail.requester_unknown and mail.from_address == UNKNOWN_REQUESTER and mail.text == "body"
    assert mail.defects == ["no From header", "no header names a usable sender: an agent must find the requester"]
    with pytest.raises(MailParseError, match="no sender and no content"):
        parse_message(b"To: helpdesk@northwind.example\nSubject:\n\n\n")


def test_from_without_an_address_keeps_the_name_for_an_agent():
    mail = parse_message(b"From: Ann Smith\nSubject: s\n\nbody\n")
    assert mail.requester_unknown and mail.from_name == "Ann Smith" and mail.subject == "s"


def test_nul_bytes_in_the_header_block_are_removed_but_binary_data_is_refused():
    mail = parse_message(b"From: a@x.example\nSubject: s\x00\n\nbody\n")
    assert mail.subject == "s" and mail.defects == ["NUL bytes in the header block were removed"]
    assert parse_message(b"From: a@x.example\nSubject: s\n\nbo\x00dy\n").text == "body"
    with pytest.raises(MailParseError, match="NUL bytes"):
        parse_message(b"\x00\x00\x00\x01From: a@x.example\nSubject: s\x00\x00\x00\x00\n\nbody\n")
