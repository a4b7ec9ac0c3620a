"""The domain of itsm-hub: no HTTP, no IMAP, no Prefect.

- `models`   canonical tickets, comments, attachments, CIs, the status transition table, raw records
- `config`   the YAML config file, validated; secrets by reference
- `mapping`  declarative upstream → canonical mappings (files in `mappings/`)
- `rules`    organisation rules applied to every batch (ITIL priority today)
- `store`    SQLAlchemy tables, Alembic migrations, bulk writes and queries
- `sync`     the batch pipeline: land → decode → map → rules → store, quarantine and replay
- `errors`   every exception the hub raises on purpose
"""
