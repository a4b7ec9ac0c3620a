"""Mail intake from a real Dovecot: IMAP fetch → land → parse → triage → bulk write, page by page.

    .venv/bin/python bench/email_intake.py --messages 5000 [--page 200] [--database-url URL]

Starts a private Dovecot on loopback (Debian's dovecot-imapd), appends generated messages (not timed),
then reads them exactly as an `ingest-page` task does: one IMAP FETCH and one transaction per page.
Reference in the same run: a plain loop that only FETCHes the same pages (the IMAP floor).
Ends with one JSON line: messages_per_s, imap_only_per_s, peak_rss_mb.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from bench.ingest import generate
from connectors.mail.config import ImapSource
from connectors.mail.imap import ImapConnector
from itsm_core.config import EmailConfig
from itsm_core.email.intake import EmailIntake
from itsm_core.mapping import load_mapping
from itsm_core.rules import Rules, RulesConfig
from itsm_core.store import Store
from itsm_core.sync.batch import BatchReport
from itsm_core.sync.ingest import SourcePipeline, ingest_batch
from tests.support.dovecot import start_dovecot, stop_dovecot

PASSWORD = "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--page", type=int, default=200)
    parser.add_argument("--database-url", help="default: a SQLite file in a temp folder")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = start_dovecot(Path(tmp) / "dovecot", {"helpdesk": PASSWORD})
        try:
            started = time.perf_counter()
            with IMAPClient(server.host, port=server.port, ssl=False) as client:
                client.login("helpdesk", PASSWORD)
                for page in generate(args.messages, 500):
                    client.multiappend("INBOX", [r.payload for r in page])
            print(f"appended {args.messages} messages in {time.perf_counter() - started:.1f} s (not timed below)")

            settings = ImapSource.model_validate(
                {"name": "bench", "kind": "imap", "host": server.host, "port": server.port, "security": "plain",
                 "username": "helpdesk", "password": PASSWORD, "page_size": args.page, "after_import": "leave"}
            )  # fmt: skip

            connector = ImapConnector(settings)
            started = time.perf_counter()
            fetched = sum(len(connector.fetch_page(p)) for p in list(connector.plan_pages(None)))
            imap_only = time.perf_counter() - started
            connector.close()

            store = Store(args.database_url or f"sqlite:///{tmp}/bench.db")
            store.upgrade()
            connector = ImapConnector(settings)
            pipeline = SourcePipeline(
                "bench", connector.decode, load_mapping("email"), Rules(RulesConfig()),
                intake=EmailIntake(EmailConfig(flood_per_sender=10**9), "bench"),
            )  # fmt: skip
            report, watermark = BatchReport(), None
            started = time.perf_counter()
            for page in connector.plan_pages(None):
                records = connector.fetch_page(page)
                with store.transaction() as conn:
                    report += ingest_batch(conn, pipeline, records)
                watermark = connector.page_watermark(page, watermark)
            elapsed = time.perf_counter() - started
            connector.close()
            store.dispose()
        finally:
            stop_dovecot(server)

    assert fetched == report.fetched == args.messages, (fetched, report.counts())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"IMAP fetch only (reference)   {imap_only:7.2f} s  {fetched / imap_only:8.0f} msg/s")
    print(f"full intake into {store.dialect:<12} {elapsed:7.2f} s  {report.fetched / elapsed:8.0f} msg/s")
    print(f"counts {report.counts()}  intake / fetch-only time: {elapsed / imap_only:.1f}x")
    print(json.dumps({
        "messages": args.messages,
        "messages_per_s": round(report.fetched / elapsed, 1),
        "imap_only_per_s": round(fetched / imap_only, 1),
        "peak_rss_mb": round(peak, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
