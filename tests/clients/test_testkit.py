"""The test kit (dynamo_gateway.testing) as its users meet it: pytest in a child process, the
plugin loaded by the client's pytest11 entry point (it loads in this suite too, and must start
nothing here).

Runs the example of examples/testkit, a session whose tests fail (the kit must not hide a
failure, and must empty every kind of table between tests) and a session that asks for no dgw_
fixture; then, in this process, a gateway that cannot start and settings that cannot work.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from collections.abc import Callable

import pytest

from dynamo_gateway.testing import GatewayOptions, GatewayStartError, start_gateway
from tests.support.emulators import ROOT

# What a user's shell would not have: this suite's own pytest settings.
_NOT_PASSED_ON = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


def run_pytest(*args: str, cwd: pathlib.Path) -> tuple[int, str]:
    """`python -m pytest ARGS -p no:cacheprovider -q` in cwd: its exit code, and its output with
    the summary line first (what the assertions match; the rest explains a mismatch)."""
    env = {name: value for name, value in os.environ.items() if name not in _NOT_PASSED_ON}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leaves no __pycache__ in examples/testkit
    result = subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-p", "no:cacheprovider", "-q"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    lines = result.stdout.strip().splitlines()
    return result.returncode, (lines[-1] if lines else "") + "\n" + result.stdout + result.stderr


def test_the_example_passes_as_a_user_runs_it() -> None:
    code, output = run_pytest("examples/testkit", cwd=ROOT)

    assert code == 0, output
    # Every test passed, and nothing warned.
    assert re.match(r"4 passed in [\d.]+s\n", output), output


KIT_CHECKS = """
import time

from dynamo_gateway import GatewayClient


async def test_writes_to_every_kind_of_table(dgw_client: GatewayClient) -> None:
    for start in range(0, 60, 20):
        await dgw_client.batch_write(puts={"plain": [{"id": str(n)} for n in range(start, start + 20)]})
    await dgw_client.put_item("plain", {"id": "expired", "expires_at": int(time.time()) - 60})
    for n in range(3):
        await dgw_client.put_item("versioned", {"id": str(n)}, expected_version="absent")
    await dgw_client.put_item("versioned", {"id": "0"}, expected_version=1)


async def test_every_table_starts_empty(dgw_client: GatewayClient) -> None:
    assert [item async for item in dgw_client.scan("plain", include_expired=True)] == []
    assert [item async for item in dgw_client.scan("versioned")] == []


async def test_a_wrong_expectation_fails(dgw_client: GatewayClient) -> None:
    await dgw_client.put_item("plain", {"id": "1", "total": 3})
    assert (await dgw_client.get_item("plain", {"id": "1"}))["total"] == 4
"""

KIT_TABLES = """
tables:
  - name: plain
    attributes: {id: S}
    key: {partition: id}
    ttl_attribute: expires_at
  - name: versioned
    attributes: {id: S}
    key: {partition: id}
    version: {attribute: v, required: true}
"""

ASYNC_TESTS_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""


def test_a_failing_test_fails_and_every_table_is_emptied(tmp_path: pathlib.Path) -> None:
    (tmp_path / "pytest.ini").write_text(ASYNC_TESTS_INI)
    (tmp_path / "tables.yaml").write_text(KIT_TABLES)
    (tmp_path / "test_kit_checks.py").write_text(KIT_CHECKS)

    # The tables file from the command line this time (relative to where pytest runs).
    code, output = run_pytest("--dgw-tables", "tables.yaml", cwd=tmp_path)

    assert code == 1, output
    assert re.match(r"1 failed, 2 passed in [\d.]+s\n", output), output
    assert "FAILED test_kit_checks.py::test_a_wrong_expectation_fails - assert 3 == 4" in output


NO_KIT_FIXTURE = '''
import os
import pathlib
import sys


def children_of(pid: int) -> list[str]:
    """Command lines of the processes whose parent is pid."""
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append((stat.parent / "cmdline").read_bytes().replace(b"\\0", b" ").decode())
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return found


def test_the_plugin_is_loaded_and_has_started_nothing(request) -> None:
    assert request.config.pluginmanager.has_plugin("dynamo_gateway")
    assert not [command for command in children_of(os.getpid()) if "dynamo_gateway_server" in command]
    # Not even the client: grpc loads only when a dgw_ fixture is used.
    assert "grpc" not in sys.modules and "dynamo_gateway.client" not in sys.modules
'''


def test_a_session_without_kit_fixtures_starts_no_gateway(tmp_path: pathlib.Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_no_kit.py").write_text(NO_KIT_FIXTURE)

    code, output = run_pytest(cwd=tmp_path)

    assert code == 0, output
    assert re.match(r"1 passed in [\d.]+s\n", output), output


def test_a_gateway_that_cannot_start_is_reported_with_its_log(tmp_path: pathlib.Path) -> None:
    tables = tmp_path / "tables.yaml"
    tables.write_text("tables: [{name: broken}]\n")

    with pytest.raises(GatewayStartError) as raised:
        start_gateway(GatewayOptions(tables_file=tables, start_timeout_s=30), tmp_path)

    message = str(raised.value)
    assert message.startswith("dynamo-gateway exited with code 1 before it served\ncommand: ")
    assert "'attributes' is required" in message  # the gateway's own words, from its log


CASSETTE = pathlib.Path("orders.jsonl")


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        (lambda: GatewayOptions(record_mode="once"), "it needs --dgw-cassette"),
        (lambda: GatewayOptions(cassette=CASSETTE, record=CASSETTE), "use --dgw-record-mode"),
        (lambda: GatewayOptions(extra_args=("--port=1",)), "--port is the plugin's to set"),
        (lambda: GatewayOptions(record_mode="always"), "must be one of none, new_episodes, once"),
    ],
)
def test_settings_that_cannot_work_are_refused(settings: Callable[[], GatewayOptions], error: str) -> None:
    with pytest.raises(pytest.UsageError, match=re.escape(error)):
        settings()


def test_only_the_memory_backend_without_recording_is_emptied() -> None:
    assert GatewayOptions().empties_tables
    assert not GatewayOptions(record=CASSETTE).empties_tables
    assert not GatewayOptions(endpoint_url="http://127.0.0.1:8000").empties_tables
    replay = GatewayOptions(
        cassette=CASSETTE, record_mode="new_episodes", endpoint_url="http://127.0.0.1:8000"
    )
    assert not replay.empties_tables
    command = replay.command(4242)
    assert command[command.index("--backend") + 1] == "replay"
    assert command[command.index("--record-mode") + 1] == "new_episodes"
    assert command[command.index("--port") + 1] == "4242"
