"""deploy/kubernetes/: the Helm chart, rendered, validated against Kubernetes' API schemas, and run.

No cluster runs where the tests run, so the chart is proven in two ways:

- `helm template` (.tools/bin/helm, from scripts/bootstrap.sh) renders it: with the defaults, with
  deploy/kubernetes/examples/eks-values.yaml and the repository's example files, and with every
  option on. Each object is validated offline against the Kubernetes API schemas that
  kubernetes-validate ships (a dev dependency), strictly (an unknown field fails), for the oldest
  Kubernetes the chart supports (Chart.yaml's kubeVersion) and the newest the validator knows. The
  Prometheus Operator's monitors have no schema there: their selectors and ports are checked
  against the Deployment and the Service instead. Broken values must fail that validation.
- the rendered Deployment's container runs here as the kubelet would run it: its command and args;
  the image's environment (the Dockerfile's ENV), then the container's `env` (Secret references
  resolved from the rendered Secrets); its volumes' ConfigMap and Secret items written as files.
  Only places change: each mount path is a directory under tmp_path, a pod's address is a
  loopback address of its own (127.0.0.2, 127.0.0.3: two pods on the same port, as in a
  cluster), and the programs are the venv's and .tools/bin's. The probes run as the kubelet runs
  them (a native gRPC probe is grpc-health-probe against the pod's address; an exec probe, its
  command), and the preStop hook runs before the SIGTERM.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import itertools
import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import yaml

from dynamo_gateway import GatewayClient
from dynamo_gateway_server import config as gateway_config
from dynamo_gateway_server.config import ENV_PREFIX, Settings, SettingsError, load_settings
from tests.e2e.test_compose import _image_entrypoint, _image_env
from tests.e2e.test_readme import _spawn, _stop
from tests.support.certs import issue, server_cert
from tests.support.emulators import DynaliteProcess
from tests.support.ports import LOGGED_PORT_ENV, logged_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "kubernetes" / "dynamo-gateway"
EKS_VALUES = ROOT / "deploy" / "kubernetes" / "examples" / "eks-values.yaml"
TOOLS = ROOT / ".tools" / "bin"
HELM = TOOLS / "helm"
HEALTH_PROBE = TOOLS / "grpc-health-probe"
RELEASE, NAMESPACE = "gw", "dynamo-gateway"


def _oldest_supported() -> str:
    """Chart.yaml's kubeVersion floor (>=1.27.0-0: 1.27.0)."""
    floor = re.search(r">=\s*(\d+\.\d+)", yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"])
    assert floor, "Chart.yaml's kubeVersion names no lower bound"
    return f"{floor[1]}.0"


# The oldest Kubernetes the chart supports, and the newest whose schemas the validator ships.
NEWEST = kubernetes_validate.latest_version()
KUBE_VERSIONS = (_oldest_supported(), NEWEST)
# The programs the container runs, and what runs them here.
LOCAL_PROGRAMS = {
    "dynamo-gateway": str(pathlib.Path(sys.executable).with_name("dynamo-gateway")),
    "grpc-health-probe": str(HEALTH_PROBE),
    "sleep": "sleep",
}
EVERY_INTERFACE, LOOPBACK = "0.0.0.0", "127.0.0.1"
POD_ADDRESSES = ("127.0.0.2", "127.0.0.3")
START_TIMEOUT_S = 30.0
CALLERS = 50
# The example files a platform engineer hands to --set-file.
EXAMPLE_FILES = {
    "tables.file": ROOT / "examples" / "tables.yaml",
    "policy.file": ROOT / "examples" / "policy.yaml",
    "auth.tokens.file": ROOT / "examples" / "tokens.yaml",
}
TABLE = "k8s"
TABLES_FILE = {"tables": [{"name": TABLE, "attributes": {"pk": "S"}, "key": {"partition": "pk"}}]}
# Global tables over three regions; the pods' own (config.region, us-east-1 by default) among them.
REGIONS_FILE = {
    "regions": {"us-east-1": {}, "eu-west-1": {}, "ap-southeast-2": {}},
    "evacuated": [],
    "global_tables": {"orders": {"write_mode": "one", "primary": "us-east-1"}},
}


# ------------------------------------------------------------------ rendering and validating


def _helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def _render_command(
    values: Mapping[str, Any], tmp_path: pathlib.Path, kube_version: str, set_files: Mapping[str, Any]
) -> list[str]:
    values_file = tmp_path / f"values-{len(list(tmp_path.glob('values-*.yaml')))}.yaml"
    values_file.write_text(yaml.safe_dump(dict(values)))
    command = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE, "--kube-version", kube_version]
    command += ["--values", str(values_file)]
    for name, path in set_files.items():
        command += ["--set-file", f"{name}={path}"]
    return command


