"""What import-linter cannot see: what a module really loads at run time.

import-linter (make lint) checks the imports each module writes; a package's
__init__ runs too when one of its modules is imported, so these tests import the
pure modules in a fresh interpreter and look at what came along.
"""

from __future__ import annotations

import subprocess
import sys

import dynamo_gateway

# The pure core: what a failure means, how it is drawn, the codec, the walker, the stages
# that need no network library of their own.
PURE = (
    "dynamo_gateway_server.failures",
    "dynamo_gateway_server.errors",
    "dynamo_gateway_server.codec",
    "dynamo_gateway_server.request_shape",
    "dynamo_gateway_server.key_schema",
    "dynamo_gateway_server.resilience",
    "dynamo_gateway_server.batches",
    "dynamo_gateway_server.security.guard",
    "dynamo_gateway_server.input_rules",
    "dynamo_gateway_server.ttl",
    "dynamo_gateway_server.observability.operations",
    "dynamo_gateway_server.observability.capacity",
    "dynamo_gateway.taxonomy",
    "dynamo_gateway.dynamodb_messages",
    "dynamo_gateway.v1.service_pb2",
)


def _loaded_after_importing(modules: tuple[str, ...]) -> set[str]:
    script = (
        "import sys\n"
        + "".join(f"import {module}\n" for module in modules)
        + "print('\\n'.join(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_the_pure_core_loads_without_grpc_or_opentelemetry() -> None:
    loaded = _loaded_after_importing(PURE)
    assert set(PURE) <= loaded  # the probe did import them
    unwanted = sorted(m for m in loaded if m.split(".")[0] in ("grpc", "grpc_status", "opentelemetry"))
    assert unwanted == []


def test_the_client_package_still_offers_every_public_name() -> None:
    for name in dynamo_gateway.__all__:
        assert getattr(dynamo_gateway, name) is not None, name
    assert sorted(dynamo_gateway.__all__) == sorted(dynamo_gateway._EXPORTS)
