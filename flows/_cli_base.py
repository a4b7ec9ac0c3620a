"""What every `itsm` command shares: the consoles, the common options, config and store loading, output helpers."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from itsm_core.config import HubConfig
from itsm_core.store import Store
from itsm_core.text import single_line

# Piped or captured output (CI logs, `| less`) gets a wide page instead of rich's 80 columns.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)  # one error, one line: never wrapped mid-sentence

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        envvar="ITSM_CONFIG",
        help="Config file (YAML). Default: $ITSM_CONFIG, else ./itsm.yaml.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout instead of a table.")]
ActorOption = Annotated[str, typer.Option(help="Who makes the change, for the audit trail (user:NAME).")]


def _fail(message: str, *, code: int = 1) -> NoReturn:
    err.print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code)


def _config(path: str | None) -> HubConfig:
    from flows.runtime import load_hub_config

    return load_hub_config(path)


def _store(path: str | None, *, check_schema: bool = True) -> Store:
    store = Store(_config(path).database_url.get_secret_value())
    if check_schema:
        store.ensure_current()
    return store


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_json_default, ensure_ascii=False, indent=None) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return str(value)


def _shown(value: Any) -> str:
    """A stored value as one printable line: an ESC sequence in a subject must not drive the reader's terminal
    (intake strips them; older records or other sources may still hold some)."""
    return single_line(str(value)) if value is not None else ""


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""
