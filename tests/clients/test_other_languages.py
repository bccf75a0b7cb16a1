"""The contracts serve other languages: Go and Node clients made from protos/ run one scenario
against a running gateway (put, get, paginated query, ParallelScan stream, a conditional
failure whose google.rpc.Status details decode in that language).

The Go client is generated here, from the current protos, with buf and the protoc-gen-go /
protoc-gen-go-grpc plugins that scripts/bootstrap.sh installs into .tools/bin, and built
without network (the bootstrap downloaded its modules). The Node client loads the protos
at run time with @grpc/proto-loader from tools/node_modules.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from typing import Any

import google.rpc

from tests.compat import servers

ROOT = servers.ROOT
TOOLS = ROOT / ".tools" / "bin"
GO_CLIENT = ROOT / "tests" / "clients" / "go"
NODE_SCENARIO = ROOT / "tests" / "clients" / "node" / "scenario.js"
# site-packages/google/rpc/*.proto, shipped by googleapis-common-protos (no download at test time).
GOOGLE_PROTOS = pathlib.Path(next(iter(google.rpc.__path__))).parents[1]


def _run(args: list[str], cwd: pathlib.Path, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    result = subprocess.run(
        args, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{args[0]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _check_summary(output: str, language: str) -> dict[str, Any]:
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["language"] == language
    assert summary["put"] == summary["query_items"] == summary["scan_items"] == 25
    assert summary["query_pages"] == 3  # 10 + 10 + 5: the client followed last_evaluated_key
    assert summary["segments_done"] == 4
    assert summary["scan_messages"] >= 4
    assert summary["error_reason"] == "ConditionalCheck.ConditionFailed"
    assert summary["aws_error_code"] == "ConditionalCheckFailedException"
    assert summary["old_item_qty"] == "3"
    return summary


def test_go_client_generated_from_protos_runs_the_scenario(
    running_gateway: servers.GatewayProcess, tmp_path: pathlib.Path
) -> None:
    for plugin in ("protoc-gen-go", "protoc-gen-go-grpc"):
        assert (TOOLS / plugin).exists(), f"{plugin} is missing: run scripts/bootstrap.sh"
    module = tmp_path / "go"
    shutil.copytree(GO_CLIENT, module, ignore=shutil.ignore_patterns("gen"))
    path = f"{TOOLS}{os.pathsep}{os.environ['PATH']}"
    _run(
        [
            str(ROOT / ".venv" / "bin" / "buf"),
            "generate",
            "--template",
            str(module / "buf.gen.yaml"),
            "-o",
            str(module),
        ],
        cwd=ROOT,
        env={"PATH": path},
    )
    generated = sorted(p.name for p in (module / "gen" / "dynamo_gateway" / "v1").iterdir())
    assert "service_grpc.pb.go" in generated and "errors.pb.go" in generated
    # Offline: every module comes from the cache the bootstrap filled.
    go_env = {"GOFLAGS": "-mod=readonly", "GOPROXY": "off", "GOTOOLCHAIN": "local"}
    _run(["go", "build", "-o", str(tmp_path / "scenario"), "."], cwd=module, env=go_env)
    output = _run(
        [str(tmp_path / "scenario"), "-target", running_gateway.target, "-pk", "go#orders"], cwd=tmp_path
    )
    summary = _check_summary(output, "go")
    assert "conditional request failed" in summary["status_message"]


def test_node_client_loaded_from_protos_runs_the_scenario(running_gateway: servers.GatewayProcess) -> None:
    assert (ROOT / "tools" / "node_modules" / "@grpc" / "grpc-js").exists(), "run scripts/bootstrap.sh"
    assert (GOOGLE_PROTOS / "google" / "rpc" / "status.proto").exists()
    output = _run(
        [
            "node",
            str(NODE_SCENARIO),
            "--target",
            running_gateway.target,
            "--pk",
            "node#orders",
            "--include",
            str(GOOGLE_PROTOS),
        ],
        cwd=ROOT,
        timeout=120,
    )
    summary = _check_summary(output, "node")
    assert "conditional request failed" in summary["status_message"]


def test_scenarios_fail_loudly_when_the_contract_is_broken(running_gateway: servers.GatewayProcess) -> None:
    """A scenario pointed at a table with another key schema must fail, naming the step (teeth)."""
    result = subprocess.run(
        [
            "node",
            str(NODE_SCENARIO),
            "--target",
            running_gateway.target,
            "--table",
            "no-such-table",
            "--include",
            str(GOOGLE_PROTOS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "scenario failed at put" in result.stderr
