"""Settings: defaults, YAML file, environment and flags, in that order of precedence."""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest

from dynamo_gateway_server import config
from dynamo_gateway_server.config import Settings, SettingsError, load_settings

CONFIG_SOURCE = pathlib.Path(config.__file__).read_text()


def _write(tmp_path: pathlib.Path, text: str, name: str = "gateway.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- defaults


def test_defaults() -> None:
    settings = dataclasses.asdict(load_settings([], {}))
    expected = {
        "host": "127.0.0.1",
        "port": 50051,
        "backend": "memory",
        "region": "us-east-1",
        "endpoint_url": None,
        "tables_file": None,
        "max_concurrency": 64,
        "scan_concurrency": 8,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 10.0,
        "backend_max_attempts": 1,
        "grace_period_s": 10.0,
        "max_message_bytes": 32 * 1024 * 1024,
        "log_level": "INFO",
    }
    # Later settings (retries, breaker, observability) have tests of their own.
    assert {name: settings[name] for name in expected} == expected


def test_unrelated_environment_is_ignored() -> None:
    environ = {"PORT": "1", "GATEWAY_PORT": "2", "DYNAMO_GATEWAY": "x", "HOME": "/root"}
    assert load_settings([], environ) == Settings()


def test_settings_are_frozen() -> None:
    settings = load_settings([], {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]  # the point: Settings is frozen


# ---------------------------------------------------------------- each source


def test_flags() -> None:
    settings = load_settings(
        [
            "--host", "0.0.0.0", "--port", "6000", "--backend", "aws", "--endpoint-url", "http://x:8000",
            "--tables-file", "t.yaml", "--max-concurrency", "5", "--connect-timeout-s", "0.25",
            "--log-level", "DEBUG",
        ],
        {},
    )  # fmt: skip
    assert settings.host == "0.0.0.0"
    assert settings.port == 6000
    assert settings.backend == "aws"
    assert settings.endpoint_url == "http://x:8000"
    assert settings.tables_file == "t.yaml"
    assert settings.max_concurrency == 5
    assert settings.connect_timeout_s == 0.25
    assert settings.log_level == "DEBUG"
    assert settings.scan_concurrency == 8  # untouched


def test_environment() -> None:
    settings = load_settings(
        [],
        {
            "DYNAMO_GATEWAY_PORT": "7000",
            "DYNAMO_GATEWAY_READ_TIMEOUT_S": "3.5",
            "DYNAMO_GATEWAY_BACKEND_MAX_ATTEMPTS": "2",
            "DYNAMO_GATEWAY_ENDPOINT_URL": "http://localhost:4566",
        },
    )
    assert settings.port == 7000
    assert settings.read_timeout_s == 3.5
    assert settings.backend_max_attempts == 2
    assert settings.endpoint_url == "http://localhost:4566"


def test_empty_environment_value_clears_an_optional_string() -> None:
    settings = load_settings(["--endpoint-url", ""], {})
    assert settings.endpoint_url is None
    assert load_settings([], {"DYNAMO_GATEWAY_TABLES_FILE": ""}).tables_file is None


def test_yaml_file_via_flag(tmp_path: pathlib.Path) -> None:
    path = _write(
        tmp_path,
        "port: 6001\nbackend: aws\nregion: eu-central-1\ngrace_period_s: 2.5\n"
        "tables_file: examples/tables.yaml\nscan_concurrency: '4'\n",
    )
    settings = load_settings(["--config", path], {})
    assert settings.port == 6001
    assert settings.backend == "aws"
    assert settings.region == "eu-central-1"
    assert settings.grace_period_s == 2.5
    assert settings.tables_file == "examples/tables.yaml"
    assert settings.scan_concurrency == 4
    assert settings.host == "127.0.0.1"


def test_yaml_file_via_environment(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "max_message_bytes: 1024\n")
    settings = load_settings([], {"DYNAMO_GATEWAY_CONFIG": path})
    assert settings.max_message_bytes == 1024


def test_config_flag_beats_config_environment(tmp_path: pathlib.Path) -> None:
    flag_file = _write(tmp_path, "port: 1111\n", "flag.yaml")
    env_file = _write(tmp_path, "port: 2222\n", "env.yaml")
    assert load_settings(["--config", flag_file], {"DYNAMO_GATEWAY_CONFIG": env_file}).port == 1111


def test_empty_yaml_file_means_defaults(tmp_path: pathlib.Path) -> None:
    assert load_settings(["--config", _write(tmp_path, "")], {}) == Settings()
    assert load_settings(["--config", _write(tmp_path, "# nothing\n", "c.yaml")], {}) == Settings()


# ---------------------------------------------------------------- precedence


@pytest.mark.parametrize(
    ("use_file", "use_env", "use_flag", "expected"),
    [
        (False, False, False, 50051),
        (True, False, False, 1001),
        (True, True, False, 1002),
        (False, True, False, 1002),
        (True, True, True, 1003),
        (True, False, True, 1003),
        (False, True, True, 1003),
    ],
)
def test_precedence_flags_env_file_defaults(
    tmp_path: pathlib.Path, use_file: bool, use_env: bool, use_flag: bool, expected: int
) -> None:
    argv: list[str] = []
    environ: dict[str, str] = {}
    if use_file:
        argv += ["--config", _write(tmp_path, "port: 1001\nlog_level: WARNING\n")]
    if use_env:
        environ["DYNAMO_GATEWAY_PORT"] = "1002"
    if use_flag:
        argv += ["--port", "1003"]
    settings = load_settings(argv, environ)
    assert settings.port == expected
    assert settings.log_level == ("WARNING" if use_file else "INFO")


def test_precedence_is_per_setting(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "host: file-host\nport: 1\nlog_level: ERROR\n")
    settings = load_settings(
        ["--config", path, "--host", "flag-host"],
        {"DYNAMO_GATEWAY_PORT": "2", "DYNAMO_GATEWAY_HOST": "env-host"},
    )
    assert (settings.host, settings.port, settings.log_level) == ("flag-host", 2, "ERROR")


# ---------------------------------------------------------------- AWS region fallback


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),
        ({"AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
        ({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "ap-south-1"}, "eu-west-1"),
        ({"AWS_REGION": "eu-west-1", "DYNAMO_GATEWAY_REGION": "us-west-2"}, "us-west-2"),
        ({"AWS_REGION": ""}, "us-east-1"),
    ],
)
def test_aws_region_fallback(environ: dict[str, str], expected: str) -> None:
    assert load_settings([], environ).region == expected


def test_region_flag_and_file_beat_aws_region(tmp_path: pathlib.Path) -> None:
    environ = {"AWS_REGION": "eu-west-1"}
    assert load_settings(["--region", "sa-east-1"], environ).region == "sa-east-1"
    path = _write(tmp_path, "region: ca-central-1\n")
    assert load_settings(["--config", path], environ).region == "ca-central-1"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("argv", "environ", "setting", "source"),
    [
        ([], {"DYNAMO_GATEWAY_PORT": "abc"}, "port", "DYNAMO_GATEWAY_PORT"),
        (["--max-concurrency", "lots"], {}, "max_concurrency", "--max-concurrency"),
        (["--port", "80.5"], {}, "port", "--port"),
        ([], {"DYNAMO_GATEWAY_GRACE_PERIOD_S": "soon"}, "grace_period_s", "DYNAMO_GATEWAY_GRACE_PERIOD_S"),
        (["--read-timeout-s", "1s"], {}, "read_timeout_s", "--read-timeout-s"),
    ],
)
def test_bad_number_names_setting_and_source(
    argv: list[str], environ: dict[str, str], setting: str, source: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(argv, environ)
    message = str(caught.value)
    assert setting in message
    assert source in message


def test_bad_number_in_file_names_the_file(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "scan_concurrency: many\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(["--config", path], {})
    assert "scan_concurrency" in str(caught.value)
    assert path in str(caught.value)
    assert "'many'" in str(caught.value)


@pytest.mark.parametrize("text", ["port: 8080.7\n", "max_concurrency: true\n"], ids=["float", "bool"])
def test_non_integer_yaml_value_for_int_setting_rejected(tmp_path: pathlib.Path, text: str) -> None:
    with pytest.raises(SettingsError):
        load_settings(["--config", _write(tmp_path, text)], {})


def test_unknown_key_in_file(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "port: 1\nprot: 2\nzzz: 3\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(["--config", path], {})
    assert "prot" in str(caught.value)
    assert "zzz" in str(caught.value)
    assert path in str(caught.value)


@pytest.mark.parametrize("text", ["- port\n- 1\n", "just a string\n", "42\n"])
def test_file_that_is_not_a_mapping(tmp_path: pathlib.Path, text: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(SettingsError, match="mapping"):
        load_settings(["--config", path], {})


def test_file_that_is_not_yaml(tmp_path: pathlib.Path) -> None:
    path = _write(tmp_path, "port: [1, 2\n")
    with pytest.raises(SettingsError) as caught:
        load_settings(["--config", path], {})
    assert path in str(caught.value)


def test_missing_file(tmp_path: pathlib.Path) -> None:
    path = str(tmp_path / "absent.yaml")
    with pytest.raises(SettingsError) as caught:
        load_settings([], {"DYNAMO_GATEWAY_CONFIG": path})
    assert path in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "environ", "file_text"),
    [
        (["--backend", "dynamo"], {}, None),
        ([], {"DYNAMO_GATEWAY_BACKEND": "AWS"}, None),
        ([], {}, "backend: local\n"),
    ],
)
def test_backend_must_be_memory_or_aws(
    tmp_path: pathlib.Path, argv: list[str], environ: dict[str, str], file_text: str | None
) -> None:
    if file_text is not None:
        argv = [*argv, "--config", _write(tmp_path, file_text)]
    with pytest.raises(SettingsError, match="backend must be one of memory, aws"):
        load_settings(argv, environ)


def test_range_and_choice_errors_name_their_source() -> None:
    with pytest.raises(SettingsError, match="DYNAMO_GATEWAY_BACKEND"):
        load_settings([], {"DYNAMO_GATEWAY_BACKEND": "dynamo"})


@pytest.mark.parametrize(
    ("argv", "setting"),
    [
        (["--port", "65536"], "port"),
        (["--port", "-1"], "port"),
        (["--max-concurrency", "0"], "max_concurrency"),
        (["--scan-concurrency", "0"], "scan_concurrency"),
        (["--backend-max-attempts", "0"], "backend_max_attempts"),
        (["--max-message-bytes", "-5"], "max_message_bytes"),
    ],
)
def test_out_of_range_values(argv: list[str], setting: str) -> None:
    with pytest.raises(SettingsError, match=setting):
        load_settings(argv, {})


def test_range_edges_accepted() -> None:
    settings = load_settings(["--port", "0", "--max-concurrency", "1", "--backend-max-attempts", "1"], {})
    assert (settings.port, settings.max_concurrency, settings.backend_max_attempts) == (0, 1, 1)
    assert load_settings(["--port", "65535"], {}).port == 65535


def test_unknown_flag_exits() -> None:
    with pytest.raises(SystemExit) as caught:
        load_settings(["--prot", "1"], {})
    assert caught.value.code == 2


# ---------------------------------------------------------------- --help


def _docstrings_from_source() -> dict[str, str]:
    """Each field's docstring, read straight from config.py's text (independently of config._field_docs)."""
    docs = {}
    for name in (f.name for f in dataclasses.fields(Settings)):
        match = re.search(rf'^    {name}: [^\n]+\n    """(.+?)"""', CONFIG_SOURCE, re.MULTILINE | re.DOTALL)
        assert match, f"no docstring under {name}"
        docs[name] = match.group(1)
    return docs


def test_help_shows_every_field_docstring_flag_and_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit) as caught:
        load_settings(["--help"], {})
    assert caught.value.code == 0
    out = capsys.readouterr().out
    squashed = "".join(out.split())  # argparse re-wraps text (even at hyphens)
    docs = _docstrings_from_source()
    assert len(docs) == len(dataclasses.fields(Settings))
    for field in dataclasses.fields(Settings):
        assert "".join(docs[field.name].split()) in squashed, field.name
        assert f"--{field.name.replace('_', '-')}" in out
        assert f"(default:{field.default})" in squashed, field.name
    assert "--config" in out
    assert "DYNAMO_GATEWAY_PORT" in out


def test_empty_value_for_a_required_string_is_rejected() -> None:
    with pytest.raises(SettingsError, match="DYNAMO_GATEWAY_HOST"):
        load_settings([], {"DYNAMO_GATEWAY_HOST": ""})


def test_empty_value_clears_an_optional_string() -> None:
    settings = load_settings(["--endpoint-url", "http://x"], {})
    assert settings.endpoint_url == "http://x"
    assert load_settings([], {"DYNAMO_GATEWAY_ENDPOINT_URL": ""}).endpoint_url is None
