import re
from pathlib import Path

import pytest

from connectors.mail.config import MaildirSource
from itsm_core.config import load_config, parse_config
from itsm_core.errors import ConfigError

GOOD = """
database_url: postgresql+psycopg://itsm:${ITSM_TEST_PW}@db.example:5432/itsm
sources:
  - name: helpdesk-drop
    kind: maildir
    path: inbox
    page_size: 50
rules:
  priority:
    matrix: [[1, 2], [2, 3]]
    default_impact: 2
    default_urgency: 2
reports: {}
"""


def test_a_full_config_loads_with_secrets_resolved(monkeypatch, tmp_path):
    monkeypatch.setenv("ITSM_TEST_PW", "s3cr3t-pw")
    path = tmp_path / "itsm.yaml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.database_url.get_secret_value() == "postgresql+psycopg://itsm:s3cr3t-pw@db.example:5432/itsm"
    assert "s3cr3t-pw" not in repr(config) and "s3cr3t-pw" not in str(config.model_dump())
    (source,) = config.sources
    assert isinstance(source, MaildirSource)
    assert source.path == tmp_path / "inbox"  # relative to the config file, not the working directory
    assert source.page_size == 50
    assert config.rules.priority.priority(2, 2) == 3


def test_empty_file_gives_the_documented_defaults(tmp_path):
    (tmp_path / "itsm.yaml").write_text("")
    config = load_config(tmp_path / "itsm.yaml")
    assert config.database_url.get_secret_value() == f"sqlite:///{tmp_path / 'itsm.db'}"
    assert config.sources == []


def test_config_path_falls_back_to_env_then_cwd(monkeypatch, tmp_path):
    (tmp_path / "from-env.yaml").write_text("sources: []")
    monkeypatch.setenv("ITSM_CONFIG", str(tmp_path / "from-env.yaml"))
    assert load_config().sources == []
    monkeypatch.delenv("ITSM_CONFIG")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"itsm\.yaml not found"):
        load_config()


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("databse_url: sqlite:///x.db", "databse_url", "unknown key"),
        ("sources: [{name: a, kind: maildir, pathh: x}]", "sources[0].pathh", "unknown key"),
        ("sources: [{name: a, kind: pop3, path: x}]", "sources[0].kind", "unknown source kind"),
        ("sources: [{name: a, path: x}]", "sources[0].kind", "missing"),
        ("sources: [{name: a, kind: maildir, path: x, page_size: 0}]", "sources[0].page_size", "greater than"),
        ("sources: [{name: Bad Name, kind: maildir, path: x}]", "sources[0].name", "pattern"),
        (
            "sources: [{name: g, kind: glpi, url: 'https://glpi.example/apirest.php', user_token: t, "
            "max_document_bytes: 0}]",
            "sources[0].max_document_bytes",
            "greater than or equal to 1",
        ),
        ("rules: {priority: {matrix: [[1, 2], [3]]}}", "rules.priority", "same number"),
        ("reports: {daily: yes}", "reports.daily", "unknown key"),
        ("sources: [{name: a, kind: maildir, path: x}, {name: a, kind: maildir, path: y}]", "sources", "unique"),
        ("sources: [{name: a, kind: maildir, path: x, after_import: move}]", "sources[0]", "move_to"),
        (
            "reports: {definitions: [{name: r, mail_to: [boss@example.org]}]}",
            "reports.definitions[0].mail_to",
            "report 'r' mails its files through email.smtp; configure it",
        ),
        (
            "reports: {definitions: [{name: r, mail_to: [boss]}]}",
            "reports.definitions[0].mail_to",
            "'boss' is not an e-mail address",
        ),
        (
            "reports: {definitions: [{name: r, mail_subject: 'Report {{ nme }}'}]}",
            "reports.definitions[0].mail_subject",
            "not a usable jinja2 template: 'nme' is undefined",
        ),
    ],
)
def test_invalid_configs_name_the_key(text, key, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, origin="itsm.yaml")
    assert caught.value.key == key
    assert str(caught.value).startswith(f"itsm.yaml: {key}")
    assert fragment in str(caught.value)


