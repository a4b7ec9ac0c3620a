"""The `itsm` command as people run it: real process, real exit statuses, real store."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from itsm_core.models import RawRecord, utcnow
from itsm_core.store import Store
from itsm_core.store.quarantine import quarantine

ITSM = [sys.executable, "-c", "from flows.cli import main; main()"]


def itsm(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("ITSM_CONFIG", None)
    return subprocess.run([*ITSM, *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "itsm.yaml").write_text(
        "database_url: sqlite:///store.db\nsources:\n  - {name: drop, kind: maildir, path: inbox}\n"
    )
    return tmp_path


def test_help_explains_every_command(tmp_path):
    top = itsm("--help", cwd=tmp_path)
    assert top.returncode == 0
    for command in ("run", "sync", "tickets", "deadletters", "db", "demo"):
        assert command in top.stdout
    assert "itsm demo" in top.stdout
    sub = itsm("tickets", "list", "--help", cwd=tmp_path)
    assert "--status" in sub.stdout and "--json" in sub.stdout and "ITSM_CONFIG" in sub.stdout


GLPI = "sources:\n  - {{name: g, kind: glpi, url: '{url}', user_token: t}}\n"


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ("sources:\n  - {name: drop, kind: maildir, path: inbox, colour: red}\n", "sources[0].colour"),
        ("database_url: 42\n", "database_url"),
        ("database_url: postgresql://u:${NOT_SET_ANYWHERE}@h/db\n", "database_url"),
        ("database_url: 'notadb://'\n", "unknown database kind 'notadb'"),
        ("email:\n  external_number_patterns: {glpi: 'GLPI-(\\d+'}\n", "email.external_number_patterns"),
        ("email:\n  external_number_patterns: {glpi: 'GLPI-\\d+'}\n", "needs one group"),
        (GLPI.format(url="http://glpi.example/apirest.php"), "allow_insecure"),
        (GLPI.format(url="ftp://glpi.example/apirest.php"), "https://"),
        (
            "sources:\n  - {name: g, kind: glpi, url: 'https://glpi.example/apirest.php', user_token: t, "
            "max_document_bytes: 0}\n",
            "sources[0].max_document_bytes",
        ),
    ],
)
def test_bad_config_exits_2_naming_the_key(tmp_path, config, key):
    (tmp_path / "itsm.yaml").write_text(config)
    for command in (["run"], ["db", "upgrade"], ["tickets", "list"]):
        result = itsm(*command, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert key in result.stderr
        assert result.stderr.count("\n") == 1  # one line, no traceback


def test_a_config_file_that_is_not_utf8_exits_2_in_one_line(tmp_path):
    (tmp_path / "itsm.yaml").write_bytes("database_url: sqlite:///caf\xe9.db\n".encode("latin-1"))
    result = itsm("tickets", "list", cwd=tmp_path)
    assert result.returncode == 2 and "not UTF-8" in result.stderr
    assert result.stderr.count("\n") == 1


def test_plain_http_to_glpi_is_allowed_on_loopback_or_when_insecure_is_allowed(tmp_path):
    from itsm_core.config import parse_config

    for url, extra in (
        ("http://127.0.0.1:8080/apirest.php", ""),
        ("http://glpi.example/apirest.php", ", allow_insecure: true"),
    ):
        config = parse_config(f"sources:\n  - {{name: g, kind: glpi, url: '{url}', user_token: t{extra}}}\n")
        assert config.sources[0].url == url


def test_a_comment_on_a_missing_ticket_is_one_line_not_a_traceback(workdir):
    assert itsm("db", "upgrade", cwd=workdir).returncode == 0
    result = itsm("tickets", "comment", "T-000099", "hello", cwd=workdir)
    assert result.returncode == 1 and "no ticket T-000099" in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_config_exits_2_and_says_how_to_fix(tmp_path):
    result = itsm("tickets", "list", cwd=tmp_path)
    assert result.returncode == 2
    assert "itsm.yaml not found" in result.stderr and "--config" in result.stderr


def test_unmigrated_store_says_to_run_db_upgrade(workdir):
    result = itsm("tickets", "list", cwd=workdir)
    assert result.returncode == 1
    assert "itsm db upgrade" in result.stderr


def test_unreachable_database_error_hides_the_password(tmp_path):
    (tmp_path / "itsm.yaml").write_text("database_url: postgresql://itsm:${DB_PW}@127.0.0.1:9/itsm\n")
    result = itsm("db", "upgrade", cwd=tmp_path, env={"DB_PW": "topsecret-pw"})
    assert result.returncode == 1
    assert "cannot reach the database postgresql://itsm:***@127.0.0.1:9/itsm: connection failed" in result.stderr
    assert result.stderr.count("\n") == 1
    assert "topsecret-pw" not in result.stderr + result.stdout


def test_db_upgrade_then_list_show_and_dead_letters(workdir):
    first = itsm("db", "upgrade", cwd=workdir)
    assert first.returncode == 0 and "→" in first.stdout
    assert "already at" in itsm("db", "upgrade", cwd=workdir).stdout

    empty = itsm("tickets", "list", "--json", cwd=workdir)
    assert empty.returncode == 0 and json.loads(empty.stdout) == []

    store = Store(f"sqlite:///{workdir / 'store.db'}")
    with store.transaction() as conn:
        (letter_id,) = quarantine(
            conn,
            [
                {
                    "source": "drop",
                    "stage": "parse",
                    "external_id": "m1",
                    "payload": b"garbage",
                    "payload_format": "eml",
                    "reason": "not a message: no header fields",
                    "traceback": None,
                }
            ],
        )
    listed = json.loads(itsm("deadletters", "list", "--json", cwd=workdir).stdout)
    assert [(d["id"], d["reason"], d["size"]) for d in listed] == [(letter_id, "not a message: no header fields", 7)]
    assert "garbage" not in itsm("deadletters", "list", cwd=workdir).stdout  # payloads are not dumped

    replay = itsm("deadletters", "replay", str(letter_id), cwd=workdir)
    assert replay.returncode == 1 and "still fails" in replay.stderr

    missing = itsm("tickets", "show", "T-000099", cwd=workdir)
    assert missing.returncode == 1 and "no ticket T-000099" in missing.stderr
    store.dispose()


def test_ticket_list_filters_and_show_prints_history(workdir):
    from itsm_core.mapping import load_mapping
    from itsm_core.rules import Rules, RulesConfig
    from itsm_core.sync.ingest import SourcePipeline, ingest_batch

    itsm("db", "upgrade", cwd=workdir)
    store = Store(f"sqlite:///{workdir / 'store.db'}")

    def decode(payload: bytes) -> dict:
        return {"subject": payload.decode(), "from_address": "bob@example.org", "text": "details"}

    pipeline = SourcePipeline("drop", decode, load_mapping("email"), Rules(RulesConfig()))
    with store.transaction() as conn:
        ingest_batch(conn, pipeline, [RawRecord(f"m{i}", f"Printer {i}".encode(), "eml", utcnow()) for i in range(3)])
    store.dispose()

    rows = json.loads(itsm("tickets", "list", "--json", "--status", "new", cwd=workdir).stdout)
    assert [r["number"] for r in rows] == ["T-000003", "T-000002", "T-000001"]
    assert json.loads(itsm("tickets", "list", "--json", "--status", "closed", cwd=workdir).stdout) == []
    bad = itsm("tickets", "list", "--status", "done", cwd=workdir)
    assert bad.returncode == 2 and "done" in bad.stderr

    shown = itsm("tickets", "show", "2", cwd=workdir)
    assert shown.returncode == 0
    assert "T-000002  Printer 1" in shown.stdout and "bob@example.org" in shown.stdout
    assert "status: new" in shown.stdout and "by source:drop" in shown.stdout
    assert "watchers   -" in shown.stdout and "conversation:" not in shown.stdout

    long_answer = "\n".join(f"step {n}" for n in range(1, 10))
    assert itsm("tickets", "comment", "2", long_answer, "--actor", "user:dora", cwd=workdir).returncode == 0
    assert itsm("tickets", "comment", "2", "checked the fuser", "--private", cwd=workdir).returncode == 0
    shown = itsm("tickets", "show", "2", cwd=workdir).stdout
    conversation = shown.split("conversation:")[1].split("history:")[0]
    assert "user:dora" in conversation and "step 6" in conversation and "step 7" not in conversation
    assert "(--json has the whole text)" in conversation and "(private)" in conversation


def test_email_import_dir_counts_add_up_and_a_second_import_adds_nothing(workdir):
    import shutil

    demo_mail = Path(__file__).resolve().parents[2] / "flows" / "demo" / "mail"
    folder = workdir / "import"
    shutil.copytree(demo_mail, folder)
    itsm("db", "upgrade", cwd=workdir)

    first = itsm("email", "import-dir", str(folder), "--json", cwd=workdir)
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    files = len(list(folder.glob("*.eml")))
    assert counts == {
        "files": files,
        "tickets_created": files - 3,  # minus the reply, the out-of-office and the scanner PDF
        "comments_added": 1,
        "ignored_autoreply": 1,
        "ignored_bounce": 0,
        "duplicates": 0,
        "quarantined": 1,
    }
    again = json.loads(itsm("email", "import-dir", str(folder), "--json", cwd=workdir).stdout)
    assert again == {**dict.fromkeys(counts, 0), "files": files, "duplicates": files}


def test_set_status_resolved_then_push_mails_the_requester_a_threaded_notice(workdir):
    from connectors.mail.record import message_identity
    from tests.support.smtp_sink import SmtpSink

    demo = Path(__file__).resolve().parents[2] / "flows" / "demo" / "mail" / "01-vpn-not-connecting.eml"
    (workdir / "inbox" / "01.eml").write_bytes(demo.read_bytes())
    with SmtpSink() as sink:
        (workdir / "itsm.yaml").write_text(
            "database_url: sqlite:///store.db\n"
            "sources:\n  - {name: drop, kind: maildir, path: inbox}\n"
            "email:\n  hub_addresses: [helpdesk@northwind.example]\n"
            f"  smtp: {{host: 127.0.0.1, port: {sink.port}, security: plain,\n"
            "         from_address: helpdesk@northwind.example}\n"
        )
        assert itsm("db", "upgrade", cwd=workdir).returncode == 0
        assert itsm("email", "import-dir", "inbox", cwd=workdir).returncode == 0
        refused = itsm("tickets", "set-status", "T-000001", "closed", cwd=workdir)
        assert refused.returncode == 1 and "allowed from 'new'" in refused.stderr
        resolved = itsm("tickets", "set-status", "T-000001", "resolved", cwd=workdir)
        assert resolved.returncode == 0 and "queued for: email (1)" in resolved.stdout, resolved.stderr
        status = json.loads(itsm("sync", "status", "--json", cwd=workdir).stdout)
        by_system = {row["system"]: row for row in status}
        assert by_system["drop"]["kind"] == "maildir" and by_system["drop"]["lag_seconds"] is None  # never run
        assert by_system["email"]["kind"] == "push target" and by_system["email"]["outbox_pending"] == 2
        pushed = itsm("push", cwd=workdir)
        assert pushed.returncode == 0, pushed.stderr
        assert "email: 2 sent" in pushed.stdout  # the acknowledgement of the new ticket, then the resolution
        subjects = [m["Subject"] for m in sink.messages]
        original = sink.messages[-1]["In-Reply-To"]
    # the token carries the ticket's secret: a reply with it threads whoever sends it
    assert len(subjects) == 2 and all(re.match(r"\[#T-000001-[a-z2-7]{6}\] Re: ", s) for s in subjects)
    assert "has been resolved" in sink.messages[-1].get_body(("plain",)).get_content()
    assert original.strip("<>") == message_identity(demo.read_bytes())  # threads under the requester's mail


def test_a_60_mb_mail_in_a_drop_folder_is_refused_by_its_headers_in_bounded_memory(workdir):
    """max_message_bytes (25 MB by default) holds for drop folders too: the file is never read whole."""
    body = b"A" * 76 + b"\r\n"
    with (workdir / "inbox" / "huge.eml").open("wb") as f:
        f.write(b"From: Ann <ann@example.org>\r\nTo: hd@example.org\r\nSubject: huge\r\nMessage-ID: <huge@x>\r\n\r\n")
        for _ in range(60 * 1024 * 1024 // len(body)):
            f.write(body)
    (workdir / "inbox" / "small.eml").write_bytes(b"From: bob@example.org\r\nSubject: small\r\n\r\nhello\r\n")
    assert itsm("db", "upgrade", cwd=workdir).returncode == 0
    # VmHWM: this process's own peak (ru_maxrss would include pytest's, inherited through fork and exec)
    peak = (
        "import atexit, re, sys; atexit.register(lambda: sys.stderr.write('peak_kb=' + "
        "re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1) + '\\n'))"
    )
    command = [
        sys.executable,
        "-c",
        f"{peak}; from flows.cli import main; main()",
        "email",
        "import-dir",
        "inbox",
        "--json",
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    assert (counts["tickets_created"], counts["quarantined"]) == (1, 1)
    peak_mb = int(result.stderr.rsplit("peak_kb=", 1)[1].split()[0]) / 1024
    assert peak_mb < 300, f"peak memory {peak_mb:.0f} MB"
    letters = json.loads(itsm("deadletters", "list", "--json", cwd=workdir).stdout)
    assert "exceeds max_message_bytes" in letters[0]["reason"] and letters[0]["size"] < 10_000


def test_a_long_text_is_cut_to_max_text_chars_with_a_note(workdir):
    (workdir / "itsm.yaml").write_text(
        "database_url: sqlite:///store.db\n"
        "sources:\n  - {name: drop, kind: maildir, path: inbox, max_text_chars: 1000}\n"
    )
    (workdir / "inbox" / "long.eml").write_bytes(b"From: ann@example.org\r\nSubject: long\r\n\r\n" + b"word " * 2000)
    assert itsm("db", "upgrade", cwd=workdir).returncode == 0
    assert itsm("sync", "drop", cwd=workdir).returncode == 0
    (ticket,) = json.loads(itsm("tickets", "list", "--json", cwd=workdir).stdout)
    shown = json.loads(itsm("tickets", "show", ticket["number"], "--json", cwd=workdir).stdout)
    assert shown["description"].startswith("word word") and "cut at 1000 of 9999 characters" in shown["description"]


def test_deadletters_replay_all_of_a_source_replays_each_on_its_own(workdir):
    """A good record quarantined (say, before a mapping was fixed) and a bad one: --all replays the first into a
    ticket and keeps the second, with exit status 1."""
    assert itsm("db", "upgrade", cwd=workdir).returncode == 0
    good = b"From: ann@example.org\r\nSubject: printer\r\nMessage-ID: <p1@x>\r\n\r\nIt jams.\r\n"
    store = Store(f"sqlite:///{workdir / 'store.db'}")
    with store.transaction() as conn:
        letters = quarantine(
            conn,
            [
                {"source": "drop", "stage": "map", "external_id": "p1@x", "payload": good, "payload_format": "eml",
                 "reason": "old mapping", "traceback": None},
                {"source": "drop", "stage": "parse", "external_id": "g", "payload": b"garbage", "payload_format": "eml",
                 "reason": "not a message", "traceback": None},
            ],
        )  # fmt: skip
    store.dispose()
    assert itsm("deadletters", "replay", cwd=workdir).returncode == 2  # neither ids nor --all
    replay = itsm("deadletters", "replay", "--all", "--source", "drop", cwd=workdir)
    assert replay.returncode == 1
    assert f"dead letter {letters[0]}: replayed: ticket T-000001 created" in replay.stdout
    assert f"dead letter {letters[1]}: still fails" in replay.stderr
    listed = json.loads(itsm("deadletters", "list", "--json", cwd=workdir).stdout)
    assert [d["id"] for d in listed] == [letters[1]]


def test_email_import_dir_reads_mail_by_content_whatever_the_file_name(workdir):
    demo_mail = Path(__file__).resolve().parents[2] / "flows" / "demo" / "mail"
    folder = workdir / "export"
    folder.mkdir()
    (folder / "vpn.eml").write_bytes((demo_mail / "01-vpn-not-connecting.eml").read_bytes())
    postmark = b"From alice@example.org Thu Dec  3 09:15:02 2026\n"  # a one-message mbox export
    (folder / "printer.box").write_bytes(postmark + (demo_mail / "02-drucker-2og.eml").read_bytes())
    (folder / "0000000017").write_bytes((demo_mail / "03-acces-dossier-partage.eml").read_bytes())
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")  # hidden: not offered at all
    assert itsm("db", "upgrade", cwd=workdir).returncode == 0
    done = itsm("email", "import-dir", str(folder), "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert (counts["files"], counts["tickets_created"], counts["quarantined"]) == (4, 3, 1)
    letters = json.loads(itsm("deadletters", "list", "--json", cwd=workdir).stdout)
    assert [letter["reason"] for letter in letters] == [
        "NUL bytes in the header block: this is binary data, not an RFC 5322 message"
    ]
    tickets = json.loads(itsm("tickets", "list", "--json", cwd=workdir).stdout)
    assert any("Drucker" in ticket["title"] for ticket in tickets)  # the .box message, postmark left out
