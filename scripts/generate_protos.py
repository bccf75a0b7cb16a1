"""Regenerates the committed Python code for protos/ into client/.

One command (`make generate`) so the committed code always equals what the
pinned grpcio-tools and mypy-protobuf produce; CI runs it and fails on a diff.
"""

from __future__ import annotations

import pathlib
import shutil
import sys

from grpc_tools import protoc

ROOT = pathlib.Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "client"
PACKAGE = "dynamo_gateway/v1"


def main() -> int:
    out_dir = OUT / PACKAGE
    for old in list(out_dir.glob("*_pb2*.py")) + list(out_dir.glob("*_pb2*.pyi")):
        old.unlink()
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    well_known = pathlib.Path(protoc.__file__).parent / "_proto"
    mypy_plugin = shutil.which("protoc-gen-mypy", path=str(pathlib.Path(sys.executable).parent))
    mypy_grpc_plugin = shutil.which("protoc-gen-mypy_grpc", path=str(pathlib.Path(sys.executable).parent))
    if not mypy_plugin or not mypy_grpc_plugin:
        print("mypy-protobuf plugins not found next to this Python", file=sys.stderr)
        return 1
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={mypy_plugin}",
        f"--plugin=protoc-gen-mypy_grpc={mypy_grpc_plugin}",
        f"--python_out={OUT}",
        f"--mypy_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--mypy_grpc_out={OUT}",
        *protos,
    ]
    code = protoc.main(args)
    if code != 0:
        return code
    # Only service.proto has a service; the empty grpc modules of the others are noise.
    for grpc_module in out_dir.glob("*_pb2_grpc.py*"):
        if grpc_module.name.split("_pb2_grpc")[0] != "service":
            grpc_module.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