def test_invalid_yaml_names_the_line():
    with pytest.raises(ConfigError, match="line 2"):
        parse_config("sources: []\n\tdatabase_url: x\n", origin="itsm.yaml")


def test_missing_variable_is_named_without_leaking_other_values(monkeypatch):
    monkeypatch.setenv("OTHER_SECRET", "do-not-show")
    with pytest.raises(ConfigError) as caught:
        parse_config("database_url: postgresql://u:${MISSING_PW}@h/${OTHER_SECRET}")
    assert caught.value.key == "database_url"
    assert "MISSING_PW is not set" in str(caught.value)
    assert "do-not-show" not in str(caught.value)


def test_a_bad_value_error_never_echoes_the_secret(monkeypatch):
    monkeypatch.setenv("LEAKY", "hunter2-secret")
    with pytest.raises(ConfigError) as caught:
        parse_config("sources: [{name: a, kind: maildir, path: x, page_size: '${LEAKY}'}]")
    assert caught.value.key == "sources[0].page_size"
    assert "hunter2" not in str(caught.value)


def test_prefect_secret_references_use_the_resolver():
    resolved = parse_config(
        "database_url: postgresql://u:${prefect:db-password}@h/db", secret_resolver=lambda name: f"pw-for-{name}"
    )
    assert resolved.database_url.get_secret_value() == "postgresql://u:pw-for-db-password@h/db"

    def broken(name: str) -> str:
        raise RuntimeError("connection refused to http://user:token@prefect")

    with pytest.raises(ConfigError) as caught:
        parse_config("database_url: ${prefect:db-password}", secret_resolver=broken)
    assert "db-password" in str(caught.value) and "token" not in str(caught.value)


def test_example_configs_in_the_repository_are_valid(monkeypatch):
    monkeypatch.setenv("ITSM_DB_PASSWORD", "x")
    examples = sorted(Path(__file__).resolve().parents[2].glob("*.example.yaml"))
    for example in examples:
        load_config(example)


def test_the_readme_config_example_is_valid(monkeypatch):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    example = readme.split("## Configure", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    for name in set(re.findall(r"\$\{([A-Z_]+)\}", example)):
        monkeypatch.setenv(name, "x")
    config = parse_config(example, base_dir=Path("/tmp"))
    from connectors.registry import registered_kinds

    assert {source.kind for source in config.sources} == set(registered_kinds())  # the README shows every kind


def test_glpi_without_certificate_checks_is_accepted_with_a_warning(caplog):
    glpi = "{name: g, kind: glpi, url: 'https://glpi.example/apirest.php', user_token: t, verify_tls: false}"
    text = f"sources:\n  - {glpi}\n"
    with caplog.at_level("WARNING", logger="itsm.config"):
        assert parse_config(text).sources[0].verify_tls is False
    assert "verify_tls is false" in caplog.text


def test_a_database_url_error_never_echoes_the_url(monkeypatch):
    monkeypatch.setenv("DB_URL", "notadb://user:hunter2@db/itsm")
    with pytest.raises(ConfigError) as error:
        parse_config("database_url: ${DB_URL}\n")
    assert "database_url" in str(error.value) and "hunter2" not in str(error.value)


def test_secret_values_are_every_secret_long_enough_to_scrub(monkeypatch):
    from itsm_core.config import secret_values

    monkeypatch.setenv("DB_PW", "db-password-123")
    text = (
        "database_url: postgresql://itsm:${DB_PW}@db/itsm\n"
        "sources:\n  - {name: g, kind: glpi, url: 'https://glpi.example/apirest.php', user_token: tok-9f8e7d, "
        "app_token: pw}\n"
    )
    assert secret_values(parse_config(text)) >= {"db-password-123", "tok-9f8e7d"}
    assert "pw" not in secret_values(parse_config(text))  # too short to scrub without garbling text