def _render(
    tmp_path: pathlib.Path,
    values: Mapping[str, Any] | None = None,
    *,
    kube_version: str = NEWEST,
    set_files: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The objects `helm template` renders for these values."""
    command = _render_command(values or {}, tmp_path, kube_version, set_files or {})
    rendered = _helm(*command)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def _schema_errors(docs: Sequence[Mapping[str, Any]], kube_version: str) -> tuple[list[str], list[str]]:
    """(what fails the API schemas, the kinds that have no schema there)."""
    errors, unchecked = [], []
    for doc in docs:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        try:
            kubernetes_validate.validate(dict(doc), kube_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            unchecked.append(doc["kind"])
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            errors.append(f"{name} (Kubernetes {kube_version}): {path}: {error.message}")
    return errors, unchecked


def _one(docs: Sequence[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return found


def _kinds(docs: Sequence[Mapping[str, Any]]) -> list[str]:
    return sorted(doc["kind"] for doc in docs)


def _container(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    (container,) = _one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _port(container: Mapping[str, Any], name: str) -> int:
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return int(port)


def _free_ports(count: int = 2) -> list[int]:
    """Ports nothing listens on, on any address (two pods bind each, on their own addresses)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for held in sockets:
            held.bind((EVERY_INTERFACE, 0))
        return [int(held.getsockname()[1]) for held in sockets]


def _all_options_values() -> dict[str, Any]:
    """Every template switched on: monitors, mTLS with a probe certificate, JWTs, secrets, extras."""
    return {
        "tables": {"file": TABLES_FILE},
        "policy": {"file": {"rules": [{"callers": ["token:ci"], "tables": ["*"], "access": "read-write"}]}},
        "regions": {"file": REGIONS_FILE},
        "auth": {
            "tokens": {"file": {"tokens": [{"name": "ci", "sha256": "0" * 64}]}},
            "jwt": {"jwks": '{"keys": []}', "issuer": "https://issuer.test", "audiences": ["a", "b"]},
        },
        "tls": {
            "secretName": "gw-tls",
            "clientCA": {"secretName": "gw-client-ca", "key": "bundle.pem"},
            "probeCertificateSecretName": "gw-probe-tls",
        },
        "secretConfig": {"key_hash_salt": "salt", "aws_role_external_id": "external"},
        "existingSecretConfig": "more-settings",
        "env": {"OTEL_SERVICE_NAME": "dynamo-gateway"},
        "extraEnv": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "extraArgs": ["--log-level", "DEBUG"],
        "autoscaling": {"enabled": False, "targetMemoryUtilizationPercentage": 80},
        "podDisruptionBudget": {"minAvailable": 1},
        "metrics": {"podMonitor": {"enabled": True}, "serviceMonitor": {"enabled": True}},
        "extraVolumes": [{"name": "cassettes", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "cassettes", "mountPath": "/var/lib/dynamo-gateway"}],
        "priorityClassName": "high",
        "imagePullSecrets": [{"name": "registry"}],
        "image": {"digest": "sha256:" + "a" * 64},
    }


# Everything optional off: no metrics, no headless Service, no HPA, PDB, policy or account.
MINIMAL = {
    "ports": {"grpc": 8443, "metrics": 0},
    "service": {"headless": {"enabled": False}},
    "autoscaling": {"enabled": False},
    "podDisruptionBudget": {"enabled": False},
    "networkPolicy": {"enabled": False},
    "serviceAccount": {"create": False},
    "topologySpreadConstraints": [],
    "config": {"backend": "memory"},
}
SCENARIOS = {
    "defaults": ({}, {}),
    "minimal": (MINIMAL, {}),
    "eks-example": (yaml.safe_load(EKS_VALUES.read_text()), EXAMPLE_FILES),
    "every-option": (_all_options_values(), {}),
}


# ------------------------------------------------------------------ the chart's objects


def test_the_chart_passes_helm_lint() -> None:
    linted = _helm("lint", "--strict", str(CHART), "--kube-version", NEWEST)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_rendered_manifests_pass_the_kubernetes_api_schemas(
    scenario: str, kube_version: str, tmp_path: pathlib.Path
) -> None:
    values, set_files = SCENARIOS[scenario]
    docs = _render(tmp_path, values, kube_version=kube_version, set_files=set_files)
    errors, unchecked = _schema_errors(docs, kube_version)
    assert errors == []
    # Only the Prometheus Operator's kinds lack a schema; those are checked against the pods.
    assert set(unchecked) <= {"PodMonitor", "ServiceMonitor"}
    deployment = _one(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    for kind in unchecked:
        monitor = _one(docs, kind)
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), f"the {kind} selects no gateway pod"
        (endpoint,) = monitor["spec"]["podMetricsEndpoints" if kind == "PodMonitor" else "endpoints"]
        assert set(endpoint) <= {"port", "path", "interval", "scrapeTimeout"}
        assert endpoint["path"] == "/metrics"
        if kind == "PodMonitor":
            assert endpoint["port"] in {p["name"] for p in _container(docs)["ports"]}
        else:
            service = _one(docs, "Service", f"{RELEASE}-dynamo-gateway")
            assert selector.items() <= service["metadata"]["labels"].items()
            assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_default_install_has_every_object_the_issue_asks_for(tmp_path: pathlib.Path) -> None:
    docs = _render(tmp_path)
    assert _kinds(docs) == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
            "Service",
            "ServiceAccount",
        ]
    )
    everything = _render(tmp_path, _all_options_values())
    assert set(_kinds(everything)) - set(_kinds(docs)) == {"PodMonitor", "ServiceMonitor", "Secret"}
    config_maps = {d["metadata"]["name"] for d in everything if d["kind"] == "ConfigMap"}
    names = ("config", "tables", "policy", "regions", "jwks")
    assert config_maps == {f"{RELEASE}-dynamo-gateway-{n}" for n in names}
    secrets = {d["metadata"]["name"] for d in everything if d["kind"] == "Secret"}
    assert secrets == {f"{RELEASE}-dynamo-gateway-{n}" for n in ("settings", "tokens")}


