"""`itsm sync check SOURCE` against the Solman simulator, as an administrator runs it: what to register in Solman,
and every mapped status code the system lacks, named; the same mismatch stops a run before it reads anything."""

from __future__ import annotations

import pytest
import yaml

from connectors.solman._ict import system_guid
from itsm_core.errors import ConfigError
from simulators.solman.simulator import SolmanSimulator
from tests.flows.test_cli import itsm
from tests.support.solman import SOURCE, SolmanHub, solman_source


@pytest.fixture
def sim():
    with SolmanSimulator() as sim:
        yield sim


@pytest.fixture
def workdir(sim, tmp_path):
    config = {"database_url": f"sqlite:///{tmp_path / 'store.db'}", "sources": [solman_source(sim)]}
    (tmp_path / "itsm.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_a_matching_system_is_ok_and_the_guid_to_register_is_shown(sim, workdir):
    done = itsm("sync", "check", SOURCE, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert f"hub system GUID: {system_guid(SOURCE)}" in done.stdout and f"{SOURCE}: ok" in done.stdout
    assert sim.password not in done.stdout + done.stderr


def test_a_mapped_code_the_system_lacks_is_named_and_exits_1(sim, workdir):
    del sim.status_profiles["SMIN0001"]["E0004"]
    done = itsm("sync", "check", SOURCE, cwd=workdir)
    assert done.returncode == 1
    assert "status E0004 (in_progress) is mapped for SMIN but status profile SMIN0001 has no such code" in done.stderr


def test_a_status_table_the_user_may_not_read_is_said_not_guessed(sim, workdir):
    sim.fail_next("forbidden", path="RFC_READ_TABLE")
    done = itsm("sync", "check", SOURCE, "--json", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert '"ok": true' in done.stdout and "grant the hub's user S_RFC" in done.stdout


def test_check_without_a_source_says_how_to_call_it(workdir):
    done = itsm("sync", "check", cwd=workdir)
    assert done.returncode == 2 and "itsm sync check SOURCE" in done.stderr


def test_a_run_on_a_mismatched_system_stops_before_reading_naming_the_code(sim, database_url, tmp_path):
    hub = SolmanHub.start(sim, database_url, tmp_path)
    sim.add_incident("Printer jammed")
    del sim.status_profiles["SMIN0001"]["E0003"]
    with pytest.raises(ConfigError, match=r"E0003 \(pending\) is mapped for SMIN") as caught:
        hub.sync()
    assert caught.value.key == "profile"
    called = {path.split("/")[-1] for _, path, _ in sim.requests}
    assert "RFC_READ_TABLE" in called and not called & {"ListUnclosedIncidents", "ReadCompleteIncident"}
