#!/usr/bin/env bash
# Installs everything the service, the tests and the tools need, from the package
# registries only: a Python venv (.venv), Go tools (.tools/bin) and Node tools
# (tools/node_modules). Idempotent: each part is skipped when its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
GRPCURL_VERSION=v1.9.4
HEALTH_PROBE_VERSION=v0.4.62
# The gRPC load generator of the benchmarks (make bench); not needed by the tests.
GHZ_VERSION=v0.93.0
# Code generators of the Go client that tests/clients/test_other_languages.py builds from protos/.
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
# Renders deploy/kubernetes/'s chart for tests/e2e/test_kubernetes.py (which validates it offline).
HELM_VERSION=v3.22.0

stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

python_env() {
  local want; want=$(stamp_of constraints.txt pyproject.toml client/pyproject.toml)
  if [[ -f .venv/.stamp && "$(cat .venv/.stamp)" == "$want" ]]; then return; fi
  echo "bootstrap: python environment (.venv)"
  "$PYTHON" -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -c constraints.txt -e './client[boto3]' -e '.[dev]'
  echo "$want" > .venv/.stamp
}

go_tool() {  # name module@version
  local name=$1 module=$2
  if [[ -x .tools/bin/$name && -f .tools/bin/.$name.version && "$(cat .tools/bin/.$name.version)" == "$module" ]]; then
    return
  fi
  echo "bootstrap: $name ($module)"
  mkdir -p .tools/bin
  GOBIN="$ROOT/.tools/bin" GOFLAGS=-buildvcs=false go install "$module"
  echo "$module" > ".tools/bin/.$name.version"
}

go_client_modules() {
  # The Go scenario's modules and their compiled packages, so the test builds offline and fast.
  local want; want=$(stamp_of tests/clients/go/go.mod tests/clients/go/go.sum)
  if [[ -f .tools/bin/.go-client.stamp && "$(cat .tools/bin/.go-client.stamp)" == "$want" ]]; then return; fi
  echo "bootstrap: Go client modules (tests/clients/go)"
  (cd tests/clients/go && go mod download && GOFLAGS=-mod=readonly go build \
    google.golang.org/grpc google.golang.org/grpc/credentials/insecure google.golang.org/grpc/status \
    google.golang.org/genproto/googleapis/rpc/errdetails google.golang.org/protobuf/runtime/protoimpl)
  echo "$want" > .tools/bin/.go-client.stamp
}

node_tools() {
  local want; want=$(stamp_of tools/package.json tools/package-lock.json)
  if [[ -f tools/node_modules/.stamp && "$(cat tools/node_modules/.stamp)" == "$want" ]]; then return; fi
  echo "bootstrap: node tools (dynalite, @grpc/grpc-js, @grpc/proto-loader)"
  (cd tools && npm ci --silent --no-audit --no-fund >/dev/null)
  echo "$want" > tools/node_modules/.stamp
}

part=${1:-all}
case "$part" in
  python) python_env ;;
  all)
    python_env
    go_tool grpcurl "github.com/fullstorydev/grpcurl/cmd/grpcurl@$GRPCURL_VERSION"
    go_tool grpc-health-probe "github.com/grpc-ecosystem/grpc-health-probe@$HEALTH_PROBE_VERSION"
    go_tool protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
    go_tool protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
    go_tool helm "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    go_client_modules
    node_tools
    ;;
  bench)
    python_env
    go_tool ghz "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
    ;;
  *) echo "usage: $0 [python|all|bench]" >&2; exit 2 ;;
esac