@pytest.mark.parametrize(
    ("values", "says"),
    [
        # Helm's values schema lets free-form Kubernetes fields through: the API schemas do not.
        ({"resources": {"requests": {"cpu": True}}}, "resources.requests.cpu"),
        ({"securityContext": {"runAsNonRot": True}}, "runAsNonRot"),
        ({"extraVolumeMounts": [{"name": "data"}]}, "'mountPath' is a required property"),
        ({"podSecurityContext": {"runAsUser": "gateway"}}, "securityContext.runAsUser"),
    ],
    ids=["quantity-not-a-quantity", "misspelt-field", "missing-field", "wrong-type"],
)
def test_an_invalid_manifest_fails_validation(
    values: dict[str, Any], says: str, tmp_path: pathlib.Path
) -> None:
    docs = _render(tmp_path, values)
    errors, _ = _schema_errors(docs, NEWEST)
    assert len(errors) == 1 and says in errors[0], errors
    assert errors[0].startswith("Deployment/")


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"config": {"grace_perod_s": 3}}, "additional properties 'grace_perod_s' not allowed"),
        ({"config": {"max_inflight_rpcs": 1.5}}, "/config/max_inflight_rpcs"),
        ({"config": {"backend": "dynamodb"}}, "/config/backend"),
        ({"config": {"port": 8080}}, "config.port is set by the chart: use ports.grpc"),
        ({"config": {"key_hash_salt": "x"}}, "use secretConfig.key_hash_salt"),
        ({"config": {"regions_file": "/r.yaml"}}, "use regions.file or regions.existingConfigMap"),
        ({"tls": {"clientCA": {"secretName": "ca"}}}, "tls.clientCA (mTLS) needs tls.secretName"),
        ({"auth": {"jwt": {"jwks": "{}"}}}, "auth.jwt needs issuer and audiences"),
        ({"lifecycle": {"terminationGracePeriodSeconds": 10}}, "shorter than preStopSleepSeconds"),
    ],
    ids=[
        "misspelt-setting",
        "float-for-int",
        "unknown-backend",
        "owned-setting",
        "secret-in-configmap",
        "owned-file",
        "mtls-without-tls",
        "jwt-without-claims",
        "grace-too-short",
    ],
)
def test_bad_values_stop_the_render(values: dict[str, Any], says: str, tmp_path: pathlib.Path) -> None:
    rendered = _helm(*_render_command(values, tmp_path, NEWEST, {}))
    assert rendered.returncode != 0 and says in rendered.stderr, rendered.stderr


