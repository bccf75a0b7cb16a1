# The two commands a fresh machine needs: `make run` and `make test`.
# Everything else they depend on is installed by scripts/bootstrap.sh.

VENV := .venv
METRICS_PORT ?= 9464
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(CURDIR)/.tools/bin:$(PATH)

.PHONY: bootstrap bootstrap-python run test unit lint generate check-generated bench bench-smoke bench-replay bench-regions bench-instructions bench-table fuzz soak reliability clean

bootstrap:
	@scripts/bootstrap.sh all

bootstrap-python:
	@scripts/bootstrap.sh python

## Serves on 127.0.0.1:50051 (metrics on :9464) with the embedded memory backend and the example tables.
run: bootstrap-python
	$(PY) -m dynamo_gateway_server --tables-file examples/tables.yaml --metrics-port $(METRICS_PORT)

## Sets everything up, checks lint and generated code, runs the whole suite.
test: bootstrap lint check-generated
	$(PY) -m pytest -q -p no:cacheprovider

## Quick loop while developing: unit tests only.
unit: bootstrap-python
	$(PY) -m pytest -q tests/unit

lint: bootstrap-python
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint
	$(BIN)/buf format --diff --exit-code
	@if git rev-parse --verify -q main >/dev/null; then \
		$(BIN)/buf breaking --against '.git#branch=main'; \
	else echo "buf breaking: no main branch to compare against"; fi
	$(BIN)/hadolint Dockerfile
	$(BIN)/lint-imports
	$(BIN)/mypy

## Regenerates client/dynamo_gateway/v1 from protos/.
generate: bootstrap-python
	$(PY) scripts/generate_protos.py

check-generated: generate
	@if [ -n "$$(git status --porcelain -- client/dynamo_gateway/v1)" ]; then \
		git status --short -- client/dynamo_gateway/v1; \
		echo "generated code is out of date: run 'make generate' and commit"; exit 1; \
	fi

## The README's Reliability figures: overload bursts, idle connections and unread streams, restarts
## under load; prints numbers, never fails on them (the checks are in make test).
reliability: bootstrap
	$(PY) bench/overload.py
	$(PY) bench/abuse.py
	$(PY) bench/restart.py

## Fuzzes every RPC through a real gateway: 10,000 requests per emulator; fails on any violation.
fuzz: bootstrap
	$(PY) bench/fuzz.py --requests 10000 --backend both

## Record and replay: a 1,000-call session recorded against moto and replayed with no emulator
## (fails unless every answer is identical), recording's CPU cost, replay throughput (2 minutes).
bench-replay:
	@scripts/bootstrap.sh bench
	$(PY) bench/replay.py

## Global tables: an outage of the local region per write mode, and an evacuation while serving.
bench-regions: bootstrap-python
	$(PY) bench/global_tables.py

## A million mixed calls through one gateway on the stub DynamoDB; fails when RSS grew by more than
## 10 MB after the warm-up, or when tasks, fds or connections grew (15 to 30 minutes here).
soak:
	@scripts/bootstrap.sh bench
	$(PY) bench/soak.py

## The side-by-side benchmark (gateway via ghz vs direct aiobotocore on a stub DynamoDB), the
## ParallelScan scale run and the workers scaling curve; prints numbers, never fails on them.
bench:
	@scripts/bootstrap.sh bench
	$(PY) bench/harness.py
	$(PY) bench/scan_scale.py
	$(PY) bench/scaling.py

## Instructions per call (valgrind's callgrind): the gateway process and the gRPC floor per workload,
## and the calling process with each client library; fails when one exceeds
## bench/instructions_baseline.json by more than 3% (about 15 minutes here).
bench-instructions: bootstrap-python
	$(PY) bench/instructions.py --check

## The README's performance table: every workload at 64 callers on the stub, gateway / direct /
## gRPC floor, three alternating rounds, and the latency added below capacity (about 8 minutes).
bench-table:
	@scripts/bootstrap.sh bench
	$(PY) bench/harness.py --workloads GetItem PutItem UpdateItem Query10 Query100 BatchGet25 BatchWrite25 TransactWrite5 --concurrency 64 --stub-latency-ms 0 --repeat 3
	$(PY) bench/harness.py --workloads GetItem PutItem --concurrency 64 --stub-latency-ms 5 --repeat 3

## GetItem/PutItem through the gateway on the memory backend; prints numbers, never fails on them.
bench-smoke: bootstrap-python
	$(PY) bench/smoke.py

clean:
	rm -rf $(VENV) .tools tools/node_modules
