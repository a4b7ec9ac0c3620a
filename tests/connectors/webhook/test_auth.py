"""The checks made on a delivery's raw body before anything is stored: the hub's `hmac` scheme, GLPI's signature,
bearer tokens, the replay window; secrets from the config or a file, never in an error."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from connectors.webhook.auth import Unauthorized, check, sign, signed_headers
from connectors.webhook.config import BearerAuth, SignedAuth
from itsm_core.config import parse_config
from itsm_core.errors import ConfigError

BODY = b'{"event": "handoff", "conversation_id": "c-1"}'
NOW = 1_786_000_000


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_the_hub_signature_is_hmac_sha256_of_timestamp_dot_body():
    expected = hmac.new(b"s3cret", f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign("s3cret", NOW, BODY) == f"sha256={expected}"


def test_a_signed_delivery_passes_and_any_change_fails():
    auth = SignedAuth(scheme="hmac", secret="s3cret")
    headers = lower(signed_headers("s3cret", BODY, "d-1", now=NOW))
    check(auth, headers, BODY, now=NOW + 10)
    with pytest.raises(Unauthorized, match="bad signature"):
        check(auth, headers, BODY.replace(b"c-1", b"c-2"), now=NOW)
    with pytest.raises(Unauthorized, match="bad signature"):
        check(auth, {**headers, "x-itsm-timestamp": str(NOW + 1)}, BODY, now=NOW)
    with pytest.raises(Unauthorized, match="bad signature"):
        check(auth, lower(signed_headers("other", BODY, "d-1", now=NOW)), BODY, now=NOW)


@pytest.mark.parametrize(("skew", "word"), [(301, "old"), (-301, "ahead")])
def test_a_signature_outside_the_replay_window_is_stale(skew, word):
    auth = SignedAuth(scheme="hmac", secret="s3cret")
    headers = lower(signed_headers("s3cret", BODY, "d-1", now=NOW))
    with pytest.raises(Unauthorized, match=f"stale signature: .* 301 s {word}"):
        check(auth, headers, BODY, now=NOW + skew)
    check(SignedAuth(scheme="hmac", secret="s3cret", replay_window_seconds=400), headers, BODY, now=NOW + skew)


def test_glpi_signs_body_then_timestamp():
    """GLPI's src/Webhook.php: hash_hmac('sha256', $body . $timestamp, $secret), in X-GLPI-signature."""
    auth = SignedAuth(scheme="glpi", secret="glpi-secret")
    signature = hmac.new(b"glpi-secret", BODY + str(NOW).encode(), hashlib.sha256).hexdigest()
    check(auth, {"x-glpi-signature": signature, "x-glpi-timestamp": str(NOW)}, BODY, now=NOW)
    with pytest.raises(Unauthorized, match="bad signature"):
        check(auth, {"x-glpi-signature": signature, "x-glpi-timestamp": str(NOW)}, BODY + b" ", now=NOW)
    with pytest.raises(Unauthorized, match="unsigned: send x-glpi-timestamp and x-glpi-signature"):
        check(auth, {}, BODY, now=NOW)
    with pytest.raises(Unauthorized, match="not Unix seconds"):
        check(auth, {"x-glpi-signature": signature, "x-glpi-timestamp": "yesterday"}, BODY, now=NOW)


def test_bearer_tokens_and_token_files(tmp_path: Path):
    secret_file = tmp_path / "token"
    secret_file.write_text("am-token\n")  # as `echo` and Kubernetes write them
    for auth in (BearerAuth(scheme="bearer", token="am-token"), BearerAuth(scheme="bearer", token_file=secret_file)):
        check(auth, {"authorization": "Bearer am-token"}, BODY)
        with pytest.raises(Unauthorized, match="wrong bearer token") as refused:
            check(auth, {"authorization": "Bearer am-tokem"}, BODY)
        assert "am-token" not in str(refused.value)
        with pytest.raises(Unauthorized, match="missing bearer token"):
            check(auth, {"authorization": "Basic YTpi"}, BODY)


def config(auth: str) -> str:
    return f"sources:\n  - {{name: bot, kind: webhook, mapping: webhook_chatbot, auth: {auth}}}\n"


@pytest.mark.parametrize(
    ("auth", "key", "words"),
    [
        ("{scheme: hmac}", "sources[0].auth", "exactly one of secret"),
        ("{scheme: bearer, token: a, token_file: b}", "sources[0].auth", "exactly one of token"),
        ("{scheme: basic, token: a}", "sources[0].auth", "scheme"),
        ("{scheme: hmac, secret: a, replay_window_seconds: 0}", "sources[0].auth", "greater than or equal to 1"),
    ],
)
def test_a_bad_auth_config_names_its_key(auth, key, words):
    with pytest.raises(ConfigError) as refused:
        parse_config(config(auth))
    assert refused.value.key is not None and refused.value.key.startswith(key), refused.value.key
    assert words in str(refused.value)


def test_a_secret_file_that_cannot_be_read_is_named(tmp_path: Path):
    hub = parse_config(config("{scheme: hmac, secret_file: missing.txt}"), base_dir=tmp_path)
    with pytest.raises(ValueError, match=r"secret_file: cannot read .*missing.txt"):
        hub.sources[0].auth.key()


def test_a_mapping_without_events_is_refused_for_a_webhook_source():
    from connectors.webhook.source import WebhookConnector

    hub = parse_config("sources:\n  - {name: bot, kind: webhook, mapping: csv, auth: {scheme: hmac, secret: a}}\n")
    with pytest.raises(ConfigError, match="has no events section") as refused:
        WebhookConnector(hub.sources[0])
    assert refused.value.key == "sources.bot.mapping"
