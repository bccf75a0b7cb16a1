"""Settings: one frozen dataclass, loaded in one place from flags, environment and an optional file.

Precedence, highest first: command-line flags, DYNAMO_GATEWAY_* environment
variables, the YAML file named by --config (or DYNAMO_GATEWAY_CONFIG), defaults.
Must not import gRPC or the backends.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import itertools
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

ENV_PREFIX = "DYNAMO_GATEWAY_"
BACKENDS = ("memory", "aws", "replay")
RECORD_MODES = ("none", "new_episodes", "once")
REPLAY_MATCHES = ("match", "strict", "repeat")
RECORD_VALUES = ("keep", "hash", "drop")


class SettingsError(ValueError):
    """A setting has a bad value; the message names the setting and where it came from."""

    def __init__(self, message: str, setting: str | None = None) -> None:
        super().__init__(message)
        self.setting = setting


@dataclasses.dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    """Address to listen on; 0.0.0.0 for every interface (as in a container)."""
    port: int = 50051
    """gRPC port; 0 picks a free one."""
    backend: str = "memory"
    """memory: an embedded DynamoDB-compatible engine (no AWS account); aws: DynamoDB or endpoint_url; replay: answers from a recorded cassette (no DynamoDB)."""
    region: str = "us-east-1"
    """AWS region of the DynamoDB tables."""
    endpoint_url: str | None = None
    """aws backend only: a DynamoDB-compatible endpoint (local emulator) instead of AWS."""
    tables_file: str | None = None
    """YAML file of tables to create at startup if absent (see examples/tables.yaml)."""
    regions_file: str | None = None
    """YAML file of global tables: the regions, each table's write and consistency modes, evacuated regions (see examples/regions.yaml); re-read on SIGHUP and when it changes."""
    max_concurrency: int = 64
    """DynamoDB calls in flight at once; sizes the HTTP connection pool too."""
    scan_concurrency: int = 8
    """Segments one ParallelScan scans at once."""
    connect_timeout_s: float = 2.0
    """Seconds to open a connection to DynamoDB."""
    read_timeout_s: float = 10.0
    """Seconds to wait for DynamoDB's answer on an open connection."""
    backend_client: str = "lean"
    """How the aws and memory backends talk to DynamoDB: lean (signed JSON over HTTP/1.1, least CPU) or aiobotocore (the SDK)."""
    backend_max_attempts: int = 1
    """Attempts the AWS SDK makes per DynamoDB call; 1 leaves retrying to the gateway's own policy."""
    retry_throughput_attempts: int = 10
    """Attempts for throttled calls (ProvisionedThroughputExceeded, Throttling, RequestLimitExceeded)."""
    retry_throughput_base_s: float = 0.05
    """First backoff for throttled calls; doubles per retry, with full jitter."""
    retry_internal_error_attempts: int = 3
    """Attempts for DynamoDB InternalServerError (and other 5xx)."""
    retry_internal_error_base_s: float = 0.1
    """First backoff after an InternalServerError."""
    retry_unavailable_attempts: int = 3
    """Attempts for ServiceUnavailable and unreachable DynamoDB."""
    retry_unavailable_base_s: float = 0.5
    """First backoff after ServiceUnavailable."""
    retry_conflict_attempts: int = 3
    """Attempts for transaction conflicts (and transactions cancelled only by conflicts or throttling)."""
    retry_conflict_base_s: float = 0.1
    """First backoff after a transaction conflict."""
    retry_max_delay_s: float = 5.0
    """Cap on any single backoff."""
    breaker_failure_threshold: int = 5
    """Backend-health failures in a row that open the circuit breaker."""
    breaker_success_threshold: int = 2
    """Successes in a row, once half-open, that close it again."""
    breaker_reset_timeout_s: float = 30.0
    """Seconds the breaker stays open (failing fast) before letting calls try again."""
    batch_max_items: int = 1000
    """Most keys (BatchGetItem) or writes (BatchWriteItem) one RPC may carry; split into DynamoDB-sized calls."""
    batch_concurrency: int = 4
    """DynamoDB batch calls one batch RPC runs at once."""
    event_loop: str = "uvloop"
    """uvloop (less CPU per RPC) or asyncio (the standard loop)."""
    workers: int = 1
    """Gateway processes sharing the port (SO_REUSEPORT); more than 1 needs the aws backend and a fixed port."""
    grace_period_s: float = 10.0
    """On SIGTERM/SIGINT, seconds in-flight RPCs get to finish."""
    shutdown_delay_s: float = 1.0
    """On SIGTERM/SIGINT, seconds the gateway keeps serving while reporting NOT_SERVING, so that calls already sent to it (and those load balancers send before they notice) are served, not cut."""
    max_message_bytes: int = 32 * 1024 * 1024
    """Largest gRPC message sent; batch responses reach 16 MB (requests: max_request_bytes)."""
    log_level: str = "INFO"
    """DEBUG, INFO, WARNING or ERROR."""
    metrics_port: int = -1
    """Port of the Prometheus /metrics endpoint (on host); 0 picks a free one, -1 turns it off."""
    otlp_endpoint: str | None = None
    """OTLP/gRPC endpoint that receives spans (e.g. http://collector:4317); unset: spans are not exported."""
    trace_key_values: str = "hashed"
    """Key values in spans and logs: hashed, plain, or off (keys may be personal data)."""
    key_hash_salt: str = dataclasses.field(default="", repr=False)
    """Secret salt for hashed key values; give every replica the same one so their hashes match."""
    log_format: str = "auto"
    """json, console, or auto (console on a terminal, json otherwise). log_level also takes TRACE."""
    operation_log_every: int = 1
    """INFO line for 1 in this many completed DynamoDB calls (1: all, 0: none); warnings are never sampled."""
    hot_partition_window: int = 1000
    """Requests per table over which partition key shares are measured; 0 turns detection off."""
    hot_partition_share: float = 0.2
    """Share of a window's requests above which one partition key is reported as hot."""
    hot_partition_top_k: int = 5
    """Partition keys per table exported as dynamodb_hot_partition_key_share (hashed)."""
    sequential_key_window: int = 100
    """Writes per table over which increasing partition keys are detected; 0 turns detection off."""
    tls_cert_file: str | None = None
    """Server certificate chain (PEM); with tls_key_file, serves TLS only. Re-read when the file changes."""
    tls_key_file: str | None = None
    """Private key (PEM) of tls_cert_file; re-read with it."""
    tls_client_ca_file: str | None = None
    """CA certificates (PEM) for client certificates: turns on mTLS (a client without a valid certificate is refused)."""
    auth_tokens_file: str | None = None
    """YAML file of static bearer tokens, stored as SHA-256 hashes (examples/tokens.yaml); re-read on change."""
    jwt_jwks_file: str | None = None
    """JWKS (JSON) whose keys verify bearer JWTs, e.g. the cluster's service-account issuer keys; re-read on change."""
    jwt_issuer: str | None = None
    """The iss claim bearer JWTs must carry (required with jwt_jwks_file)."""
    jwt_audiences: str | None = None
    """Comma-separated aud values of which a bearer JWT must carry one (required with jwt_jwks_file)."""
    jwt_algorithms: str = "RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,ES512,EdDSA"
    """Comma-separated JWS algorithms accepted for bearer JWTs (asymmetric ones only)."""
    jwt_leeway_s: int = 30
    """Seconds of clock skew allowed when checking a JWT's exp, nbf and iat."""
    policy_file: str | None = None
    """Authorization policy (YAML, examples/policy.yaml); once set, whatever it does not allow is denied. Re-read on change."""
    security_reload_interval_s: float = 5.0
    """Seconds between checks of the policy, tokens and JWKS files for changes (SIGHUP checks at once)."""
    reflection: str = "open"
    """Server reflection: open (anyone), authenticated (only callers who pass authentication), or off."""
    max_request_bytes: int = 32 * 1024 * 1024
    """Largest request message; a larger one gets RESOURCE_EXHAUSTED before it is decoded."""
    max_metadata_bytes: int = 16 * 1024
    """Largest metadata (headers, the bearer token among them) a call may carry; gRPC answers a larger one RESOURCE_EXHAUSTED before the gateway sees it."""
    max_inflight_rpcs: int = 1024
    """DynamoDB-service RPCs this server handles at once; one more gets RESOURCE_EXHAUSTED, never a queue (0: no limit)."""
    max_inflight_rpcs_per_caller: int = 0
    """The same limit per authenticated caller, so one caller cannot take every slot (0: no limit)."""
    max_connection_age_s: float = 900.0
    """A caller's connection is asked to close (GOAWAY) after this long, so long-lived HTTP/2 connections spread over new replicas; its RPCs in flight finish first (0: never)."""
    max_connection_age_grace_s: float = 0.0
    """After max_connection_age_s, how long RPCs in flight (a long ParallelScan) may still run before the connection is cut (0: as long as they need)."""
    max_connection_idle_s: float = 1800.0
    """A connection without RPCs for this long is closed (0: never)."""
    keepalive_time_s: float = 60.0
    """The server pings a quiet connection this often and closes it when the ping goes unanswered (keepalive_timeout_s): dead callers do not pin resources."""
    keepalive_timeout_s: float = 20.0
    """How long a keepalive ping may go unanswered."""
    stream_stall_timeout_s: float = 60.0
    """A ParallelScan whose reader takes no page for this long ends with DEADLINE_EXCEEDED and each unfinished segment's resume key, so a stalled reader does not hold a scan (0: never)."""
    max_pending_rpcs: int = 20_000
    """RPCs gRPC holds until the gateway takes them up (a burst waits there a moment, then gets its answer or RESOURCE_EXHAUSTED); gRPC cancels any beyond."""
    record: str | None = None
    """Cassette (JSON Lines) every DynamoDB call is appended to: the request, the answer or error, the latency."""
    record_values: str = "keep"
    """Item and key values in a recorded cassette: keep, hash (HMAC with key_hash_salt: equal values stay equal) or drop; only kept values can be replayed."""
    record_max_bytes: int = 256 * 1024 * 1024
    """A cassette larger than this is rotated: renamed to <cassette>.1 (older ones to .2 ...) and started afresh."""
    record_keep_files: int = 3
    """Rotated cassettes kept beside the current one; older ones are deleted."""
    cassette: str | None = None
    """replay backend: the cassette whose recordings answer the calls."""
    record_mode: str = "none"
    """replay backend: none (a call not in the cassette fails), new_episodes (it goes to endpoint_url and is added), once (record everything when the cassette does not exist yet, else none)."""
    replay_match: str = "match"
    """replay backend: match (any recording of the same request, each used once), repeat (the last one answers again once used up) or strict (the recordings in their order)."""
    aws_profile: str | None = None
    """aws backend: the shared config/credentials profile to use instead of the default chain's choice."""
    aws_role_arn: str | None = None
    """aws backend: a role to assume (AssumeRole, or AssumeRoleWithWebIdentity with aws_web_identity_token_file)."""
    aws_role_session_name: str = "dynamo-gateway"
    """Session name of the assumed role (shows in CloudTrail)."""
    aws_role_external_id: str | None = dataclasses.field(default=None, repr=False)
    """External id the role's trust policy asks for (AssumeRole only)."""
    aws_role_duration_s: int = 3600
    """Lifetime asked for the role's temporary credentials (900 to 43200 seconds)."""
    aws_web_identity_token_file: str | None = None
    """With aws_role_arn: a file holding an OIDC token (IRSA, EKS Pod Identity); re-read at every refresh."""
    aws_sts_endpoint_url: str | None = None
    """STS endpoint for the role calls (a regional or VPC endpoint, or an emulator); unset: the region's."""
    aws_credentials_refresh_s: int = 300
    """Temporary credentials are refreshed this many seconds before they expire."""

    def __post_init__(self) -> None:
        if self.backend_client not in ("aiobotocore", "lean"):
            raise SettingsError(
                f"backend_client must be aiobotocore or lean, not {self.backend_client!r}", "backend_client"
            )
        if self.event_loop not in ("asyncio", "uvloop"):
            raise SettingsError(
                f"event_loop must be asyncio or uvloop, not {self.event_loop!r}", "event_loop"
            )
        if self.workers > 1 and (self.backend != "aws" or self.port == 0):
            raise SettingsError("workers > 1 needs the aws backend and a fixed port", "workers")
        if self.backend not in BACKENDS:
            raise SettingsError(
                f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}", "backend"
            )
        self._check_recording()
        at_least_one = (
            "record_max_bytes",
            "max_concurrency",
            "scan_concurrency",
            "backend_max_attempts",
            "max_message_bytes",
            "retry_throughput_attempts",
            "retry_internal_error_attempts",
            "retry_unavailable_attempts",
            "retry_conflict_attempts",
            "breaker_failure_threshold",
            "breaker_success_threshold",
            "batch_max_items",
            "batch_concurrency",
            "workers",
            "max_pending_rpcs",
        )
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1", name)
        for name in (
            "shutdown_delay_s",
            "max_connection_age_s",
            "max_connection_age_grace_s",
            "max_connection_idle_s",
            "keepalive_time_s",
            "keepalive_timeout_s",
            "stream_stall_timeout_s",
        ):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must not be negative", name)
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"port {self.port} is out of range", "port")
        self._check_observability()
        self._check_security()

    def _check_recording(self) -> None:
        choices = {
            "record_mode": RECORD_MODES,
            "replay_match": REPLAY_MATCHES,
            "record_values": RECORD_VALUES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise SettingsError(
                    f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}", name
                )
        if self.backend == "replay" and not self.cassette:
            raise SettingsError("the replay backend needs a cassette (--cassette PATH)", "cassette")
        if self.cassette and self.backend != "replay":
            raise SettingsError(
                "cassette is the replay backend's: add --backend replay (or use --record PATH)", "cassette"
            )
        if self.record and self.backend == "replay":
            raise SettingsError(
                "the replay backend records into its own cassette: use --record-mode new_episodes or once",
                "record",
            )
        if self.record and self.workers > 1:
            raise SettingsError("record writes one cassette from one process: it needs workers 1", "record")
        if self.record_keep_files < 0:
            raise SettingsError("record_keep_files must not be negative", "record_keep_files")
        if self.regions_file and (self.record or self.backend == "replay"):
            raise SettingsError(
                "a cassette holds one region's calls: record and replay work without a regions file",
                "regions_file",
            )

    def _check_observability(self) -> None:
        if not -1 <= self.metrics_port <= 65535:
            raise SettingsError(f"metrics_port {self.metrics_port} is out of range", "metrics_port")
        choices = {
            "trace_key_values": ("hashed", "plain", "off"),
            "log_format": ("auto", "json", "console"),
            "log_level": ("TRACE", "DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL"),
        }
        for name, allowed in choices.items():
            if getattr(self, name).upper() not in (choice.upper() for choice in allowed):
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}", name)
        for name in ("operation_log_every", "hot_partition_window", "sequential_key_window"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must not be negative", name)
        if self.hot_partition_top_k < 1:
            raise SettingsError("hot_partition_top_k must be at least 1", "hot_partition_top_k")
        if not 0 < self.hot_partition_share <= 1:
            raise SettingsError("hot_partition_share must be above 0 and at most 1", "hot_partition_share")

    def _check_security(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            raise SettingsError("tls_cert_file and tls_key_file go together", "tls_cert_file")
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise SettingsError(
                "tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file", "tls_client_ca_file"
            )
        if self.jwt_jwks_file and not (self.jwt_issuer and self.jwt_audiences):
            # A JWT without issuer and audience checks would accept tokens minted for any other service.
            raise SettingsError("jwt_jwks_file needs jwt_issuer and jwt_audiences", "jwt_jwks_file")
        if self.reflection not in ("open", "authenticated", "off"):
            raise SettingsError("reflection must be one of open, authenticated, off", "reflection")
        for name in ("max_inflight_rpcs", "max_inflight_rpcs_per_caller", "jwt_leeway_s"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{name} must not be negative", name)
        for name in ("max_request_bytes", "max_metadata_bytes", "aws_credentials_refresh_s"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1", name)
        if self.security_reload_interval_s <= 0:
            raise SettingsError("security_reload_interval_s must be positive", "security_reload_interval_s")
        if not 900 <= self.aws_role_duration_s <= 43200:
            raise SettingsError(
                "aws_role_duration_s must be between 900 and 43200 (STS's range)", "aws_role_duration_s"
            )
        if self.aws_credentials_refresh_s >= self.aws_role_duration_s:
            raise SettingsError(
                "aws_credentials_refresh_s must be shorter than aws_role_duration_s",
                "aws_credentials_refresh_s",
            )
        if self.aws_web_identity_token_file and not self.aws_role_arn:
            raise SettingsError(
                "aws_web_identity_token_file needs aws_role_arn", "aws_web_identity_token_file"
            )
        if len(self.aws_role_session_name) < 2:
            raise SettingsError("aws_role_session_name needs at least 2 characters", "aws_role_session_name")


_FIELDS = {f.name: f for f in dataclasses.fields(Settings)}


def _convert(name: str, raw: Any, source: str) -> Any:
    kind = _FIELDS[name].type
    # A YAML file hands over typed values: 8080.7 or true must not pass as an int.
    wrong_yaml_type = isinstance(raw, bool) or (kind == "int" and isinstance(raw, float))
    try:
        if wrong_yaml_type:
            raise ValueError
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if raw in (None, "") and "None" in kind:
            return None
        if not isinstance(raw, str | int | float) or raw == "":
            raise ValueError
        return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{name} from {source}: {raw!r} is not a valid {kind}", name) from None


def _from_file(path: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(pathlib.Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise SettingsError(f"config file {path}: {error}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"config file {path}: expected a mapping of settings")
    unknown = sorted(set(document) - set(_FIELDS))
    if unknown:
        raise SettingsError(f"config file {path}: unknown settings {unknown}")
    return {name: _convert(name, value, path) for name, value in document.items()}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dynamo-gateway",
        description="A gRPC gateway in front of DynamoDB.",
        epilog=f"Every flag also reads from {ENV_PREFIX}<NAME> (e.g. {ENV_PREFIX}PORT).",
    )
    parser.add_argument("--config", help="YAML file of settings")
    for name in _FIELDS:
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, default=None, help=_doc(name))
    return parser


def _doc(name: str) -> str:
    docs = _field_docs()
    default = _FIELDS[name].default
    return f"{docs.get(name, '')} (default: {default})"


@functools.cache
def _field_docs() -> dict[str, str]:
    """Reads the docstring under each field, so --help and the code say the same thing."""

    tree = ast.parse(inspect.getsource(Settings))
    body = next(node.body for node in tree.body if isinstance(node, ast.ClassDef))
    docs = {}
    for previous, node in itertools.pairwise(body):
        match previous, node:
            case ast.AnnAssign(target=ast.Name(id=name)), ast.Expr(value=ast.Constant(value=str(doc))):
                docs[name] = doc
    return docs


def load_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    args = _parser().parse_args(list(argv))
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    config_file = args.config or environ.get(f"{ENV_PREFIX}CONFIG")
    if config_file:
        values.update(_from_file(config_file))
        sources.update(dict.fromkeys(values, f"config file {config_file}"))
    if "region" not in values and (
        aws_region := environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    ):
        values["region"] = aws_region
        sources["region"] = "AWS_REGION"
    for name in _FIELDS:
        env_name = f"{ENV_PREFIX}{name.upper()}"
        if env_name in environ:
            values[name] = _convert(name, environ[env_name], env_name)
            sources[name] = env_name
    for name in _FIELDS:
        flag_value = getattr(args, name)
        if flag_value is not None:
            flag = f"--{name.replace('_', '-')}"
            values[name] = _convert(name, flag_value, flag)
            sources[name] = flag
    try:
        return Settings(**values)
    except SettingsError as error:
        source = sources.get(error.setting or "", "the defaults")
        raise SettingsError(f"{error} (from {source})", error.setting) from None
