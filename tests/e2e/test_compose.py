"""compose.yaml: its structure, and its services' commands run here as the containers run them.

Docker does not run where the tests run, so the compose file is proven another way: each
service's command and environment, exactly as compose hands them to its container (the image's
ENV, then the service's `environment`), run as local processes. Only where things are changes:

- hosts and ports: `dynamodb:8000` becomes the local dynalite's loopback address, 0.0.0.0
  becomes 127.0.0.1, and every port a service listens on becomes 0 (a free one, read back from
  the process), so the test needs none of 8000, 50051 and 9464;
- programs: the image's `dynamo-gateway` and `python` are the venv's; `dynalite` is
  tools/node_modules' through tests/support/dynalite_launcher.js, which takes dynalite's own
  flags and reports the port it bound;
- files: a config's target path is a local file holding the config's content;
- the host's DYNAMO_GATEWAY_* and AWS_* variables are left out (a container has none of them),
  and logging is JSON at INFO (LOGGED_PORT_ENV) so that the gateway's port can be read back.

No compose-spec JSON schema is available offline, so the structure is checked field by field.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import aiohttp
import pytest
import yaml

from dynamo_gateway import GatewayClient
from dynamo_gateway_server.config import ENV_PREFIX, Settings, load_settings
from dynamo_gateway_server.tables import load_tables_file
from tests.e2e.test_readme import _spawn, _stop
from tests.support import emulators
from tests.support.emulators import DYNALITE_LAUNCHER, DynaliteProcess, dynalite_args
from tests.support.ports import LOGGED_PORT_ENV, logged_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = pathlib.Path(sys.executable).with_name("hadolint")
GATEWAY_START_TIMEOUT_S = 30.0
# The programs the containers run, and what runs them here.
LOCAL_PROGRAMS = {
    "dynamo-gateway": [str(pathlib.Path(sys.executable).with_name("dynamo-gateway"))],
    "python": [sys.executable],
    "dynalite": ["node", str(DYNALITE_LAUNCHER)],
    "node": ["node"],
}
# Flags and variables naming a port a service listens on: 0 here, so each binds a free one.
PORT_FLAGS = ("--port", "--metrics-port")
PORT_VARIABLES = (f"{ENV_PREFIX}PORT", f"{ENV_PREFIX}METRICS_PORT")
EVERY_INTERFACE, LOOPBACK = "0.0.0.0", "127.0.0.1"
EMULATOR = "dynamodb"  # the emulator's service name, which is its host name for the gateway


# ------------------------------------------------------------------ reading the files


def _image_instructions() -> dict[str, list[str]]:
    """The Dockerfile's last stage (the image compose runs): instruction -> its arguments."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())  # one line per instruction
    lines = [line for line in map(str.strip, text.splitlines()) if line and not line.startswith("#")]
    last_stage = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    instructions: dict[str, list[str]] = {}
    for line in lines[last_stage:]:
        keyword, _, arguments = line.partition(" ")
        instructions.setdefault(keyword.upper(), []).append(arguments)
    return instructions


def _image_entrypoint() -> list[str]:
    (entrypoint,) = _image_instructions()["ENTRYPOINT"]
    return list(json.loads(entrypoint))


def _image_healthcheck() -> list[str]:
    (healthcheck,) = _image_instructions()["HEALTHCHECK"]
    return list(json.loads(healthcheck.split(" CMD ", 1)[1]))


def _image_env() -> dict[str, str]:
    """The image's ENV, less what refers to the image's own layout (PATH=/opt/venv/bin:$PATH)."""
    pairs = (word.partition("=") for env in _image_instructions()["ENV"] for word in shlex.split(env))
    return {name: value for name, _, value in pairs if "$" not in value}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "compose.yaml is not a mapping"
    return document


def _argv(command: str | Sequence[Any]) -> list[str]:
    """A compose command (or healthcheck test, less CMD) as the argv the container gets."""
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def _environment(service: Mapping[str, Any]) -> dict[str, str]:
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) for item in declared)
    return {name: str(value) for name, value in declared.items() if value is not None}


