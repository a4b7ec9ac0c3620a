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
}.items():
    os.environ.setdefault(_name, _value)
