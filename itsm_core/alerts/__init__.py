"""Alerts: which events on which tickets are told to whom (`spec.py`, the config's `alerts:` section), what the
message says (`messages.py`), and how they are queued in the outbox with the change (`plan.py`). The channels
that send them are `connectors/alerts/`; `push-outbox` delivers them with retries, then dead letters."""
