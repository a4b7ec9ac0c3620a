"""A run killed mid-page and started again loses nothing and duplicates nothing.

The page task is called as plain Python (`ingest_page.fn`): the crash points are ours, not Prefect's.
"""

import shutil
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.runtime import build_runtime
from flows.sync import ENTITY, ingest_page
from itsm_core.config import parse_config
from itsm_core.store import Store
from itsm_core.store.tables import CommentRow, InboundRecordRow, MailMessageRow, TicketRow

SAMPLES = resources.files("flows.demo").joinpath("mail")


class Crash(Exception):
    pass


def make_runtime(tmp_path: Path, database_url: str):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for sample in SAMPLES.iterdir():
        if sample.name.endswith(".eml"):
            with resources.as_file(sample) as path:
                shutil.copyfile(path, inbox / sample.name)
    config = parse_config(
        f"database_url: {database_url}\n"
        "sources: [{name: drop, kind: maildir, path: inbox, page_size: 4, after_import: move, move_to: done}]\n",
        base_dir=tmp_path,
    )
    store = Store(database_url)
    store.upgrade()
    return build_runtime(config, config.sources[0], store=store)


def snapshot(store: Store) -> dict[str, int]:
    with store.connect() as conn:
        return {
            table.__tablename__: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (TicketRow, CommentRow, InboundRecordRow, MailMessageRow)
        }


def run_all(runtime) -> None:
    watermark = None
    for page in runtime.connector.plan_pages(watermark):
        _, watermark = ingest_page.fn(runtime, ENTITY, page, watermark)


@pytest.mark.parametrize("crash_point", ["inside-the-transaction", "after-commit-before-acknowledge"])
def test_a_crash_mid_run_then_a_rerun_equals_an_uninterrupted_run(tmp_path, database_url, crash_point, monkeypatch):
    reference_dir, crashed_dir = tmp_path / "reference", tmp_path / "crashed"
    reference_dir.mkdir()
    crashed_dir.mkdir()
    # The reference run is on SQLite; the crashed one on each database (counts do not depend on the dialect).
    reference = make_runtime(reference_dir, f"sqlite:///{reference_dir / 'reference.db'}")
    run_all(reference)
    expected = snapshot(reference.store)

    crashed = make_runtime(crashed_dir, database_url)
    pages = list(crashed.connector.plan_pages(None))
    ingest_page.fn(crashed, ENTITY, pages[0], None)  # the first page goes through
    if crash_point == "inside-the-transaction":
        import itsm_core.sync.batch as batch

        original = batch.set_outcomes

        def crash(*args, **kwargs):
            raise Crash("killed while writing the page")

        monkeypatch.setattr(batch, "set_outcomes", crash)
        with pytest.raises(Crash):
            ingest_page.fn(crashed, ENTITY, pages[1], None)
        monkeypatch.setattr(batch, "set_outcomes", original)
    else:
        original_ack = crashed.connector.acknowledge
        monkeypatch.setattr(crashed.connector, "acknowledge", lambda records: (_ for _ in ()).throw(Crash("killed")))
        with pytest.raises(Crash):
            ingest_page.fn(crashed, ENTITY, pages[1], None)
        monkeypatch.setattr(crashed.connector, "acknowledge", original_ack)

    run_all(crashed)  # the restart: lists the folder again
    assert snapshot(crashed.store) == expected
    assert sorted(p.name for p in (crashed_dir / "done").iterdir()) == sorted(
        p.name for p in (reference_dir / "done").iterdir()
    )
    assert list((crashed_dir / "inbox").iterdir()) == []
