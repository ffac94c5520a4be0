"""Tests of the Helm chart helm/llm-shadow, with the real Helm engine and Kubernetes schemas.

Layer: tests of a deployment artefact. No cluster and no `helm` binary: helm-python-sdk
embeds Helm v4 as a shared library (render, lint, values-schema validation), and
kubernetes-validate carries the Kubernetes OpenAPI schemas offline. Every rendered
manifest of every value combination below is validated against the schemas of a recent
Kubernetes and of 1.29 (the first with native sidecars on by default); the network is
blocked while that runs, to prove nothing is fetched.

Beyond validity, the tests assert the wiring a sidecar depends on: ports, probes, config
mounts, the legacy container's base-URL variables, secrets only by reference, the
restrictive securityContext, and the checksum annotation that rolls pods on a config
change. The chart's copy of config.json and policies/ (Helm cannot read files outside the
chart) must equal the repository's: `test_chart_files_match_the_repository` says how to
re-sync when they drift.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from helm_python import _native

from proxy.config.load import parse_config

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "llm-shadow"
PARENT = Path(__file__).resolve().parent / "charts" / "sidecar-parent"
RELEASE, NAMESPACE = "demo", "shop"
FULLNAME = f"{RELEASE}-llm-shadow"
KUBE_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())
IMAGE_UID = 10001  # the Dockerfile's USER (tests/test_dockerfile.py checks both sides)
SYNC_COMMAND = (
    "rm -rf helm/llm-shadow/files/policies && mkdir -p helm/llm-shadow/files/policies && "
    "cp config.json helm/llm-shadow/files/config.json && "
    "cp -R policies/. helm/llm-shadow/files/policies/"
)

Manifest = dict[str, Any]


# --- rendering --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def render(chart: helm.Chart, values: Mapping[str, Any] | None = None, *,
           release: str = RELEASE, kube_version: str | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` would print it."""
    if kube_version is None:
        return chart.render(dict(values or {}), name=release, namespace=NAMESPACE)
    # helm-python-sdk's Chart.render does not expose the C API's kube_version option
    # (Capabilities.KubeVersion, as `helm template --kube-version`); call it directly.
    options = {"name": release, "namespace": NAMESPACE, "kube_version": kube_version}
    rendered = _native.call_string("helm_render", chart._raw(), json.dumps(dict(values or {})),
                                   json.dumps(options))
    result: dict[str, str] = json.loads(rendered)
    return result