def test_the_values_schema_lists_every_setting_of_the_gateway() -> None:
    """values.schema.json's `config` is how a misspelt setting fails `helm install`: it must know
    every setting of config.py, with its type (a new setting needs a line there)."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    properties = schema["properties"]["config"]["properties"]
    types = {"int": "integer", "float": "number", "str": "string", "str | None": "string"}
    expected = {f.name: [types[str(f.type)], "null"] for f in dataclasses.fields(Settings)}
    assert {name: p["type"] for name, p in properties.items()} == expected
    assert schema["properties"]["config"]["additionalProperties"] is False
    choices = {
        "backend": gateway_config.BACKENDS,
        "record_mode": gateway_config.RECORD_MODES,
        "replay_match": gateway_config.REPLAY_MATCHES,
        "record_values": gateway_config.RECORD_VALUES,
    }
    for name, allowed in choices.items():
        assert properties[name]["enum"] == [*allowed, None], name


def test_the_image_is_reproducible_and_carries_the_probe() -> None:
    """Every base pinned by digest, the health probe at the version the tests run (bootstrap's),
    OCI labels, and the uid the chart runs as."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, re.MULTILINE)
    assert bases and all(re.search(r"@sha256:[0-9a-f]{64}$", base) for base in bases), bases
    assert all("/" not in base.split("@")[0] for base in bases), "bases come from the default registry"
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    (wanted,) = re.findall(r"^HEALTH_PROBE_VERSION=(\S+)", bootstrap, re.MULTILINE)
    assert f"ARG HEALTH_PROBE_VERSION={wanted}" in dockerfile
    assert "COPY --from=probe /out/grpc-health-probe /usr/local/bin/grpc-health-probe" in dockerfile
    assert "pip install -c constraints.txt" in dockerfile
    for label in ("title", "version", "revision", "description"):
        assert f"org.opencontainers.image.{label}=" in dockerfile, label
    assert re.search(r"^USER 10001:10001$", dockerfile, re.MULTILINE)


# ------------------------------------------------------------------ the Deployment, as a process here


@dataclasses.dataclass
class Pod:
    """The rendered Deployment's container as the kubelet would start it, at `address`."""

    address: str
    argv: list[str]
    env: dict[str, str]
    places: dict[str, str]  # container path or address -> the local one
    container: dict[str, Any]
    spec: dict[str, Any]

    def localized(self, argv: Sequence[str]) -> list[str]:
        """A command of the container (a probe's, the preStop hook's) as it runs here."""
        local = [_replaced(word, self.places) for word in argv]
        return [LOCAL_PROGRAMS.get(local[0], local[0]), *local[1:]]

    def probe_command(self, probe: Mapping[str, Any]) -> list[str]:
        """What the kubelet does for a probe: a native gRPC probe asks the pod's address."""
        if "exec" in probe:
            return self.localized(probe["exec"]["command"])
        timeout = probe.get("timeoutSeconds", 1)
        return [
            str(HEALTH_PROBE),
            f"-addr={self.address}:{probe['grpc']['port']}",
            f"-service={probe['grpc'].get('service', '')}",
            f"-connect-timeout={timeout}s",
            f"-rpc-timeout={timeout}s",
        ]

    def settings(self) -> Settings:
        return load_settings(self.argv[1:], self.env)


def _replaced(text: str, places: Mapping[str, str]) -> str:
    """`text` with each container place swapped for its local one, in one pass (a local path, under
    /tmp, must not be taken for the container's /tmp), the longest place first."""
    if not places:
        return text
    pattern = "|".join(re.escape(place) for place in sorted(places, key=len, reverse=True))
    return re.sub(pattern, lambda found: places[found[0]], text)


def _secret_data(doc: Mapping[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
    return {**data, **(doc.get("stringData") or {})}


def _pod(
    docs: Sequence[dict[str, Any]],
    root: pathlib.Path,
    address: str,
    external_secrets: Mapping[str, Mapping[str, str]] | None = None,
) -> Pod:
    """The container, its files under `root`, its environment: what the kubelet would give it.

    `external_secrets` are Secrets the chart names but does not make (a cert-manager certificate).
    """
    spec = _one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: _secret_data(d) for d in docs if d["kind"] == "Secret"}
    secrets.update(external_secrets or {})

    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    places: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        local = root / mount["name"]
        local.mkdir(parents=True)
        if "configMap" in volume:
            data = config_maps[volume["configMap"]["name"]]
            items = volume["configMap"].get("items")
        elif "secret" in volume:
            data = secrets[volume["secret"]["secretName"]]
            items = volume["secret"].get("items")
        else:
            assert set(volume) == {"name", "emptyDir"}, f"no local stand-in for volume {volume}"
            data, items = {}, None
        for item in items or [{"key": key, "path": key} for key in data]:
            (local / item["path"]).write_text(data[item["key"]])
        places[mount["mountPath"]] = str(local)
    places.update({EVERY_INTERFACE: address, LOOPBACK: address})

    # The image's environment, then the container's (references resolved as the kubelet does).
    declared = dict(_image_env())
    for source in container.get("envFrom", []):
        declared.update(secrets[source["secretRef"]["name"]])
    fields = {"metadata.name": f"{RELEASE}-dynamo-gateway-0", "metadata.namespace": NAMESPACE}
    for variable in container.get("env", []):
        if "value" in variable:
            declared[variable["name"]] = variable["value"]
        elif "fieldRef" in variable["valueFrom"]:
            declared[variable["name"]] = fields[variable["valueFrom"]["fieldRef"]["fieldPath"]]
        else:
            reference = variable["valueFrom"]["secretKeyRef"]
            declared[variable["name"]] = secrets[reference["name"]][reference["key"]]
    host = {k: v for k, v in os.environ.items() if not k.startswith((ENV_PREFIX, "AWS_"))}
    env = {**host, **{name: _replaced(value, places) for name, value in declared.items()}}

    command = [*container["command"], *container["args"]]
    argv = [_replaced(word, places) for word in command]
    argv[0] = LOCAL_PROGRAMS[argv[0]]
    return Pod(address, argv, env, places, container, spec)


@contextlib.contextmanager
def _running(pod: Pod, log: pathlib.Path) -> Iterator[subprocess.Popen[bytes]]:
    process = _spawn(pod.argv, log, pod.env)
    try:
        yield process
    finally:
        _stop(process)


def _probe(pod: Pod, probe: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(pod.probe_command(probe), capture_output=True, text=True, timeout=30)


def _wait_started(pod: Pod, process: subprocess.Popen[bytes], log: pathlib.Path) -> None:
    """The startup probe: it must pass within the kubelet's budget, periodSeconds x failureThreshold
    (asked more often here than the kubelet would; the outcome is the same)."""
    probe = pod.container["startupProbe"]
    deadline = time.monotonic() + probe["periodSeconds"] * probe["failureThreshold"]
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the gateway exited with {process.returncode}:\n{log.read_text()}")
        if _probe(pod, probe).returncode == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"the startup probe never passed:\n{log.read_text()}")


def _test_values(dynalite: DynaliteProcess, grpc_port: int, metrics_port: int) -> dict[str, Any]:
    """The chart's defaults but for the DynamoDB endpoint (the emulator) and its dummy keys, and
    the ports (free ones, so that the test needs neither 50051 nor 9464)."""
    return {
        "ports": {"grpc": grpc_port, "metrics": metrics_port},
        "service": {"port": grpc_port},
        "config": {"endpoint_url": dynalite.endpoint_url, "region": "us-east-1"},
        "env": {"AWS_ACCESS_KEY_ID": "dummy", "AWS_SECRET_ACCESS_KEY": "dummy"},
        "tables": {"file": yaml.safe_dump(TABLES_FILE)},
    }


def test_everything_optional_can_be_turned_off(tmp_path: pathlib.Path) -> None:
    docs = _render(tmp_path, MINIMAL)
    assert _kinds(docs) == ["ConfigMap", "Deployment", "Service"]
    settings = _pod(docs, tmp_path / "pod", POD_ADDRESSES[0]).settings()
    assert (settings.port, settings.metrics_port, settings.backend) == (8443, -1, "memory")
    container = _container(docs)
    assert [p["name"] for p in container["ports"]] == ["grpc"]
    assert container["readinessProbe"]["grpc"]["port"] == 8443
    assert _one(docs, "Deployment")["spec"]["replicas"] == 2


def test_the_pods_run_the_images_command_with_production_settings(tmp_path: pathlib.Path) -> None:
    docs = _render(tmp_path)
    pod = _pod(docs, tmp_path / "pod", POD_ADDRESSES[0])
    spec, container = pod.spec, pod.container
    # The image's entry point is the command the Deployment runs.
    assert container["command"] == _image_entrypoint()

    settings = pod.settings()
    assert (settings.backend, settings.log_format, settings.host) == ("aws", "json", pod.address)
    assert (settings.port, settings.metrics_port) == (_port(container, "grpc"), _port(container, "metrics"))
    assert (settings.port, settings.metrics_port) == (50051, 9464)
    # JSON lines at INFO: what log pipelines (and logged_port) read.
    for variable, value in LOGGED_PORT_ENV.items():
        assert str(getattr(settings, variable.removeprefix(ENV_PREFIX).lower())).upper() == value.upper()
    # No file given: no TLS, no policy, no tables; given, each is on (below, and in the runs).
    assert settings.tls_cert_file is settings.policy_file is settings.tables_file is None
    on = _pod(
        _render(tmp_path, {"tls": {"secretName": "t"}}, set_files=EXAMPLE_FILES),
        tmp_path / "on",
        POD_ADDRESSES[0],
        {"t": {"tls.crt": "", "tls.key": ""}},
    ).settings()
    assert on.tls_cert_file and on.tls_key_file and on.policy_file and on.tables_file and on.auth_tokens_file
    assert pathlib.Path(on.policy_file).read_text() == EXAMPLE_FILES["policy.file"].read_text()

    # Non-root, read-only, no capabilities, bounded.
    assert spec["securityContext"]["runAsNonRoot"] and spec["securityContext"]["runAsUser"] == 10001
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
    assert spec["automountServiceAccountToken"] is False

    # Native gRPC probes on the gRPC port; readiness asks for the DynamoDB service.
    for name in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[name]["grpc"]["port"] == settings.port, name
    assert container["readinessProbe"]["grpc"]["service"] == "dynamo_gateway.v1.DynamoDBService"

    # SIGKILL only after the preStop sleep, the shutdown delay and the grace period.
    (sleep, seconds) = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    shutdown_s = int(seconds) + settings.shutdown_delay_s + settings.grace_period_s
    assert spec["terminationGracePeriodSeconds"] > shutdown_s
    assert (settings.grace_period_s, settings.shutdown_delay_s) == (
        Settings.grace_period_s,
        Settings.shutdown_delay_s,
    )
    # Left out of the values, the chart's shutdown settings are the gateway's defaults.
    bare = _render(tmp_path, {"config": {"grace_period_s": None, "shutdown_delay_s": None}})
    args = _container(bare)["args"]
    assert float(args[args.index("--grace-period-s") + 1]) == Settings.grace_period_s
    assert float(args[args.index("--shutdown-delay-s") + 1]) == Settings.shutdown_delay_s

    # Service links would hand the gateway DYNAMO_GATEWAY_PORT=tcp://... for a Service named
    # dynamo-gateway, which it refuses as its port: they are off.
    assert spec["enableServiceLinks"] is False
    with pytest.raises(SettingsError, match="DYNAMO_GATEWAY_PORT"):
        load_settings([], {f"{ENV_PREFIX}PORT": "tcp://10.0.0.1:50051"})

    # Spread over zones and nodes.
    keys = {c["topologyKey"] for c in spec["topologySpreadConstraints"]}
    assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_every_setting_is_reachable_from_the_values(tmp_path: pathlib.Path) -> None:
    """Each setting the chart does not set itself goes through `config` into the --config file,
    which the gateway's own loader reads; the secrets go through secretConfig; the rest are flags."""
    owned = {
        "host", "port", "metrics_port", "tables_file", "policy_file", "regions_file", "auth_tokens_file",
        "jwt_jwks_file", "jwt_issuer", "jwt_audiences", "tls_cert_file", "tls_key_file",
        "tls_client_ca_file", "key_hash_salt", "aws_role_external_id", "grace_period_s",
        "shutdown_delay_s",
    }  # fmt: skip
    fields = {f.name: f.default for f in dataclasses.fields(Settings)}
    # A value the gateway accepts for each (its default, or a made-up one where that is None).
    config = {name: default for name, default in fields.items() if name not in owned}
    config.update(endpoint_url="http://dynamodb.test:8000", otlp_endpoint="http://collector:4317")
    config.update(aws_profile="p", aws_role_arn="arn:aws:iam::123456789012:role/r")
    config.update(aws_sts_endpoint_url="http://sts.test", record=None, cassette=None)
    config.update(aws_web_identity_token_file="/var/run/secrets/token")
    config = {name: value for name, value in config.items() if value is not None}
    values = _all_options_values()
    values["config"] = {**config, "grace_period_s": 12.5, "shutdown_delay_s": 2}
    values["existingSecretConfig"] = ""
    docs = _render(tmp_path, values)
    assert _schema_errors(docs, NEWEST)[0] == []
    certificates = {"tls.crt": "", "tls.key": "", "bundle.pem": ""}
    pod = _pod(
        docs,
        tmp_path / "pod",
        POD_ADDRESSES[0],
        {"gw-tls": certificates, "gw-client-ca": certificates, "gw-probe-tls": certificates},
    )
    settings = pod.settings()
    for name, value in config.items():
        if name != "log_level":  # extraArgs set it too, and flags win
            assert getattr(settings, name) == value, name
    assert (settings.grace_period_s, settings.shutdown_delay_s) == (12.5, 2)
    assert settings.key_hash_salt == "salt" and settings.aws_role_external_id == "external"
    assert (settings.jwt_issuer, settings.jwt_audiences) == ("https://issuer.test", "a,b")
    files = {name: getattr(settings, name) for name in owned if name.endswith("_file")}
    assert all(files.values()) and all(pathlib.Path(path).is_file() for path in files.values()), files
    assert settings.log_level == "DEBUG"  # extraArgs come last: they win
    # 12.5 s of grace and 2 s of delay: the pod's grace grows with them.
    assert pod.spec["terminationGracePeriodSeconds"] == 5 + 2 + 13 + 4
    # Each written setting is one of the gateway's: its own loader refuses any other.
    (config_file,) = [d for d in docs if d["metadata"]["name"].endswith("-config")]
    written = yaml.safe_load(config_file["data"]["gateway.yaml"])
    assert set(written) == set(config) | {"jwt_issuer", "jwt_audiences"}


def test_the_regions_file_is_mounted_and_an_evacuation_rolls_no_pod(tmp_path: pathlib.Path) -> None:
    """regions.file, like the policy, is a ConfigMap the running gateway re-reads: evacuating a
    region (a new `evacuated` list) must change that ConfigMap and nothing in the pod template,
    or every pod would restart while traffic moves away from the region."""
    docs = _render(tmp_path, {"regions": {"file": REGIONS_FILE}})
    for kube_version in KUBE_VERSIONS:
        assert _schema_errors(docs, kube_version)[0] == []
    config_map = _one(docs, "ConfigMap", f"{RELEASE}-dynamo-gateway-regions")
    assert yaml.safe_load(config_map["data"]["regions.yaml"]) == REGIONS_FILE
    # Given as text (--set-file), the file is kept as written, comments and all.
    example = ROOT / "examples" / "regions.yaml"
    as_text = _render(tmp_path, set_files={"regions.file": example})
    written = _one(as_text, "ConfigMap", f"{RELEASE}-dynamo-gateway-regions")["data"]["regions.yaml"]
    assert written.strip() == example.read_text().strip()

    # Mounted from that ConfigMap and passed as --regions-file; the gateway reads it there.
    container, spec = _container(docs), _one(docs, "Deployment")["spec"]["template"]["spec"]
    args = container["args"]
    path = args[args.index("--regions-file") + 1]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "regions"]
    assert (mount["mountPath"], mount["readOnly"]) == (str(pathlib.PurePosixPath(path).parent), True)
    assert "subPath" not in mount  # a subPath mount never sees the ConfigMap's updates
    (volume,) = [v for v in spec["volumes"] if v["name"] == "regions"]
    assert volume["configMap"] == {
        "name": config_map["metadata"]["name"],
        "items": [{"key": "regions.yaml", "path": pathlib.PurePosixPath(path).name}],
    }
    settings = _pod(docs, tmp_path / "pod", POD_ADDRESSES[0]).settings()
    assert (
        settings.regions_file
        and yaml.safe_load(pathlib.Path(settings.regions_file).read_text()) == REGIONS_FILE
    )
    assert settings.region in REGIONS_FILE["regions"]

    # Evacuating eu-west-1: a new ConfigMap, the same pod template (checksums included).
    evacuated = _render(tmp_path, {"regions": {"file": {**REGIONS_FILE, "evacuated": ["eu-west-1"]}}})
    moved = _one(evacuated, "ConfigMap", f"{RELEASE}-dynamo-gateway-regions")
    assert yaml.safe_load(moved["data"]["regions.yaml"])["evacuated"] == ["eu-west-1"]
    before, after = (_one(d, "Deployment")["spec"]["template"] for d in (docs, evacuated))
    annotations = before["metadata"]["annotations"]
    assert {"checksum/config", "checksum/secret-config"} <= annotations.keys()
    assert after["metadata"]["annotations"] == annotations
    assert after == before

    # A ConfigMap of the operator's: mounted by name, none rendered; no file: no flag, no volume.
    theirs = _render(tmp_path, {"regions": {"existingConfigMap": "failover-regions"}})
    assert [d for d in theirs if d["metadata"]["name"].endswith("-regions")] == []
    (volume,) = [
        v for v in _one(theirs, "Deployment")["spec"]["template"]["spec"]["volumes"] if v["name"] == "regions"
    ]
    assert volume["configMap"]["name"] == "failover-regions"
    their_args = _container(theirs)["args"]
    assert their_args[their_args.index("--regions-file") + 1] == path
    assert _schema_errors(theirs, NEWEST)[0] == []
    default = _container(_render(tmp_path))
    assert "--regions-file" not in default["args"]
    assert "regions" not in {m["name"] for m in default["volumeMounts"]}


# ------------------------------------------------------------------ running the pods


async def test_two_pods_serve_and_a_rolling_restart_loses_no_call(
    dynalite: DynaliteProcess, tmp_path: pathlib.Path
) -> None:
    """Two pods of the rendered Deployment, on one port at two addresses (a headless Service's
    DNS answer); callers balance over both with round_robin, as the README tells them to. One pod
    is stopped as Kubernetes stops it (preStop, then SIGTERM) under CALLERS concurrent PutItems:
    every call ends OK (a call the stopping pod did not take is sent again by the client), every
    acknowledged item is there, and the pod exits before terminationGracePeriodSeconds."""
    docs = _render(tmp_path, _test_values(dynalite, *_free_ports()))
    assert _schema_errors(docs, NEWEST)[0] == []
    pods = [_pod(docs, tmp_path / f"pod-{n}", address) for n, address in enumerate(POD_ADDRESSES)]
    container, spec = pods[0].container, pods[0].spec
    grpc_port, metrics_port = _port(container, "grpc"), _port(container, "metrics")
    headless = _one(docs, "Service", f"{RELEASE}-dynamo-gateway-headless")
    assert headless["spec"]["clusterIP"] == "None"
    (headless_port,) = headless["spec"]["ports"]
    assert headless_port["port"] == grpc_port and headless_port["targetPort"] == "grpc"

    logs = [tmp_path / f"pod-{n}.log" for n in range(len(pods))]
    with _running(pods[0], logs[0]) as stopped, _running(pods[1], logs[1]) as other:
        for pod, process, log in zip(pods, (stopped, other), logs, strict=True):
            assert await asyncio.to_thread(logged_port, process, log, START_TIMEOUT_S) == grpc_port
            await asyncio.to_thread(_wait_started, pod, process, log)
            for name in ("readinessProbe", "livenessProbe"):
                probed = await asyncio.to_thread(_probe, pod, container[name])
                assert probed.returncode == 0 and "status: SERVING" in probed.stderr, (name, probed)
            # The monitors' port answers Prometheus.
            url = f"http://{pod.address}:{metrics_port}/metrics"
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                assert response.status == 200 and "# TYPE" in await response.text()

        # dns:///<headless service>:port resolves to the pods' addresses: here, the list itself.
        target = "ipv4:" + ",".join(f"{pod.address}:{grpc_port}" for pod in pods)
        round_robin = ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]}))
        acknowledged: list[str] = []
        failures: list[str] = []
        done = asyncio.Event()
        numbers = itertools.count()

        async def caller(client: GatewayClient) -> None:
            while not done.is_set():
                key = f"call-{next(numbers)}"
                try:
                    await client.put_item(TABLE, {"pk": key, "caller": "k8s"})
                except Exception as error:  # every failure is reported
                    failures.append(f"{key}: {error!r}")
                    return
                acknowledged.append(key)

        async with GatewayClient.connect(target, timeout_s=20, options=[round_robin]) as client:
            callers = [asyncio.ensure_future(caller(client)) for _ in range(CALLERS)]
            await asyncio.sleep(0.5)
            before_stop = len(acknowledged)
            # Kubernetes: the preStop hook, then SIGTERM; SIGKILL at terminationGracePeriodSeconds.
            stopping = time.monotonic()
            pre_stop = pods[0].localized(container["lifecycle"]["preStop"]["exec"]["command"])
            await asyncio.to_thread(subprocess.run, pre_stop, check=True, timeout=60)
            at_sigterm = len(acknowledged)
            os.kill(stopped.pid, signal.SIGTERM)
            exit_code = await asyncio.to_thread(stopped.wait, spec["terminationGracePeriodSeconds"])
            took_s = time.monotonic() - stopping
            at_exit = len(acknowledged)
            await asyncio.sleep(0.5)  # callers go on against the other pod
            done.set()
            await asyncio.gather(*callers)

            assert failures == []
            assert exit_code == 0, logs[0].read_text()[-4000:]
            assert took_s < spec["terminationGracePeriodSeconds"]
            assert 0 < before_stop < at_sigterm < at_exit < len(acknowledged)
            # Every acknowledged write is there, read through the pod that stays.
            missing = []
            for first in range(0, len(acknowledged), 500):
                keys = [{"pk": key} for key in acknowledged[first : first + 500]]
                found: set[str] = set()
                while keys:
                    items, unprocessed = await client.batch_get({TABLE: keys}, consistent_read=True)
                    found |= {item["pk"] for item in items.get(TABLE, [])}
                    keys = unprocessed.get(TABLE, [])
                missing += [key for key in acknowledged[first : first + 500] if key not in found]
            assert missing == []
        assert other.poll() is None, "the other pod must still serve"
    # Its shutdown, as app.py's Gateway.stop logs it: NOT_SERVING and the delay, the refusing
    # moment (calls not taken, sent again by the client to the other pod), then the grace period.
    stopped_log = logs[0].read_text()
    assert "shutting down" in stopped_log and '"stopped"' in stopped_log
    assert re.search(r"refused \d+ new calls", stopped_log)


