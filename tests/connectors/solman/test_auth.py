"""The three ways the hub authenticates to Solman, against the simulator over real HTTP(S): basic (everywhere
else), an OAuth 2.0 bearer taken from a token endpoint and renewed when refused, and an X.509 client certificate
over mutual TLS. The config accepts exactly one way and names what is missing."""

from __future__ import annotations

import ssl

import pytest
import yaml

from connectors.registry import build_connector
from itsm_core.config import parse_config
from itsm_core.errors import ConfigError, UpstreamAuthError, UpstreamUnavailable
from simulators.solman.simulator import SolmanSimulator
from tests.support.net import self_signed_certificate
from tests.support.solman import SolmanHub, solman_source


def _config(source: dict, base_dir):
    return parse_config(yaml.safe_dump({"sources": [source]}), base_dir=base_dir)


def _without_password(sim: SolmanSimulator, **auth) -> dict:
    source = solman_source(sim)
    del source["user"], source["password"]
    return {**source, **auth}


def test_an_oauth_bearer_is_taken_once_and_again_when_refused(database_url, tmp_path):
    with SolmanSimulator() as sim:
        origin = sim.origin
        oauth = {"token_url": f"{origin}/sap/bc/sec/oauth2/token?sap-client=100", "client_id": "HUB_CLIENT",
                 "client_secret": "client-secret", "scope": "ICT_SERVICE_DESK_API_0001"}  # fmt: skip
        hub = SolmanHub.start(sim, database_url, tmp_path, **{"user": None, "password": None, "oauth": oauth})
        sim.add_incident("Printer jammed")
        assert hub.sync().created == 1
        tokens = [r for r in sim.requests if r[1] == "oauth2/token"]
        assert len(tokens) == 1  # one token for the whole run, all threads
        sim.expire_tokens()
        sim.add_incident("VPN down")
        assert hub.sync().created == 1
        assert len([r for r in sim.requests if r[1] == "oauth2/token"]) == 2
        assert not any(status == 401 for *_, status in sim.requests[-3:])


def test_a_refused_oauth_client_is_named_without_its_secret(tmp_path):
    with SolmanSimulator() as sim:
        origin = sim.origin
        oauth = {"token_url": f"{origin}/sap/bc/sec/oauth2/token", "client_id": "HUB_CLIENT",
                 "client_secret": "wrong-secret-4711"}  # fmt: skip
        config = _config(_without_password(sim, oauth=oauth), tmp_path)
        connector = build_connector(config.source("sap"))
        try:
            with pytest.raises(UpstreamAuthError, match="OAuth token endpoint refused the hub") as caught:
                connector.check()
        finally:
            connector.close()
    assert "wrong-secret-4711" not in str(caught.value)


def test_an_x509_client_certificate_over_mutual_tls(tmp_path):
    (tmp_path / "server").mkdir()
    (tmp_path / "client").mkdir()
    server_cert, server_key = self_signed_certificate(tmp_path / "server")
    client_cert, client_key = self_signed_certificate(tmp_path / "client")
    tls = {"certfile": str(server_cert), "keyfile": str(server_key), "ca_certs": str(client_cert),
           "cert_reqs": ssl.CERT_REQUIRED}  # fmt: skip
    with SolmanSimulator(tls=tls) as sim:
        source = _without_password(sim, client_cert=str(client_cert), client_key=str(client_key),
                                   ca_file=str(server_cert))  # fmt: skip
        sim.add_incident("Printer jammed")  # forwarded to the hub (its GUID is set with the source)
        assert source["url"].startswith("https://")
        config = _config(source, tmp_path)
        connector = build_connector(config.source("sap"))
        try:
            assert connector.check() == []
            pages = list(connector.plan_pages(None))
            (record,) = connector.fetch_page(pages[0])
        finally:
            connector.close()
        assert b"Printer jammed" in record.payload

        plain = {**source, "client_cert": None, "client_key": None, "user": sim.user, "password": sim.password}
        without = _config(plain, tmp_path)
        refused = build_connector(without.source("sap"))
        try:
            with pytest.raises(UpstreamUnavailable, match="SAP did not answer GET of the ICT WSDL"):
                refused.check()
        finally:
            refused.close()


@pytest.mark.parametrize(
    ("auth", "said"),
    [
        ({}, "give exactly one way to authenticate"),
        ({"user": "HUB", "password": "x", "client_cert": "c.pem"}, r"given: user and password, client_cert"),
        ({"user": "HUB"}, "needs both user and password"),
        ({"client_key": "k.pem", "oauth": {"token_url": "https://t", "client_id": "c", "client_secret": "s"}},
         "client_key needs client_cert"),
    ],
)  # fmt: skip
def test_authentication_is_one_way_and_a_mistake_says_which(tmp_path, auth, said):
    source = {"name": "sap", "kind": "solman", "url": "https://solman.example.com", **auth}
    with pytest.raises(ConfigError, match=said):
        _config(source, tmp_path)