def manifests(rendered: Mapping[str, str]) -> list[Manifest]:
    docs = []
    for path, text in rendered.items():
        if path.endswith(".yaml"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def one(docs: list[Manifest], kind: str, name: str) -> Manifest:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {[(d['kind'], d['metadata']['name']) for d in docs]}"
    return found[0]


def pod_spec(docs: list[Manifest], name: str = FULLNAME) -> Manifest:
    spec: Manifest = one(docs, "Deployment", name)["spec"]["template"]["spec"]
    return spec


def sidecar_of(spec: Manifest) -> Manifest:
    containers = spec.get("initContainers", []) + spec["containers"]
    found = [c for c in containers if c["name"] == "llm-shadow"]
    assert len(found) == 1
    return found[0]


def env_of(container: Manifest) -> dict[str, Any]:
    """name -> value, or the valueFrom object."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- validation against the Kubernetes schemas -------------------------------------------


@contextmanager
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the Kubernetes schemas must be bundled: network access attempted")

    with monkeypatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        patch.setattr(socket, "create_connection", refuse)
        yield


def validate(docs: list[Manifest], monkeypatch: pytest.MonkeyPatch,
             versions: tuple[str, ...] = KUBE_VERSIONS) -> None:
    assert docs
    with no_network(monkeypatch):
        for doc in docs:
            if doc["apiVersion"].startswith("monitoring.coreos.com/"):
                check_service_monitor(doc)
                continue
            for version in versions:
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    where = ".".join(str(p) for p in exc.path)
                    pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} is invalid for "
                                f"Kubernetes {version} at {where}: {exc.message}")
    names = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert len(names) == len(set(names)), f"duplicate resources: {names}"
    for doc in docs:
        assert len(doc["metadata"]["name"]) <= 63, doc["metadata"]["name"]


def check_service_monitor(doc: Manifest) -> None:
    """A CRD: no bundled schema, so check the fields the Prometheus Operator requires."""
    assert doc["kind"] == "ServiceMonitor" and doc["apiVersion"] == "monitoring.coreos.com/v1"
    spec = doc["spec"]
    assert spec["selector"]["matchLabels"]
    assert spec["endpoints"] and all(e["port"] and e["path"] for e in spec["endpoints"])


def test_the_validator_works_offline_and_rejects_a_broken_manifest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broken = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
              "spec": {"ports": [{"port": "not-a-number"}], "unknownField": 1}}
    with no_network(monkeypatch), pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBE_VERSIONS[-1], strict=True)


PRODUCTION = {
    "replicaCount": 3,
    "app": {
        "image": {"registry": "registry.example.com", "repository": "shop/orders", "tag": "4.2.0"},
        "command": [],
        "args": ["--serve"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "service": {"enabled": True, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}},
    },
    "redis": {"internal": {"enabled": False}, "existingSecret": "orders-redis"},
    "jaeger": {"enabled": False},
    "tracing": {"otlpEndpoint": "http://otel-collector.observability:4317",
                "otlpProtocol": "grpc", "resourceAttributes": {"deployment.environment": "prod"}},
    "adminToken": {"existingSecret": "llm-shadow-admin"},
    "modelApiKeys": {"existingSecret": "llm-keys",
                     "secretKeyRefs": {"DEEPSEEK_API_KEY": {"name": "deepseek", "key": "token"}}},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "commonLabels": {"team": "orders"},
    "commonAnnotations": {"owner": "orders-team"},
    "podAnnotations": {"example.com/note": "x"},
}

COMBINATIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "production": PRODUCTION,
    "classic-sidecar": {"sidecar": {"native": False}},
    "external-url-no-tracing": {"redis": {"internal": {"enabled": False},
                                          "url": "redis://redis.shared.svc:6379/2"},
                                "jaeger": {"enabled": False}, "tracing": {"enabled": False}},
    "in-chart-redis-with-password": {"redis": {"internal": {
        "auth": {"existingSecret": "trial-redis"}, "networkPolicy": {"enabled": False}}}},
    "existing-configmaps": {"config": {"existingConfigMap": "my-config"},
                            "policies": {"existingConfigMap": "my-policies"},
                            "modelApiKeys": {"existingSecret": "llm-keys"}},
    "overrides-and-policy-files": {
        "config": {"overrides": {"proxy": {"graceful_shutdown_seconds": 10}}},
        "policies": {"files": {"ramp/schedule.json": {"steps": [5, 10]}, "extra.json": "{}\n"}},
        "terminationGracePeriodSeconds": 20,
    },
    "no-app-subchart-resources": {"app": {"enabled": False}},
    "no-defaults": {"config": {"useDefaults": False}, "policies": {"useDefaults": False},
                    "service": {"enabled": False}},
}


@pytest.mark.parametrize("values", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_every_combination_renders_valid_kubernetes_manifests(
    chart: helm.Chart, values: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
) -> None:
    validate(manifests(render(chart, values)), monkeypatch)


def test_a_long_release_name_is_truncated_to_valid_names(
    chart: helm.Chart, monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = "a-very-long-release-name-for-the-orders-team-in-europe"  # 53 characters
    docs = manifests(render(chart, PRODUCTION | {"redis": {}, "jaeger": {}, "tracing": {}},
                            release=release))
    validate(docs, monkeypatch)
    names = {d["metadata"]["name"] for d in docs}
    assert any(name.endswith("-redis") for name in names)
    assert any(name.endswith("-config") for name in names)
    assert all(not name.endswith("-") for name in names)


def test_classic_sidecar_on_kubernetes_1_28(chart: helm.Chart,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    docs = manifests(render(chart, {"sidecar": {"native": False}}, kube_version="v1.28.0"))
    validate(docs, monkeypatch, versions=("1.28.0",))


def test_native_sidecar_on_an_old_cluster_fails_early(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmRenderError, match=r"sidecar.native=false"):
        render(chart, {}, kube_version="v1.28.0")


# --- the sidecar's wiring ---------------------------------------------------------------


@pytest.fixture(scope="module")
def default_docs(chart: helm.Chart) -> list[Manifest]:
    return manifests(render(chart))


def test_native_sidecar_is_an_init_container_that_keeps_running(
    default_docs: list[Manifest],
) -> None:
    spec = pod_spec(default_docs)
    assert [c["name"] for c in spec["initContainers"]] == ["llm-shadow"]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"
    assert [c["name"] for c in spec["containers"]] == ["app"]
    assert "lifecycle" not in spec["initContainers"][0], "Kubernetes orders the shutdown"


def test_classic_sidecar_is_a_second_container_that_stops_last(chart: helm.Chart) -> None:
    spec = pod_spec(manifests(render(chart, {"sidecar": {"native": False}})))
    assert "initContainers" not in spec
    assert [c["name"] for c in spec["containers"]] == ["app", "llm-shadow"]
    sidecar = spec["containers"][1]
    assert "restartPolicy" not in sidecar
    assert sidecar["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "5"]


def test_sidecar_ports_listen_addresses_and_command(default_docs: list[Manifest]) -> None:
    sidecar = sidecar_of(pod_spec(default_docs))
    ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
    assert ports == {"shadow-proxy": 8787, "shadow-admin": 8788}
    env = env_of(sidecar)
    # The proxy only for the pod's own containers; the admin port for kubelet and Prometheus.
    assert env["LLM_SHADOW_HOST"] == "127.0.0.1"
    assert env["LLM_SHADOW_PORT"] == "8787"
    assert env["LLM_SHADOW_ADMIN_HOST"] == "0.0.0.0"
    assert env["LLM_SHADOW_ADMIN_PORT"] == "8788"
    assert env["LLM_SHADOW_CONFIG"] == "/etc/llm-shadow/config.json"
    assert env["LLM_SHADOW_REPLICA_ID"] == "$(POD_NAME)"
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert "LLM_SHADOW_FORCE_LEGACY" not in env
    assert sidecar["args"] == ["--log-level", "info", "serve"]
    assert "command" not in sidecar, "the image's ENTRYPOINT (llm-shadow) stays"
    assert sidecar["image"] == f"ghcr.io/llm-shadow/llm-shadow:{chart_app_version()}"


def chart_app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def test_probes_use_the_admin_port(default_docs: list[Manifest]) -> None:
    sidecar = sidecar_of(pod_spec(default_docs))
    assert sidecar["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "shadow-admin"}
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "shadow-admin"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "shadow-admin"}


def test_config_and_policies_are_mounted_from_the_rendered_configmaps(
    default_docs: list[Manifest],
) -> None:
    spec = pod_spec(default_docs)
    mounts = {m["mountPath"]: m for m in sidecar_of(spec)["volumeMounts"]}
    assert mounts["/etc/llm-shadow/config.json"]["subPath"] == "config.json"
    assert mounts["/etc/llm-shadow/config.json"]["readOnly"] is True
    assert mounts["/etc/llm-shadow/policies"]["readOnly"] is True
    assert "/tmp" in mounts
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in mounts.values():
        assert mount["name"] in volumes
    config_map = volumes[mounts["/etc/llm-shadow/config.json"]["name"]]["configMap"]
    assert config_map["items"] == [{"key": "config.json", "path": "config.json"}]
    one(default_docs, "ConfigMap", config_map["name"])
    policies_map = volumes[mounts["/etc/llm-shadow/policies"]["name"]]["configMap"]
    one(default_docs, "ConfigMap", policies_map["name"])
    assert volumes["llm-shadow-tmp"]["emptyDir"]["sizeLimit"] == "64Mi"


def test_the_default_config_is_the_repository_config_and_loads(
    default_docs: list[Manifest],
) -> None:
    data = one(default_docs, "ConfigMap", f"{FULLNAME}-config")["data"]["config.json"]
    rendered = json.loads(data)
    expected = json.loads((ROOT / "config.json").read_text(encoding="utf-8"))
    # Plus the break-glass file in the pod's writable /tmp (sidecar.forceLegacyFile).
    flags = expected.setdefault("flags", {})
    flags.setdefault("force_legacy_file", "/tmp/llm-shadow-force-legacy")
    assert rendered == expected
    config = parse_config(rendered, "ConfigMap config.json")
    assert config.flags.force_legacy_file == flags["force_legacy_file"]


@pytest.mark.parametrize(("values", "expected"), [
    ({"sidecar": {"forceLegacyFile": ""}}, None),
    ({"config": {"overrides": {"flags": {"force_legacy_file": "/tmp/mine"}}}}, "/tmp/mine"),
    ({"sidecar": {"forceLegacyFile": "/tmp/other"}}, "/tmp/other"),
])
def test_force_legacy_file(chart: helm.Chart, values: dict[str, Any],
                           expected: str | None) -> None:
    docs = manifests(render(chart, values))
    data = json.loads(one(docs, "ConfigMap", f"{FULLNAME}-config")["data"]["config.json"])
    assert data.get("flags", {}).get("force_legacy_file") == expected


def test_config_overrides_deep_merge_and_still_load(chart: helm.Chart) -> None:
    overrides = {"proxy": {"graceful_shutdown_seconds": 12},
                 "redis": {"key_prefix": "orders"},
                 "models": [{"name": "only", "provider": "OpenAI", "cost_per_1m_tokens": 1,
                             "avg_response_time": 1, "enabled": True,
                             "base_url": "https://api.openai.com/v1",
                             "api_key_env": "OPENAI_KEY"}]}
    docs = manifests(render(chart, {"config": {"overrides": overrides}}))
    rendered = json.loads(one(docs, "ConfigMap", f"{FULLNAME}-config")["data"]["config.json"])
    config = parse_config(rendered, "ConfigMap config.json")
    assert config.proxy.graceful_shutdown_seconds == 12
    assert [route.prefix for route in config.proxy.routes] == ["/openai", "/anthropic"]
    assert config.redis.key_prefix == "orders"
    assert [model.name for model in config.models] == ["only"], "lists replace"


def test_policy_files_keep_their_folders(chart: helm.Chart) -> None:
    values = {"policies": {"files": {"ramp/schedule.json": {"steps": [5, 10]},
                                     "raw.json": "{\"a\": 1}\n"}}}
    docs = manifests(render(chart, values))
    data = one(docs, "ConfigMap", f"{FULLNAME}-policies")["data"]
    assert json.loads(data["ramp__schedule.json"]) == {"steps": [5, 10]}
    assert json.loads(data["raw.json"]) == {"a": 1}
    for name in repository_policies():
        assert name.replace("/", "__") in data, f"default policy {name} kept"
    volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == "llm-shadow-policies")
    items = {i["key"]: i["path"] for i in volume["configMap"]["items"]}
    assert items["ramp__schedule.json"] == "ramp/schedule.json"
    assert items["raw.json"] == "raw.json"


def test_default_policies_are_the_repository_policies(default_docs: list[Manifest]) -> None:
    data = one(default_docs, "ConfigMap", f"{FULLNAME}-policies").get("data") or {}
    expected = repository_policies()
    assert {key.replace("__", "/") for key in data} == set(expected)
    for name, content in expected.items():
        assert json.loads(data[name.replace("/", "__")]) == json.loads(content)


def repository_policies() -> dict[str, str]:
    folder = ROOT / "policies"
    return {str(p.relative_to(folder)): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_existing_configmaps_are_mounted_instead(chart: helm.Chart) -> None:
    docs = manifests(render(chart, COMBINATIONS["existing-configmaps"]))
    assert not [d for d in docs if d["kind"] == "ConfigMap"]
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    assert volumes["llm-shadow-config"]["configMap"]["name"] == "my-config"
    assert volumes["llm-shadow-policies"]["configMap"] == {"name": "my-policies",
                                                           "defaultMode": 0o444}
    sidecar = sidecar_of(pod_spec(docs))
    # The chart cannot see the models in a foreign ConfigMap: it imports the key Secret.
    assert sidecar["envFrom"] == [{"secretRef": {"name": "llm-keys", "optional": False}}]


def test_base_url_variables_point_the_legacy_container_at_the_sidecar(
    default_docs: list[Manifest], chart: helm.Chart,
) -> None:
    app = pod_spec(default_docs)["containers"][0]
    env = env_of(app)
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:8787/openai/v1"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8787/anthropic"
    moved = manifests(render(chart, {
        "sidecar": {"proxyPort": 9000},
        "app": {"baseUrlEnv": {"ANTHROPIC_BASE_URL": None, "AZURE_OPENAI_ENDPOINT": "/azure"},
                "env": [{"name": "X", "value": "1"}]},
    }))
    env = env_of(pod_spec(moved)["containers"][0])
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:9000/openai/v1"
    assert env["AZURE_OPENAI_ENDPOINT"] == "http://127.0.0.1:9000/azure"
    assert "ANTHROPIC_BASE_URL" not in env
    assert env["X"] == "1"
    assert env_of(sidecar_of(pod_spec(moved)))["LLM_SHADOW_PORT"] == "9000"


def test_restrictive_security_context(default_docs: list[Manifest]) -> None:
    spec = pod_spec(default_docs)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    for container in spec["initContainers"] + spec["containers"]:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    sidecar = sidecar_of(spec)["securityContext"]
    assert sidecar["runAsUser"] == IMAGE_UID and sidecar["runAsGroup"] == IMAGE_UID
    for name in (f"{FULLNAME}-redis", f"{FULLNAME}-jaeger"):
        workload = pod_spec(default_docs, name)
        assert workload["securityContext"]["runAsNonRoot"] is True
        assert workload["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in workload["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_checksum_annotation_follows_the_configuration(chart: helm.Chart) -> None:
    def checksum(values: dict[str, Any]) -> str:
        template = one(manifests(render(chart, values)), "Deployment", FULLNAME)["spec"]["template"]
        value: str = template["metadata"]["annotations"]["checksum/config"]
        assert re.fullmatch(r"[0-9a-f]{64}", value)
        return value

    base = checksum({})
    assert checksum({}) == base, "stable across renders"
    assert checksum({"replicaCount": 4, "sidecar": {"logLevel": "debug"}}) == base
    assert checksum({"config": {"overrides": {"redis": {"key_prefix": "x"}}}}) != base
    assert checksum({"policies": {"files": {"a.json": {"x": 1}}}}) != base
    assert checksum({"config": {"existingConfigMap": "mine"}}) != base


def test_secrets_are_referenced_never_inlined(chart: helm.Chart) -> None:
    docs = manifests(render(chart, PRODUCTION))
    assert not [d for d in docs if d["kind"] == "Secret"], "the chart never creates a Secret"
    env = env_of(sidecar_of(pod_spec(docs)))
    assert env["LLM_SHADOW_REDIS_URL"] == {
        "secretKeyRef": {"name": "orders-redis", "key": "redis-url"}}
    assert env["LLM_SHADOW_ADMIN_TOKEN"] == {
        "secretKeyRef": {"name": "llm-shadow-admin", "key": "admin-token"}}
    # Derived from the models' api_key_env in config.json; secretKeyRefs wins per variable.
    assert env["DASHSCOPE_API_KEY"] == {
        "secretKeyRef": {"name": "llm-keys", "key": "DASHSCOPE_API_KEY", "optional": False}}
    assert env["DEEPSEEK_API_KEY"] == {
        "secretKeyRef": {"name": "deepseek", "key": "token", "optional": False}}


def test_no_model_key_variables_without_a_secret(default_docs: list[Manifest]) -> None:
    env = env_of(sidecar_of(pod_spec(default_docs)))
    assert "DASHSCOPE_API_KEY" not in env and "LLM_SHADOW_ADMIN_TOKEN" not in env


@pytest.mark.parametrize(("values", "expected"), [
    ({}, f"redis://{FULLNAME}-redis.{NAMESPACE}.svc:6379/0"),
    ({"redis": {"internal": {"enabled": False}, "url": "rediss://r.example:6380/1"}},
     "rediss://r.example:6380/1"),
    ({"redis": {"internal": {"auth": {"existingSecret": "pw"}}}},
     f"redis://:$(LLM_SHADOW_REDIS_PASSWORD)@{FULLNAME}-redis.{NAMESPACE}.svc:6379/0"),
])
def test_redis_url(chart: helm.Chart, values: dict[str, Any], expected: str) -> None:
    sidecar = sidecar_of(pod_spec(manifests(render(chart, values))))
    names = [e["name"] for e in sidecar["env"]]
    assert env_of(sidecar)["LLM_SHADOW_REDIS_URL"] == expected
    if "LLM_SHADOW_REDIS_PASSWORD" in names:
        # $(VAR) expands only variables defined earlier in the list.
        assert names.index("LLM_SHADOW_REDIS_PASSWORD") < names.index("LLM_SHADOW_REDIS_URL")


def test_in_chart_redis_never_evicts_and_admits_only_the_sidecars(
    default_docs: list[Manifest], chart: helm.Chart,
) -> None:
    redis = pod_spec(default_docs, f"{FULLNAME}-redis")["containers"][0]
    args = redis["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    assert args[args.index("--save") + 1] == ""
    assert redis["image"] == "docker.io/library/redis:7.4.7-alpine"
    policy = one(default_docs, "NetworkPolicy", f"{FULLNAME}-redis")["spec"]
    allowed = policy["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    pod_labels = one(default_docs, "Deployment", FULLNAME)["spec"]["template"]["metadata"]["labels"]
    assert allowed.items() <= pod_labels.items()
    service = one(default_docs, "Service", f"{FULLNAME}-redis")
    redis_labels = one(default_docs, "Deployment", f"{FULLNAME}-redis")["spec"]["template"][
        "metadata"]["labels"]
    assert service["spec"]["selector"].items() <= redis_labels.items()
    assert not service["spec"]["selector"].items() <= pod_labels.items(), "selectors overlap"
    with_password = pod_spec(manifests(render(chart, COMBINATIONS["in-chart-redis-with-password"])),
                             f"{FULLNAME}-redis")["containers"][0]
    assert "--requirepass" in with_password["args"]
    assert "--protected-mode" not in with_password["args"]


@pytest.mark.parametrize(("values", "expected"), [
    ({}, {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{FULLNAME}-jaeger.{NAMESPACE}.svc:4318",
          "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}),
    ({"tracing": {"otlpProtocol": "grpc"}},
     {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{FULLNAME}-jaeger.{NAMESPACE}.svc:4317",
      "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}),
    (PRODUCTION, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4317",
                  "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}),
    ({"tracing": {"enabled": False}}, {"OTEL_SDK_DISABLED": "true"}),
])
def test_opentelemetry_environment(chart: helm.Chart, values: dict[str, Any],
                                   expected: dict[str, str]) -> None:
    env = env_of(sidecar_of(pod_spec(manifests(render(chart, values)))))
    assert env["OTEL_SERVICE_NAME"] == "llm-shadow"
    assert expected.items() <= env.items()
    if "OTEL_SDK_DISABLED" in expected:
        assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in env
    else:
        attributes = dict(pair.split("=", 1) for pair in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
        assert attributes["k8s.pod.name"] == "$(POD_NAME)"
        assert attributes["k8s.namespace.name"] == "$(POD_NAMESPACE)"
        assert attributes["k8s.container.name"] == "llm-shadow"


def test_in_chart_jaeger_receives_otlp(default_docs: list[Manifest]) -> None:
    jaeger = pod_spec(default_docs, f"{FULLNAME}-jaeger")["containers"][0]
    assert jaeger["image"] == "docker.io/jaegertracing/jaeger:2.21.0"
    service = one(default_docs, "Service", f"{FULLNAME}-jaeger")
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert ports == {"otlp-grpc": 4317, "otlp-http": 4318, "ui": 16686}


def test_admin_service_selects_the_sidecar_pods(default_docs: list[Manifest]) -> None:
    service = one(default_docs, "Service", f"{FULLNAME}-admin")
    template = one(default_docs, "Deployment", FULLNAME)["spec"]["template"]
    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["targetPort"] == "shadow-admin"
    for name in (f"{FULLNAME}-redis", f"{FULLNAME}-jaeger"):
        other = one(default_docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert not service["spec"]["selector"].items() <= other.items()


def test_service_monitor_scrapes_the_admin_service(chart: helm.Chart) -> None:
    docs = manifests(render(chart, PRODUCTION))
    monitor = one(docs, "ServiceMonitor", FULLNAME)
    service = one(docs, "Service", f"{FULLNAME}-admin")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"


def test_images_are_pinned(chart: helm.Chart) -> None:
    for values in COMBINATIONS.values():
        for doc in manifests(render(chart, values)):
            if doc["kind"] != "Deployment":
                continue
            spec = doc["spec"]["template"]["spec"]
            for container in spec.get("initContainers", []) + spec["containers"]:
                image = container["image"]
                assert "@sha256:" in image or re.search(r":[\w][\w.-]*$", image), image
                assert not image.endswith(":latest"), image


def test_force_legacy_and_extra_settings(chart: helm.Chart) -> None:
    docs = manifests(render(chart, {"sidecar": {
        "forceLegacy": True, "logLevel": "debug", "extraArgs": ["--x"],
        "extraEnv": [{"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_always_on"}],
        "image": {"digest": "sha256:" + "a" * 64},
    }}))
    sidecar = sidecar_of(pod_spec(docs))
    env = env_of(sidecar)
    assert env["LLM_SHADOW_FORCE_LEGACY"] == "1"
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"
    assert sidecar["args"] == ["--log-level", "debug", "serve", "--x"]
    assert sidecar["image"] == "ghcr.io/llm-shadow/llm-shadow@sha256:" + "a" * 64


def test_notes_tell_how_to_ramp_roll_back_and_find_the_traces(chart: helm.Chart) -> None:
    notes = render(chart)["llm-shadow/templates/NOTES.txt"]
    exec_prefix = f"kubectl -n {NAMESPACE} exec deploy/{FULLNAME} -c llm-shadow -- llm-shadow"
    assert f"{exec_prefix} set --shadow 10" in notes
    assert f"{exec_prefix} rollback --wait" in notes
    assert f"{exec_prefix} status" in notes
    assert f"port-forward svc/{FULLNAME}-jaeger 16686:16686" in notes
    assert "trials" in notes, "the in-chart Redis warning"
    production = render(chart, PRODUCTION)["llm-shadow/templates/NOTES.txt"]
    assert "http://otel-collector.observability:4317" in production
    assert "trials" not in production


# --- bad values fail early, with a message that names the value -------------------------


@pytest.mark.parametrize(("values", "message"), [
    ({"sidecar": {"nativ": True}}, r"/sidecar': additional properties 'nativ' not allowed"),
    ({"replicas": 2}, r"additional properties 'replicas' not allowed"),
    ({"sidecar": {"image": {"tag": "latest"}}}, r"/sidecar/image/tag"),
    ({"jaeger": {"image": {"tag": "latest"}}}, r"/jaeger/image/tag"),
    ({"sidecar": {"proxyPort": 70000}}, r"/sidecar/proxyPort"),
    ({"redis": {"url": "http://redis:6379"}}, r"/redis/url': 'http://redis:6379' does not match"),
    ({"tracing": {"otlpProtocol": "http/json"}}, r"/tracing/otlpProtocol': value must be one of"),
    ({"app": {"baseUrlEnv": {"OPENAI_BASE_URL": "openai/v1"}}}, r"/app/baseUrlEnv/OPENAI_BASE_URL"),
    ({"policies": {"files": {"../escape.json": {}}}}, r"invalid propertyName '../escape.json'"),
    ({"terminationGracePeriodSeconds": "45"}, r"/terminationGracePeriodSeconds': got string"),
])
def test_schema_refuses_bad_values(chart: helm.Chart, values: dict[str, Any],
                                   message: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=message):
        render(chart, values)


@pytest.mark.parametrize(("values", "message"), [
    ({"terminationGracePeriodSeconds": 30},
     r"terminationGracePeriodSeconds \(30\) must be greater than .*"
     r"graceful_shutdown_seconds \(30\)"),
    ({"terminationGracePeriodSeconds": 34, "sidecar": {"native": False}},
     r"plus sidecar.classic.preStopSleepSeconds \(5\)"),
    ({"config": {"overrides": {"proxy": {"graceful_shutdown_seconds": 60}}}},
     r"terminationGracePeriodSeconds \(45\) must be greater"),
    ({"sidecar": {"adminPort": 8787}}, r"sidecar.proxyPort and sidecar.adminPort must differ"),
    ({"redis": {"url": "redis://redis:6379/0"}}, r"choose one Redis"),
    ({"redis": {"internal": {"enabled": False}, "url": "redis://:secret@redis:6379/0"}},
     r"redis.url must not carry credentials"),
    ({"config": {"overrides": {"redis": {"url": "redis://u:pw@redis:6379/0"}}}},
     r"config redis.url must not carry credentials"),
    ({"redis": {"internal": {"enabled": False}}}, r"no Redis configured"),
    ({"tracing": {"otlpEndpoint": "http://collector:4318"}}, r"choose one"),
    ({"jaeger": {"enabled": False}}, r"set tracing.otlpEndpoint"),
])
def test_templates_refuse_inconsistent_values(chart: helm.Chart, values: dict[str, Any],
                                              message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(chart, values)


def test_grace_period_check_holds_for_the_sidecar_only_template() -> None:
    """A parent chart that includes llm-shadow.validate gets the same early failure."""
    with pytest.raises(helm.HelmRenderError, match="terminationGracePeriodSeconds"):
        render_parent({"llm-shadow": {"terminationGracePeriodSeconds": 10}})


# --- lint -------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, PRODUCTION, {"sidecar": {"native": False}}],
                         ids=["defaults", "production", "classic"])
def test_helm_lint_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE,
                       kube_version=f"v{KUBE_VERSIONS[-1]}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report
    infos = {m["error"] for m in report["messages"]}
    assert infos <= {"icon is recommended"}, infos  # the project has no icon yet


# --- values documentation and schema strictness ----------------------------------------


def value_paths(values: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Leaf keys of values.yaml (a non-empty mapping is not a leaf)."""
    paths = set()
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in FREE_FORM:
            paths |= value_paths(value, f"{path}.")
        else:
            paths.add(path)
    return paths


# Keys whose value is a free-form object (documented as a whole).
FREE_FORM = {"app.baseUrlEnv", "app.securityContext", "updateStrategy", "podSecurityContext",
             "sidecar.resources", "sidecar.securityContext", "redis.internal.resources",
             "redis.internal.podSecurityContext", "redis.internal.securityContext",
             "jaeger.resources", "jaeger.podSecurityContext", "jaeger.securityContext"}


def test_every_value_is_documented_with_a_param_line() -> None:
    text = (CHART / "values.yaml").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\s*## @param (\S+) \S", text, flags=re.M))
    keys = value_paths(yaml.safe_load(text))
    assert keys - documented == set(), "undocumented values"
    assert documented - keys == set(), "documented values that do not exist"


def schema_node(schema: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    node = schema
    for key in path.split("."):
        node = resolve(schema, node)
        node = node["properties"][key]
    return resolve(schema, node)


def resolve(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow $ref and single-branch allOf wrappers to the object that has properties."""
    while True:
        if "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[1]]
        elif "allOf" in node and "properties" not in node:
            node = node["allOf"][0]
        else:
            return node


def test_schema_covers_every_value_and_forbids_unknown_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    for path in value_paths(values):
        schema_node(schema, path)  # KeyError names a value missing from the schema

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, f"{where} is not strict"
            for key, child in node.items():
                if key == "allOf":
                    # [strict base, refinements of the base's own properties]
                    walk(child[0], f"{where}.allOf[0]")
                    base = resolve(schema, child[0])
                    for refinement in child[1:]:
                        assert set(refinement["properties"]) <= set(base["properties"]), where
                    continue
                walk(child, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{where}[{index}]")

    walk(schema, "schema")
    with helm.Chart.load(CHART) as loaded:
        loaded.validate_schema(values)


# --- the chart's copy of the repository's configuration --------------------------------


def test_chart_files_match_the_repository() -> None:
    """Helm cannot read outside the chart, so the chart carries copies; they must not drift."""
    drift = []
    if (CHART / "files" / "config.json").read_bytes() != (ROOT / "config.json").read_bytes():
        drift.append("config.json")
    chart_policies = CHART / "files" / "policies"
    ours = {str(p.relative_to(chart_policies)): p.read_bytes()
            for p in chart_policies.rglob("*") if p.is_file()}
    theirs = {str(p.relative_to(ROOT / "policies")): p.read_bytes()
              for p in (ROOT / "policies").rglob("*") if p.is_file()}
    if ours != theirs:
        drift.append(f"policies/ ({sorted(set(ours) ^ set(theirs)) or 'content'})")
    assert not drift, f"helm/llm-shadow/files is out of date: {drift}. Run: {SYNC_COMMAND}"


# --- the sidecar-only templates, used from a team's own chart --------------------------


def render_parent(values: dict[str, Any] | None = None) -> dict[str, str]:
    with parent_chart() as path, helm.Chart.load(path) as loaded:
        rendered: dict[str, str] = loaded.render(values or {}, name="shop", namespace="orders")
        return rendered


@contextmanager
def parent_chart() -> Iterator[Path]:
    """tests/charts/sidecar-parent with this chart copied into its charts/ folder."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sidecar-parent"
        shutil.copytree(PARENT, path)
        shutil.copytree(CHART, path / "charts" / "llm-shadow")
        yield path


@pytest.mark.parametrize("native", [True, False], ids=["native", "classic"])
def test_a_parent_chart_adds_the_sidecar_to_its_own_deployment(
    native: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = manifests(render_parent({"llm-shadow": {"sidecar": {"native": native}}}))
    validate(docs, monkeypatch)
    assert not [d for d in docs if d["kind"] == "Deployment"
                and d["metadata"]["name"] == "shop-llm-shadow"], "app.enabled=false: no own app"
    deployment = one(docs, "Deployment", "shop-orders")
    template = deployment["spec"]["template"]
    spec = template["spec"]
    sidecar = sidecar_of(spec)
    assert (sidecar in spec.get("initContainers", [])) is native
    assert spec["containers"][0]["name"] == "orders"
    env = env_of(spec["containers"][0])
    assert env["OPENAI_BASE_URL"] == "http://127.0.0.1:8787/openai/v1"
    assert env["ORDERS_MODE"] == "production"
    assert env_of(sidecar)["LLM_SHADOW_REDIS_URL"] == "redis://shop-llm-shadow-redis.orders.svc:6379/0"
    # The subchart's own resources are the ones the parent's pods use.
    volumes = {v["name"]: v for v in spec["volumes"]}
    one(docs, "ConfigMap", volumes["llm-shadow-config"]["configMap"]["name"])
    one(docs, "ConfigMap", volumes["llm-shadow-policies"]["configMap"]["name"])
    admin = one(docs, "Service", "shop-llm-shadow-admin")
    assert admin["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    policy = one(docs, "NetworkPolicy", "shop-llm-shadow-redis")
    allowed = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert allowed.items() <= template["metadata"]["labels"].items()
    checksum = template["metadata"]["annotations"]["checksum/config"]
    overrides = {"redis": {"key_prefix": "orders"}}
    changed = render_parent({"llm-shadow": {"config": {"overrides": overrides}}})
    other = one(manifests(changed), "Deployment", "shop-orders")["spec"]["template"]
    assert other["metadata"]["annotations"]["checksum/config"] != checksum


def test_parent_chart_lints_clean() -> None:
    with parent_chart() as path:
        report = helm.lint(path, strict=True, with_subcharts=True)
    assert not report["errors"], report
    assert not [m for m in report["messages"] if m["severity"] >= 2], report
