"""Connector kinds as entry points: the hub's own, a third-party plug-in installed beside them, and the mistakes
a plug-in can make (each a clear error with exit status 2, never a silent choice)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.registry import ConnectorKind, build_writer, push_targets, registered_kinds
from itsm_core.config import parse_config
from itsm_core.errors import ConfigError

ITSM = [sys.executable, "-c", "from flows.cli import main; main()"]

PLUGIN = """
from typing import Literal

from connectors.base import SourceConnector
from connectors.registry import ConnectorKind
from itsm_core.config import SourceBase


class ZammadSource(SourceBase):
    kind: Literal["{name}"]
    url: str


class ZammadConnector(SourceConnector):
    payload_format = "json"

    def __init__(self, source):
        self.source = source

    def plan_pages(self, watermark, entity="tickets"):
        return iter(())

    def page_watermark(self, page, watermark):
        return watermark

    def fetch_page(self, page):
        return []

    def decode(self, payload, entity="tickets"):
        return {}


KIND = ConnectorKind(name="{name}", config=ZammadSource, connector=ZammadConnector, mappings={"tickets": "csv"},
                     description="Zammad, from a plug-in")
"""


def install_plugin(
    base: Path, *, entry_name: str = "zammad", kind_name: str = "zammad", target: str = "zammad_kind:KIND"
) -> None:
    """A distribution on `base` (as pip would leave it): a module and its dist-info with the entry point."""
    base.mkdir()
    (base / "zammad_kind.py").write_text(PLUGIN.replace("{name}", kind_name))
    info = base / "itsm_zammad-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: itsm-zammad\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[itsm_hub.connectors]\n{entry_name} = {target}\n")


def itsm(*args: str, cwd: Path, plugin_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("ITSM_CONFIG", None)
    if plugin_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugin_path), env.get("PYTHONPATH")]))
    return subprocess.run([*ITSM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_hubs_own_kinds_are_registered_with_what_they_are():
    kinds = registered_kinds()
    assert {"maildir", "imap", "glpi", "csv"} <= set(kinds)
    assert all(isinstance(kind, ConnectorKind) for kind in kinds.values())
    assert kinds["glpi"].two_way and not kinds["imap"].two_way
    assert kinds["glpi"].mappings == {"tickets": "glpi", "cis": "glpi_assets"}


def test_push_targets_are_the_enabled_two_way_sources_that_push():
    glpi = "{name: %s, kind: glpi, url: 'https://glpi.example/apirest.php', user_token: t%s}"
    config = parse_config(
        "sources:\n"
        "  - {name: drop, kind: maildir, path: inbox}\n"
        f"  - {glpi % ('g1', '')}\n  - {glpi % ('g2', ', push: false')}\n  - {glpi % ('g3', ', enabled: false')}\n"
    )
    assert [source.name for source in push_targets(config)] == ["g1"]
    with pytest.raises(ConfigError, match=r"drop.*takes no pushes"):
        build_writer(config.source("drop"))


def test_itsm_kinds_lists_every_kind(tmp_path):
    result = itsm("kinds", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {row["kind"]: row for row in json.loads(result.stdout)}
    assert set(rows) == set(registered_kinds())
    assert rows["glpi"]["two_way"] is True and rows["glpi"]["entry_point"] == "connectors.glpi:GLPI"


def test_a_plugin_kind_joins_through_its_entry_point(tmp_path):
    install_plugin(tmp_path / "site")
    listed = itsm("kinds", "--json", cwd=tmp_path, plugin_path=tmp_path / "site")
    assert listed.returncode == 0, listed.stderr
    assert {row["kind"]: row["description"] for row in json.loads(listed.stdout)}["zammad"] == "Zammad, from a plug-in"
    (tmp_path / "itsm.yaml").write_text(
        "database_url: sqlite:///store.db\nsources: [{name: z, kind: zammad, url: 'https://zammad.example'}]\n"
    )
    assert itsm("db", "upgrade", cwd=tmp_path, plugin_path=tmp_path / "site").returncode == 0
    run = itsm("sync", "z", cwd=tmp_path, plugin_path=tmp_path / "site")
    assert run.returncode == 0, run.stdout + run.stderr
    unknown = itsm("db", "upgrade", cwd=tmp_path)  # without the plug-in installed
    assert unknown.returncode == 2
    assert "sources[0].kind: unknown source kind" in unknown.stderr and "maildir" in unknown.stderr


@pytest.mark.parametrize(
    ("plugin", "message"),
    [
        ({"entry_name": "zammad", "kind_name": "otrs"}, "points to a plug-in named 'otrs'"),
        ({"entry_name": "glpi", "kind_name": "glpi"}, "two packages register"),
        ({"target": "zammad_kind:NOPE"}, "cannot be loaded"),
    ],
)
def test_a_broken_plugin_is_a_clear_config_error(tmp_path, plugin, message):
    install_plugin(tmp_path / "site", **plugin)
    result = itsm("kinds", cwd=tmp_path, plugin_path=tmp_path / "site")
    assert result.returncode == 2
    assert message in result.stderr
