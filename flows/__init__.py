"""Prefect flows that wire connectors, mappings, rules and the store together.

Importing this package sets Prefect's offline and private defaults (no telemetry, our `itsm` loggers shipped
to the Prefect UI) unless the environment already chose otherwise.
"""

import os

for _name, _value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_V2_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "itsm",
    # our loggers also run outside flows (CLI commands, replays): nothing to ship there, nothing to warn about
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}.items():
    os.environ.setdefault(_name, _value)