def _container_env(service: Mapping[str, Any]) -> dict[str, str]:
    """What the gateway's container sees: the image's ENV, overridden by the service's."""
    return {**_image_env(), **_environment(service)}


def _published(service: Mapping[str, Any]) -> dict[int, str]:
    """Container port -> the host address it is published on."""
    published = {}
    for spec in service.get("ports", []):
        parts = str(spec).split("/")[0].split(":")
        published[int(parts[-1])] = parts[0] if len(parts) == 3 else EVERY_INTERFACE
    return published


def _flag(argv: Sequence[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _without_address(flags: Sequence[str]) -> list[str]:
    """dynalite's flags less --host and --port (which differ between a container and a test)."""
    kept = list(flags)
    for flag in ("--host", "--port"):
        if flag in kept:
            del kept[kept.index(flag) : kept.index(flag) + 2]
    return kept


def _seconds(duration: str) -> float:
    """A compose duration ("15s", "1m30s") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * units[unit] for n, unit in re.findall(r"([\d.]+)(ms|s|m|h)", duration))


def _compose_settings(compose: Mapping[str, Any]) -> Settings:
    """The gateway's settings as its container loads them."""
    gateway = compose["services"]["gateway"]
    return load_settings(_argv(gateway["command"]), _container_env(gateway))


# ------------------------------------------------------------------ running them here


def _replaced(text: str, places: Mapping[str, str]) -> str:
    for container_place, local_place in places.items():
        text = text.replace(container_place, local_place)
    return text


def _localized(argv: Sequence[str], places: Mapping[str, str]) -> list[str]:
    """A container's argv with its places (hosts, files) swapped for local ones, its listening
    ports 0, and its program the local one."""
    local: list[str] = []
    for previous, word in zip(["", *argv], [_replaced(word, places) for word in argv], strict=False):
        flag, equals, _ = word.partition("=")
        if previous in PORT_FLAGS:
            word = "0"
        elif equals and flag in PORT_FLAGS:
            word = f"{flag}=0"
        local.append(word)
    program, *arguments = local
    return [*LOCAL_PROGRAMS.get(program, [program]), *arguments]


def _local_env(container_env: Mapping[str, str], places: Mapping[str, str]) -> dict[str, str]:
    host = {k: v for k, v in os.environ.items() if not k.startswith((ENV_PREFIX, "AWS_"))}
    env = {name: _replaced(value, places) for name, value in container_env.items()}
    env.update((name, "0") for name in PORT_VARIABLES if name in env)
    return {**host, **env, **LOGGED_PORT_ENV}


def _gateway_places(
    compose: Mapping[str, Any], dynalite: DynaliteProcess, tmp_path: pathlib.Path
) -> dict[str, str]:
    """Where the gateway container's hosts and files are on this machine."""
    emulator_port = _flag(_argv(compose["services"][EMULATOR]["command"]), "--port")
    places = {f"{EMULATOR}:{emulator_port}": f"{LOOPBACK}:{dynalite.port}", EVERY_INTERFACE: LOOPBACK}
    for config in compose["services"]["gateway"].get("configs", []):
        declared = compose["configs"][config["source"]]
        if "content" in declared:
            local = tmp_path / config["source"]
            local.write_text(declared["content"])
        else:
            local = ROOT / declared["file"]
        places[config["target"]] = str(local)
    return places


def _gateway_command(command: Sequence[str], places: Mapping[str, str]) -> list[str]:
    """The image's entry point and the gateway service's command, localized."""
    return _localized([*_image_entrypoint(), *command], places)


@pytest.fixture(scope="module")
async def compose_dynalite(compose: dict[str, Any]) -> AsyncIterator[DynaliteProcess]:
    """The dynamodb service's command, run with tools/node_modules' dynalite."""
    command = _localized(_argv(compose["services"]["dynamodb"]["command"]), {EVERY_INTERFACE: LOOPBACK})
    dynalite = DynaliteProcess()
    # DynaliteProcess runs the command dynalite_args gives it (and reads back the port): here, compose's.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(emulators, "dynalite_args", lambda port=0: command)
        await dynalite.start()
    yield dynalite
    await dynalite.stop()


async def _run(argv: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


# ------------------------------------------------------------------ the structure


def test_the_gateway_service_runs_the_image_against_the_emulator(
    compose: dict[str, Any], tmp_path: pathlib.Path
) -> None:
    services = compose["services"]
    assert set(services) == {"gateway", EMULATOR}
    gateway = services["gateway"]
    assert gateway["build"] == {"context": ".", "dockerfile": "Dockerfile"}
    # No entrypoint of its own: the image's, which the local run uses too.
    assert "entrypoint" not in gateway and _image_entrypoint() == ["dynamo-gateway"]

    settings = _compose_settings(compose)
    assert settings.backend == "aws" and settings.host == EVERY_INTERFACE
    endpoint = urllib.parse.urlsplit(settings.endpoint_url or "")
    assert endpoint.hostname == EMULATOR, "the endpoint must be the emulator's service name"
    assert str(endpoint.port) == _flag(_argv(services[EMULATOR]["command"]), "--port")

    # The tables file is a config, and a valid tables file.
    (tables,) = [config for config in gateway["configs"] if config["target"] == settings.tables_file]
    local_tables = tmp_path / "tables.yaml"
    local_tables.write_text(compose["configs"][tables["source"]]["content"])
    assert [table.name for table in load_tables_file(local_tables)] == ["app"]

    # Published: the ports the gateway listens on in its container, on the host's loopback only.
    assert _published(gateway) == {settings.port: LOOPBACK, settings.metrics_port: LOOPBACK}
    assert (settings.port, settings.metrics_port) == (50051, 9464)

    # Dummy credentials for the emulator, never real ones.
    environment = _environment(gateway)
    assert environment["AWS_ACCESS_KEY_ID"] == environment["AWS_SECRET_ACCESS_KEY"] == "dummy"

    assert gateway["healthcheck"]["test"] == ["CMD", *_image_healthcheck()]
    # The gateway creates its tables at startup: the emulator must answer by then.
    assert gateway["depends_on"][EMULATOR]["condition"] == "service_healthy"
    # Docker's SIGKILL must come after the gateway's own graceful stop.
    graceful_stop_s = settings.shutdown_delay_s + settings.grace_period_s
    assert _seconds(gateway["stop_grace_period"]) > graceful_stop_s


def test_the_emulator_service_is_the_tests_dynalite(compose: dict[str, Any]) -> None:
    emulator = compose["services"][EMULATOR]
    command = _argv(emulator["command"])
    assert "entrypoint" not in emulator and command[0] == "dynalite"
    # The flags tests/support/emulators.py gives dynalite, but for where it listens.
    assert _without_address(command[1:]) == _without_address(dynalite_args()[2:])
    assert _published(emulator) == {int(_flag(command, "--port")): LOOPBACK}
    assert emulator["healthcheck"]["test"][0] == "CMD"
    # The version the tests run: installed from the repo's lock file, as scripts/bootstrap.sh does.
    image = emulator["build"]["dockerfile_inline"]
    assert "COPY tools/package.json tools/package-lock.json" in image and "npm ci" in image


def test_the_emulator_image_passes_hadolint(compose: dict[str, Any]) -> None:
    """`make lint` lints the Dockerfile; the emulator's, written inline, gets the same check."""
    image = compose["services"][EMULATOR]["build"]["dockerfile_inline"]
    lint = subprocess.run([str(HADOLINT), "-"], input=image, capture_output=True, text=True, timeout=30)
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_no_image_names_a_registry(compose: dict[str, Any]) -> None:
    """Images come from the default registry: none is named by a host (name.tld/..., host:port/...)."""
    images = []
    for service in compose["services"].values():
        images += [service["image"]] if "image" in service else []
        inline = service["build"].get("dockerfile_inline", "") if isinstance(service["build"], dict) else ""
        images += [line.split()[1] for line in inline.splitlines() if line.upper().startswith("FROM ")]
    assert images
    for image in images:
        first, slash, _ = image.partition("/")
        assert not (slash and ("." in first or ":" in first or first == "localhost")), image


# ------------------------------------------------------------------ the commands, run here


async def test_the_emulator_healthcheck_tells_listening_from_not(
    compose: dict[str, Any], compose_dynalite: DynaliteProcess
) -> None:
    emulator = compose["services"][EMULATOR]
    container_port = _flag(_argv(emulator["command"]), "--port")
    healthcheck = _argv(emulator["healthcheck"]["test"][1:])
    code, output = await _run(_localized(healthcheck, {container_port: str(compose_dynalite.port)}))
    assert code == 0, output
    # A bound port that nobody listens on: connections to it are refused.
    with socket.socket() as closed:
        closed.bind((LOOPBACK, 0))
        code, _ = await _run(_localized(healthcheck, {container_port: str(closed.getsockname()[1])}))
    assert code != 0


async def test_the_compose_commands_serve_dynamodb_through_the_gateway(
    compose: dict[str, Any], compose_dynalite: DynaliteProcess, tmp_path: pathlib.Path
) -> None:
    gateway = compose["services"]["gateway"]
    places = _gateway_places(compose, compose_dynalite, tmp_path)
    command = _gateway_command(_argv(gateway["command"]), places)
    env = _local_env(_container_env(gateway), places)
    # Only places changed: the local run talks to the local dynalite, with the config's tables.
    local_settings = load_settings(command[1:], env)
    assert local_settings.endpoint_url == compose_dynalite.endpoint_url
    assert local_settings.tables_file
    (table,) = load_tables_file(local_settings.tables_file)
    assert table.sort_key

    log = tmp_path / "gateway.log"
    process = _spawn(command, log, env)
    try:
        port = await asyncio.to_thread(logged_port, process, log, GATEWAY_START_TIMEOUT_S)
        # The container's health check; in the container DYNAMO_GATEWAY_PORT is where it serves.
        healthcheck = _localized(_argv(gateway["healthcheck"]["test"][1:]), places)
        code, output = await _run(healthcheck, {**env, f"{ENV_PREFIX}PORT": str(port)})
        assert (code, output.strip()) == (0, "SERVING"), output

        key = {table.partition_key: "user#1", table.sort_key: "profile"}
        async with GatewayClient.connect(f"{LOOPBACK}:{port}", timeout_s=20) as client:
            await client.put_item(table.name, {**key, "name": "Ada"})
            item = await client.get_item(table.name, key, consistent_read=True)
        assert item is not None and item["name"] == "Ada", item

        metrics = re.search(r"metrics on (http://\S+/metrics)", log.read_text())
        assert metrics, log.read_text()
        async with aiohttp.ClientSession() as session, session.get(metrics[1]) as response:
            assert response.status == 200 and "# TYPE" in await response.text()
    finally:
        stopping = time.monotonic()
        code = await asyncio.to_thread(_stop, process)
    assert code == 0, log.read_text()
    assert time.monotonic() - stopping < _seconds(gateway["stop_grace_period"]), "Docker would kill it"


@pytest.mark.parametrize(
    ("word", "drifted", "says"),
    [
        ("--endpoint-url", "--endpoint-uri", "unrecognized arguments"),
        ("aws", "dynamodb", "backend must be one of"),
    ],
    ids=["misspelt-flag", "unknown-backend"],
)
async def test_a_drifted_gateway_command_fails_the_run(
    compose: dict[str, Any],
    compose_dynalite: DynaliteProcess,
    tmp_path: pathlib.Path,
    word: str,
    drifted: str,
    says: str,
) -> None:
    """The run above cannot pass a command that drifted from what works: the gateway exits."""
    gateway = compose["services"]["gateway"]
    command = _argv(gateway["command"])
    assert word in command
    places = _gateway_places(compose, compose_dynalite, tmp_path)
    log = tmp_path / "gateway.log"
    process = _spawn(
        _gateway_command([drifted if w == word else w for w in command], places),
        log,
        _local_env(_container_env(gateway), places),
    )
    try:
        with pytest.raises(RuntimeError, match="exited with 2"):
            await asyncio.to_thread(logged_port, process, log, GATEWAY_START_TIMEOUT_S)
        assert says in log.read_text()
    finally:
        await asyncio.to_thread(_stop, process)
