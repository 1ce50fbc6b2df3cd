from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from broker.cli import build_parser, main
from broker.config import Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("WSBROKER_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broker.toml"
    path.write_text(text)
    return path


def test_defaults_serve_on_localhost_8080() -> None:
    settings = load_settings()
    assert (settings.host, settings.port, settings.scheme) == ("127.0.0.1", 8080, "ws")
    assert settings.default_realm == "realm1"


def test_precedence_flags_over_env_over_file_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write(tmp_path, 'port = 7000\nlog_level = "debug"\nhost = "0.0.0.0"\n')
    assert load_settings(config).port == 7000
    monkeypatch.setenv("WSBROKER_PORT", "7001")
    monkeypatch.setenv("WSBROKER_LOG_LEVEL", "error")
    settings = load_settings(config, port=7002)
    assert settings.port == 7002
    assert settings.log_level == "error"
    assert settings.host == "0.0.0.0"
    assert settings.max_message_size == Settings.model_fields["max_message_size"].default


def test_unknown_file_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="prot"):
        load_settings(write(tmp_path, "prot = 1\n"))


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        ({"port": "99999"}, "port"),
        ({"log_level": "loud"}, "log_level"),
        ({"max_message_size": "10"}, "max_message_size"),
        ({"default_realm": "nope"}, "default_realm"),
        ({"tls_cert": "cert.pem"}, "tls_key"),
    ],
)
def test_invalid_values_name_the_field(flags: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        load_settings(**flags)


def test_cli_reports_invalid_value_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--port", "http"]) == 2
    err = capsys.readouterr().err
    assert "invalid setting port" in err


def test_cli_reports_bad_env_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WSBROKER_HANDSHAKE_TIMEOUT", "-1")
    assert main(["serve"]) == 2
    assert "handshake_timeout" in capsys.readouterr().err


def test_help_documents_every_setting() -> None:
    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    text = serve.format_help()
    for name, field in Settings.model_fields.items():
        assert "--" + name.replace("_", "-") in text
        assert f"WSBROKER_{name.upper()}" in text.replace("\n", " ").replace("  ", "")
        assert field.description


def test_flags_parse_lists_and_booleans() -> None:
    args = build_parser().parse_args(["serve", "--realms", "a, b", "--no-compression"])
    assert args.realms == ["a", "b"]
    assert args.compression is False
