"""Settings: one frozen dataclass, loaded in one place from flags, environment and an optional file.

Precedence, highest first: command-line flags, DYNAMO_GATEWAY_* environment
variables, the YAML file named by --config (or DYNAMO_GATEWAY_CONFIG), defaults.
Must not import gRPC or the backends.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import itertools
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

ENV_PREFIX = "DYNAMO_GATEWAY_"
BACKENDS = ("memory", "aws")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting and where it came from."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    """Address to listen on; 0.0.0.0 for every interface (as in a container)."""
    port: int = 50051
    """gRPC port; 0 picks a free one."""
    backend: str = "memory"
    """memory: an embedded DynamoDB-compatible engine (no AWS account); aws: DynamoDB or endpoint_url."""
    region: str = "us-east-1"
    """AWS region of the DynamoDB tables."""
    endpoint_url: str | None = None
    """aws backend only: a DynamoDB-compatible endpoint (local emulator) instead of AWS."""
    tables_file: str | None = None
    """YAML file of tables to create at startup if absent (see examples/tables.yaml)."""
    max_concurrency: int = 64
    """DynamoDB calls in flight at once; sizes the HTTP connection pool too."""
    scan_concurrency: int = 8
    """Segments one ParallelScan scans at once."""
    connect_timeout_s: float = 2.0
    """Seconds to open a connection to DynamoDB."""
    read_timeout_s: float = 10.0
    """Seconds to wait for DynamoDB's answer on an open connection."""
    backend_max_attempts: int = 3
    """Attempts the AWS SDK makes per DynamoDB call (1 disables its retries)."""
    grace_period_s: float = 10.0
    """On SIGTERM/SIGINT, seconds in-flight RPCs get to finish."""
    max_message_bytes: int = 32 * 1024 * 1024
    """Largest gRPC message sent or received; batch responses reach 16 MB."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise SettingsError(
                f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}", "backend"
            )
        for name in ("max_concurrency", "scan_concurrency", "backend_max_attempts", "max_message_bytes"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1", name)
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port {self.port} is out of range", "port")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _convert(name: str, raw: Any, source: str) -> Any:
    kind = _FIELDS[name].type
    # A YAML file hands over typed values: 8080.7 or true must not pass as an int.
    wrong_yaml_type = isinstance(raw, bool) or (kind == "int" and isinstance(raw, float))
    try:
        if wrong_yaml_type:
            raise ValueError
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if raw in (None, "") and "None" in kind:
            return None
        if not isinstance(raw, str | int | float) or raw == "":
            raise ValueError
        return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} from {source}: {raw!r} is not a valid {kind}", name) from None


def _from_file(path: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(pathlib.Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"config file {path}: {error}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"config file {path}: expected a mapping of settings")
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise SettingsError(f"config file {path}: unknown settings {unknown}")
    return {name: _convert(name, value, path) for name, value in document.items()}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamo-gateway",
        description="A gRPC gateway in front of DynamoDB.",
        epilog=f"Every flag also reads from {ENV_PREFIX}<NAME> (e.g. {ENV_PREFIX}PORT).",
    )
    parser.add_argument("--config", help="YAML file of settings")
    for name in _FIELDS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=_doc(name))
    return parser


def _doc(name: str) -> str:
    docs = _field_docs()
    default = _FIELDS[name].default
    return f"{docs.get(name, '')} (default: {default})"


@functools.cache
def _field_docs() -> dict[str, str]:
    """Reads the docstring under each field, so --help and the code say the same thing."""

    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for previous, node in itertools.pairwise(body):
        if isinstance(previous, ast.AnnAssign) and isinstance(node, ast.Expr):
            docs[previous.target.id] = node.value.value  # type: ignore[union-attr]
    return docs


def load_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    args = _parser().parse_args(list(argv))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_file = args.config or environ.get(f"{ENV_PREFIX}CONFIG")
    if config_file:
        values.update(_from_file(config_file))
        sources.update(dict.fromkeys(values, f"config file {config_file}"))
    if "region" not in values and (
        aws_region := environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    ):
        values["region"] = aws_region
        sources["region"] = "AWS_REGION"
    for name in _FIELDS:
        env_name = f"{ENV_PREFIX}{name.upper()}"
        if env_name in environ:
            values[name] = _convert(name, environ[env_name], env_name)
            sources[name] = env_name
    for name in _FIELDS:
        flag_value = getattr(args, name)
        if flag_value is not None:
            flag = f"--{name.replace('_', '-')}"
            values[name] = _convert(name, flag_value, flag)
            sources[name] = flag
    try:
        return Settings(**values)
    except SettingsError as error:
        source = sources.get(error.setting or "", "the defaults")
        raise SettingsError(f"{error} (from {source})", error.setting) from None
