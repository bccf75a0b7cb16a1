"""End to end: `make run`'s server, driven by the README's own grpcurl and grpc-health-probe lines."""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support.ports import LOGGED_PORT_ENV, logged_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "bin"
# The README's commands name this address; they run against the server's real one instead
# (_run), so the tests need not own port 50051.
README_ADDRESS = "127.0.0.1:50051"
START_TIMEOUT_S = 90.0  # `make run` sets up the environment first


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{TOOLS}{os.pathsep}{os.environ['PATH']}", **extra}


def _spawn(command: list[str], log: pathlib.Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """`command` from the repository root, its output in `log`, in a process group of its own (so
    the whole group, engine included, can be signalled)."""
    with log.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_serving(address: str, process: subprocess.Popen[bytes], log: pathlib.Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log.read_text()}")
        probe = subprocess.run(
            [str(TOOLS / "grpc-health-probe"), "-addr", address, "-connect-timeout", "1s"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"server never became SERVING:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


@pytest.fixture(scope="module")
def make_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`make run`, verbatim, on the port it binds (the port comes from the environment, not the command).

    Port 0, for the server and its metrics endpoint: the server binds a free port and logs it.
    """
    log = tmp_path_factory.mktemp("make-run") / "server.log"
    process = _spawn(
        ["make", "--no-print-directory", "run"],
        log,
        _env(DYNAMO_GATEWAY_PORT="0", METRICS_PORT="0", **LOGGED_PORT_ENV),
    )
    try:
        address = f"127.0.0.1:{logged_port(process, log, START_TIMEOUT_S)}"
        _wait_serving(address, process, log)
        yield address
    finally:
        _stop(process)


def readme_commands(section_title: str = "Quick start") -> list[str]:
    """The grpcurl and grpc-health-probe lines of a README section's first sh block, in order."""
    return [
        line for line in _readme_block(section_title) if line.startswith(("grpcurl ", "grpc-health-probe "))
    ]


def _run(command: str, address: str) -> subprocess.CompletedProcess[str]:
    assert README_ADDRESS in command
    return subprocess.run(
        ["bash", "-c", command.replace(README_ADDRESS, address)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_readme_quick_start_works_verbatim(make_run: str) -> None:
    commands = readme_commands()
    assert len(commands) >= 8
    outputs = []
    for command in commands:
        result = _run(command, make_run)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        outputs.append(result.stdout + result.stderr)
    listed, described, put, got, queried, scanned, table, health = outputs[:8]
    assert "dynamo_gateway.v1.DynamoDBService" in listed
    assert "grpc.health.v1.Health" in listed
    assert "rpc PutItem" in described
    assert put.strip() == "{}"
    assert '"S": "Ada"' in got and '"found": true' in got
    assert '"N": "36"' in queried
    assert '"segment_done": true' in scanned
    assert '"gsi1"' in table and '"lsi1"' in table
    assert "SERVING" in health


def test_readme_ttl_examples_answer_as_they_say(make_run: str) -> None:
    refused, put, get_expired = readme_commands("TTL")
    result = _run(refused, make_run)
    assert result.returncode != 0
    assert "InvalidArgument" in result.stderr
    assert "invalid item.expires_at" in result.stderr and "milliseconds" in result.stderr
    assert "Validation.InvalidParameter" in result.stderr
    began = time.time()
    assert _run(put, make_run).returncode == 0
    shown = json.loads(_run(get_expired, make_run).stdout)
    expires = int(shown["item"]["expires_at"]["N"])
    assert began + 2 <= expires <= time.time() + 3
    without = get_expired.replace(', "include_expired": true', "")
    assert without != get_expired
    while time.time() < expires + 1:  # past its TTL by the gateway's clock (same host)
        time.sleep(0.2)
    assert json.loads(_run(without, make_run).stdout or "{}") == {}
    assert json.loads(_run(get_expired, make_run).stdout)["found"] is True


def test_grpcurl_prints_error_details_decoded(make_run: str) -> None:
    item = '{"pk": {"S": "user#e2e"}, "sk": {"S": "once"}}'
    put = f'grpcurl -plaintext -d \'{{"table_name": "app", "item": {item}, %s}}\' {README_ADDRESS} dynamo_gateway.v1.DynamoDBService/PutItem'
    assert _run(put % '"condition_expression": "attribute_not_exists(pk)"', make_run).returncode == 0
    again = _run(
        put
        % (
            '"condition_expression": "attribute_not_exists(pk)", '
            '"return_values_on_condition_check_failure": "RETURN_VALUES_ON_CONDITION_CHECK_FAILURE_ALL_OLD"'
        ),
        make_run,
    )
    assert again.returncode != 0
    assert "FailedPrecondition" in again.stderr
    assert "dynamo_gateway.v1.ConditionalCheckFailure" in again.stderr
    assert '"S": "user#e2e"' in again.stderr  # the old item, decoded, not bytes
    bad = _run(
        f'grpcurl -plaintext -d \'{{"table_name": "app", "key": {{"pk": {{"N": "1.2.3"}}}}}}\' '
        f"{README_ADDRESS} dynamo_gateway.v1.DynamoDBService/GetItem",
        make_run,
    )
    assert "InvalidArgument" in bad.stderr
    assert "key.pk" in bad.stderr


def _children(pid: int) -> list[int]:
    children = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_sigterm_shuts_down_cleanly_and_stops_the_engine(tmp_path: pathlib.Path) -> None:
    command = [sys.executable, "-m", "dynamo_gateway_server", "--port", "0", "--grace-period-s", "2"]
    log = tmp_path / "server.log"
    process = _spawn(command, log, _env(**LOGGED_PORT_ENV))
    try:
        _wait_serving(f"127.0.0.1:{logged_port(process, log)}", process, log)
        engine = _children(process.pid)
        assert engine, "the memory backend runs its engine as a child process"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, log.read_text()
        assert "stopped" in log.read_text()
        for pid in engine:
            assert not pathlib.Path(f"/proc/{pid}").exists() or "Z" in _state(pid), (
                f"engine {pid} outlived the server"
            )
    finally:
        _stop(process)


def _state(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_bad_settings_fail_fast_with_a_clear_message() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dynamo_gateway_server", "--backend", "postgres"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "backend must be one of memory, aws" in result.stderr
    assert shlex.quote("Traceback") not in result.stderr and "Traceback" not in result.stderr


def test_readme_versioned_writes_answer_as_it_says(make_run: str) -> None:
    create, update, stale_delete = readme_commands("Versioned writes")
    created = _run(create, make_run)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout) == {"version": "1"}
    updated = _run(update, make_run)
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout) == {"version": "2"}
    refused = _run(stale_delete, make_run)
    assert refused.returncode != 0
    assert "FailedPrecondition" in refused.stderr
    assert "ConditionalCheck.VersionConflict" in refused.stderr
    assert (
        "dynamo_gateway.v1.VersionConflict" in refused.stderr and '"current_version": "2"' in refused.stderr
    )


def _readme_block(section_title: str) -> list[str]:
    """Every command line of a README section's first sh block (comments left out)."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {section_title}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, f"the README's {section_title} section has no sh block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_readme_record_and_replay_answers_as_it_says(tmp_path: pathlib.Path) -> None:
    """The section's gateways run as written (their cassette in tmp_path, on a port of their own),
    each followed by its grpcurl lines."""
    lines = _readme_block("Record and replay")
    starts = [i for i, line in enumerate(lines) if line.startswith(".venv/bin/dynamo-gateway ")]
    assert len(starts) == 2, lines
    cassette = "/tmp/session.jsonl"
    outputs: list[subprocess.CompletedProcess[str]] = []
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(lines)], strict=True)):
        assert cassette in lines[start]
        command = shlex.split(lines[start].replace(cassette, str(tmp_path / "session.jsonl")))
        log = tmp_path / f"gateway-{number}.log"
        process = _spawn(command, log, _env(DYNAMO_GATEWAY_PORT="0", **LOGGED_PORT_ENV))
        try:
            address = f"127.0.0.1:{logged_port(process, log, START_TIMEOUT_S)}"
            _wait_serving(address, process, log)
            outputs += [_run(line, address) for line in lines[start + 1 : end]]
        finally:
            assert _stop(process) == 0, log.read_text()
    put, recorded, replayed, not_recorded = outputs
    assert put.returncode == 0 and put.stdout.strip() == "{}", put.stderr
    assert recorded.returncode == 0 and '"S": "Grace"' in recorded.stdout, recorded.stderr
    assert replayed.stdout == recorded.stdout
    assert not_recorded.returncode != 0
    assert (
        "FailedPrecondition" in not_recorded.stderr and "Configuration.ReplayMismatch" in not_recorded.stderr
    )
    assert 'Key.pk.S: recorded \\"user#7\\", called with \\"user#8\\"' in not_recorded.stderr


def test_readme_entities_answer_as_it_says(make_run: str) -> None:
    put, get, by_user, by_index, collection, refused = readme_commands("Entities")
    assert _run(put, make_run).returncode == 0
    got = json.loads(_run(get, make_run).stdout)
    assert got["entity"] == "order"
    assert got["item"]["pk"] == {"S": "USER#42"} and got["item"]["gsi1sk"] == {"S": "USER#42"}
    assert got["item"]["_entity"] == {"S": "order"}
    for query in (by_user, by_index):
        (found,) = json.loads(_run(query, make_run).stdout)["items"]
        assert found["attributes"]["order_id"] == {"S": "o-7"} and found["entity"] == "order"
    read_together = json.loads(_run(collection, make_run).stdout)["items"]
    assert [item["entity"] for item in read_together] == ["order"]  # user 42 has no profile here
    result = _run(refused, make_run)
    assert result.returncode != 0
    assert "invalid item.order_id: entity order needs order_id to build its keys" in result.stderr


def test_readme_global_tables_answer_as_it_says(tmp_path: pathlib.Path) -> None:
    """The section's gateway on the embedded engine, with a copy of the example regions file:
    the region in the trailer, the refusal, a region's health, then an evacuation by SIGHUP."""
    lines = _readme_block("Global tables")
    start = shlex.split(lines[0].replace("examples/regions.yaml", str(tmp_path / "regions.yaml")))
    example = (ROOT / "examples" / "regions.yaml").read_text()
    (tmp_path / "regions.yaml").write_text(example)
    put, strong, health, after = readme_commands("Global tables")
    log = tmp_path / "gateway.log"
    process = _spawn(start, log, _env(DYNAMO_GATEWAY_PORT="0", **LOGGED_PORT_ENV))
    try:
        address = f"127.0.0.1:{logged_port(process, log, START_TIMEOUT_S)}"
        _wait_serving(address, process, log)
        written = _run(put, address)
        assert written.returncode == 0, written.stderr
        assert "dynamodb-region: us-east-1" in written.stdout + written.stderr
        primary = _run(strong, address)
        assert primary.returncode == 0, primary.stderr  # write mode one: the primary serves it
        assert _run(health, address).returncode == 0
        evacuated = example.replace("evacuated: []", "evacuated: [us-east-1]").replace(
            "primary: us-east-1", "primary: eu-west-1"
        )
        assert evacuated != example
        (tmp_path / "regions.yaml").write_text(evacuated)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while "regions file reloaded" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        moved = _run(after, address)
        assert moved.returncode == 0, moved.stderr
        assert "dynamodb-region: eu-west-1" in moved.stdout + moved.stderr
    finally:
        assert _stop(process) == 0, log.read_text()