async def test_with_tls_the_probes_speak_mtls_to_the_pod(
    dynalite: DynaliteProcess, tmp_path: pathlib.Path
) -> None:
    """With a certificate Secret (as cert-manager makes: tls.crt, tls.key, ca.crt) named for TLS
    and mTLS, the probes are grpc-health-probe commands over TLS with a client certificate; run
    as the kubelet runs them, they pass, and the same probe without a certificate is refused."""
    values = _test_values(dynalite, *_free_ports())
    values["tls"] = {"secretName": "gw-tls", "clientCA": {"secretName": "gw-tls"}}
    values.pop("tables")
    docs = _render(tmp_path, values)
    assert _schema_errors(docs, NEWEST)[0] == []
    ca = issue("cluster issuer", ca=True)
    server = server_cert(ca)
    certificate = {
        "tls.crt": server.cert_pem.decode(),
        "tls.key": server.key_pem.decode(),
        "ca.crt": ca.cert_pem.decode(),
    }
    pod = _pod(docs, tmp_path / "pod", POD_ADDRESSES[0], {"gw-tls": certificate})
    settings = pod.settings()
    assert settings.tls_cert_file and settings.tls_client_ca_file
    log = tmp_path / "pod.log"
    with _running(pod, log) as process:
        assert await asyncio.to_thread(logged_port, process, log, START_TIMEOUT_S) == settings.port
        await asyncio.to_thread(_wait_started, pod, process, log)
        for name in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = pod.container[name]
            assert "grpc" not in probe, "the kubelet's gRPC probe cannot speak TLS"
            probed = await asyncio.to_thread(_probe, pod, probe)
            assert probed.returncode == 0 and "status: SERVING" in probed.stderr, (name, probed)
        without_certificate = [
            w for w in pod.probe_command(pod.container["livenessProbe"]) if "-tls-client-" not in w
        ]
        refused = await asyncio.to_thread(
            subprocess.run, without_certificate, capture_output=True, text=True, timeout=30
        )
        assert refused.returncode != 0, refused
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, pod.spec["terminationGracePeriodSeconds"]) == 0
