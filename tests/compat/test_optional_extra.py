"""botocore stays optional: the client, its CLI and its transfers work without it; only the
facade needs it, and says how to get it."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("botocore", "boto3", "jmespath"):
                raise ImportError(f"blocked import of {name}")
            return None

    sys.meta_path.insert(0, Blocker())
    import dynamo_gateway, dynamo_gateway.cli, dynamo_gateway.transfer, dynamo_gateway.wire
    assert dynamo_gateway.cli.main is not None
    try:
        import dynamo_gateway.boto3_compat
    except ImportError as error:
        print("FACADE-NEEDS-BOTOCORE", error)
    """
)


def test_client_and_cli_import_without_botocore(tmp_path: pathlib.Path) -> None:
    result = subprocess.run(
        [sys.executable, "-I", "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("FACADE-NEEDS-BOTOCORE blocked import of botocore")
