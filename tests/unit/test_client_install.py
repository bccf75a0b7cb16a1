"""The client package stands alone: no AWS SDK, no YAML, no server code."""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys
import textwrap
import tomllib

REPO = pathlib.Path(__file__).resolve().parents[2]
CLIENT = REPO / "client"
SERVER_ONLY = ("aiobotocore", "botocore", "boto3", "moto", "yaml", "dynamo_gateway_server")
FORBIDDEN_DEPENDENCY = re.compile(r"aiobotocore|boto|moto|yaml", re.IGNORECASE)

SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = {blocked!r}

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked import of {{name}}")
            return None

    already = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not already, f"imported before the blocker: {{already}}"
    sys.meta_path.insert(0, Blocker())

    # The blocker works: server dependencies really are out of reach.
    for name in BLOCKED:
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit(f"{{name}} was importable despite the blocker")

    import grpc
    import dynamo_gateway
    import dynamo_gateway.errors
    import dynamo_gateway.v1.service_pb2_grpc as service_pb2_grpc
    from dynamo_gateway import from_attribute_value, to_attribute_value
    from decimal import Decimal

    value = to_attribute_value({{"a": [1, Decimal("2.5"), "x", b"y", None, True], "s": {{"p", "q"}}}})
    assert value.WhichOneof("value") == "m", value
    back = from_attribute_value(value)
    assert back == {{"a": [1, Decimal("2.5"), "x", b"y", None, True], "s": {{"p", "q"}}}}, back

    channel = grpc.insecure_channel("127.0.0.1:9")
    stub = service_pb2_grpc.DynamoDBServiceStub(channel)
    assert callable(stub.GetItem)
    channel.close()
    assert dynamo_gateway.GatewayClient is not None

    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print("CLIENT-OK")
    """
).format(blocked=set(SERVER_ONLY))


def test_client_imports_and_works_without_server_dependencies(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-c", SCRIPT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "CLIENT-OK"


def test_blocker_would_catch_a_server_dependency(tmp_path: pathlib.Path) -> None:
    """The same script fails when something it runs imports a blocked module (so the check has teeth)."""
    leaky = SCRIPT.replace("import grpc\n", "import grpc\nimport dynamo_gateway_server.codec\n", 1)
    assert leaky != SCRIPT
    result = subprocess.run(
        [sys.executable, "-I", "-c", leaky],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "blocked import of dynamo_gateway_server" in result.stderr


def _dependency_names(pyproject: pathlib.Path) -> list[str]:
    with pyproject.open("rb") as file:
        project = tomllib.load(file)["project"]
    return [re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0] for requirement in project["dependencies"]]


def test_client_pyproject_has_no_server_dependencies() -> None:
    names = _dependency_names(CLIENT / "pyproject.toml")
    assert names, "the client declares its dependencies"
    assert "grpcio" in names
    assert [n for n in names if FORBIDDEN_DEPENDENCY.search(n)] == []


def test_server_pyproject_is_where_those_dependencies_live() -> None:
    names = _dependency_names(REPO / "pyproject.toml")
    assert {"aiobotocore", "moto", "pyyaml"} <= {n for n in names if FORBIDDEN_DEPENDENCY.search(n)}


# The client's optional extras may import what they bring: the boto3-shaped facade (`boto3`)
# botocore, the test kit (`testing`) PyYAML. `import dynamo_gateway` imports neither (the
# subprocess test above blocks botocore).
OPTIONAL_EXTRAS = {
    CLIENT / "dynamo_gateway" / "boto3_compat": "botocore",
    CLIENT / "dynamo_gateway" / "testing.py": "yaml",
}


def test_client_sources_import_no_server_module() -> None:
    sources = sorted((CLIENT / "dynamo_gateway").rglob("*.py"))
    assert len(sources) >= 5
    for source in sources:
        forbidden = set(SERVER_ONLY)
        for extra, brought in OPTIONAL_EXTRAS.items():
            if source.is_relative_to(extra):
                forbidden.discard(brought)
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                assert module.split(".")[0] not in forbidden, f"{source}: imports {module}"


def test_every_client_exception_is_exported() -> None:
    import dynamo_gateway
    from dynamo_gateway import errors

    classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.GatewayError)
    }
    assert classes <= set(dynamo_gateway.__all__)
