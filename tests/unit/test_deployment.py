"""The compose deployment agrees with the code: settings, commands, ports, scrape targets, dashboards."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.cli.main import main
from services.runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
PREFIX = "RISKWATCH_"
# Without these a process would start an embedded broker or database, or a key of its own.
REQUIRED = ("RISKWATCH_KAFKA_BOOTSTRAP_SERVERS", "RISKWATCH_DATABASE_URL", "RISKWATCH_PSEUDONYM_KEY")
_INTERPOLATION = re.compile(r"\$\{[^}]*\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def riskwatch_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in services.items() if service.get("image", "").startswith("riskwatch")}


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment with ${...} interpolations replaced by a sample value (64 hex digits)."""
    return {name: _INTERPOLATION.sub("ab" * 32, str(value)) for name, value in service.get("environment", {}).items()}


def settings_of(service: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(Settings.model_fields):
        monkeypatch.delenv(PREFIX + name.upper(), raising=False)
    for name, value in environment(service).items():
        monkeypatch.setenv(name, value)
    return Settings()


def test_the_deployment_has_every_part(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka-1", "kafka-2", "kafka-3", "postgres", "migrate", "api", "worker", "prometheus",
            "grafana"} <= services.keys()
    assert set(riskwatch_services(services)) == {"migrate", "api", "worker"}


def test_kafka_runs_kraft_with_three_voters_replication_three_and_min_isr_two(
        services: dict[str, dict[str, Any]]) -> None:
    brokers = {name: environment(service) for name, service in services.items() if name.startswith("kafka-")}
    assert len(brokers) == 3
    assert all(services[name]["image"].startswith("apache/kafka:") for name in brokers)
    voters = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in brokers.items()}
    for name, env in brokers.items():
        assert "controller" in env["KAFKA_PROCESS_ROLES"] and "broker" in env["KAFKA_PROCESS_ROLES"]
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
        assert (env["KAFKA_DEFAULT_REPLICATION_FACTOR"], env["KAFKA_MIN_INSYNC_REPLICAS"]) == ("3", "2")
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert not any("ZOOKEEPER" in key for key in env)
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1


def test_every_riskwatch_variable_is_a_setting_and_the_required_ones_are_set(
        services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {PREFIX + name.upper() for name in Settings.model_fields}
    for name, service in services.items():
        variables = {key for key in environment(service) if key.startswith(PREFIX)}
        assert variables <= fields, f"{name}: {sorted(variables - fields)} are not settings"
    for name, service in riskwatch_services(services).items():
        assert set(REQUIRED) <= environment(service).keys(), name
        settings = settings_of(service, monkeypatch)  # every value parses as its setting
        assert not settings.embedded_broker and not settings.embedded_database, name


def test_riskwatch_topics_match_the_brokers_and_the_database_matches_postgres(
        services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    postgres = environment(services["postgres"])
    for name, service in riskwatch_services(services).items():
        settings = settings_of(service, monkeypatch)
        assert settings.kafka_bootstrap_servers is not None and settings.database_url is not None
        assert set(settings.kafka_bootstrap_servers.split(",")) == {"kafka-1:9092", "kafka-2:9092", "kafka-3:9092"}
        assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2), name
        assert settings.database_url == (f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
                                         f"@postgres:5432/{postgres['POSTGRES_DB']}"), name


def test_each_riskwatch_service_runs_a_command_of_the_console_script(services: dict[str, dict[str, Any]]) -> None:
    commands = {name: service["command"] for name, service in riskwatch_services(services).items()}
    assert commands == {"migrate": ["migrate"], "api": ["serve"], "worker": ["worker"]}
    assert all(command[0] in main.commands for command in commands.values())


def test_migrations_run_once_before_the_api_and_the_workers(services: dict[str, dict[str, Any]]) -> None:
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert {dependency: condition["condition"] for dependency, condition in migrate["depends_on"].items()} == {
        "kafka-1": "service_healthy", "kafka-2": "service_healthy", "kafka-3": "service_healthy",
        "postgres": "service_healthy"}
    for name in ("api", "worker"):
        assert services[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}


def scrape_configs() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    return {job["job_name"]: job for job in document["scrape_configs"]}


def test_ports_agree_with_the_settings_and_the_scrape_targets(
        services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = scrape_configs()
    api = settings_of(services["api"], monkeypatch)
    assert api.http_host == "0.0.0.0"
    assert [str(port).split(":")[-1] for port in services["api"]["ports"]] == [str(api.http_port)]
    assert jobs["riskwatch-api"]["static_configs"] == [{"targets": [f"api:{api.http_port}"]}]
    assert str(api.http_port) in " ".join(services["api"]["healthcheck"]["test"])

    worker = settings_of(services["worker"], monkeypatch)
    assert worker.metrics_port != 0, "Prometheus needs a fixed worker port"
    assert jobs["riskwatch-worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": worker.metrics_port}]
    assert services["worker"]["expose"] == [str(worker.metrics_port)]
    assert str(worker.metrics_port) in " ".join(services["worker"]["healthcheck"]["test"])
    # replicas share one service name: a fixed host port would clash
    assert services["worker"]["deploy"]["replicas"] >= 2 and "ports" not in services["worker"]


def test_prometheus_and_grafana_get_the_rules_datasource_and_dashboard(services: dict[str, dict[str, Any]]) -> None:
    mounts = {volume.split(":")[0]: volume.split(":")[1] for service in ("prometheus", "grafana")
              for volume in services[service]["volumes"] if volume.startswith("./")}
    assert mounts["./prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    assert mounts["./prometheus/rules.yml"] == "/etc/prometheus/rules.yml"
    for source in mounts:
        assert (DOCKER / source).exists(), source
    config = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules.yml"]

    prometheus_port = services["prometheus"]["ports"][0].split(":")[-1]
    provisioning = DOCKER / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["url"] == f"http://prometheus:{prometheus_port}"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "riskwatch.yml").read_text())["providers"]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"

    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "riskwatch.json").read_text())
    used = {panel["datasource"]["uid"] for panel in dashboard["panels"] if "datasource" in panel}
    assert used == {datasource["uid"]}


def test_the_image_installs_the_project_and_runs_its_console_script() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    instructions = [line.split(maxsplit=1) for line in dockerfile.splitlines() if line and not line.startswith("#")
                    and not line.startswith(" ")]
    by_name: dict[str, list[str]] = {}
    for instruction in instructions:
        by_name.setdefault(instruction[0], []).append(instruction[1] if len(instruction) > 1 else "")
    assert by_name["FROM"] == ["python:3.11-slim"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert json.loads(by_name["ENTRYPOINT"][0]) == ["riskwatch"]
    assert project["scripts"]["riskwatch"] == "services.cli.main:main"
    assert json.loads(by_name["CMD"][0])[0] in main.commands
    # the exact versions of the lock, then the project without resolving anything again
    assert by_name["RUN"][:2] == ["pip install -r requirements.lock", "pip install --no-deps ."]
    copied = {source for arguments in by_name["COPY"] for source in arguments.split()[:-1]}
    assert all((ROOT / source).exists() for source in copied), copied
    packages = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
                   ["include"])
    assert {package.rstrip("*") for package in packages} <= copied
    assert "USER riskwatch" in dockerfile


def test_published_ports_listen_on_localhost_unless_configured(services: dict[str, dict[str, Any]]) -> None:
    published = [str(port) for service in services.values() for port in service.get("ports", [])]
    assert published, "the API, Prometheus and Grafana are published"
    for port in published:
        address, _host_port, _container_port = port.rsplit(":", 2)
        assert address == "${PUBLISH_ADDRESS:-127.0.0.1}", port
    assert "PUBLISH_ADDRESS=" in (DOCKER / "env.example").read_text()


def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":  # a one-shot job: its exit code is its health
            continue
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), name


def test_riskwatch_runs_read_only_and_unprivileged_with_the_state_dir_in_memory(
        services: dict[str, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert "USER riskwatch" in dockerfile and "--uid 10001" in dockerfile
    for name, service in riskwatch_services(services).items():
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        mounts = {entry.split(":", 1)[0] for entry in service["tmpfs"]}
        assert str(settings_of(service, monkeypatch).state_dir) in mounts, name


def _pinned(lock: str) -> dict[str, str]:
    lines = (ROOT / lock).read_text().splitlines()
    pins = [line.split(";")[0].strip().split("==") for line in lines if "==" in line and not line.startswith(" ")]
    return {_canonical(name): version for name, version in pins}


def _names(requirements: list[str]) -> set[str]:
    return {_canonical(re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]) for requirement in requirements}


def test_the_lock_files_pin_every_dependency_of_the_project() -> None:
    """`make lock` after a dependency change: every requirement of pyproject.toml has an exact version."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert _names(project["dependencies"]) <= _pinned("requirements.lock").keys()
    assert _names(project["dependencies"] + extras["tools"] + extras["test"]) <= _pinned(
        "requirements-test.lock").keys()
    makefile = (ROOT / "Makefile").read_text()
    assert "-r $(TEST_LOCK)" in makefile and "--no-deps -e ." in makefile and "\nlock:" in makefile


def test_the_image_lock_has_no_plotting_library() -> None:
    """The image installs requirements.lock: the service, not the analysts' tools of the extra `tools`."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "matplotlib" in _names(project["optional-dependencies"]["tools"])
    assert "matplotlib" not in _names(project["dependencies"])
    assert "matplotlib" not in _pinned("requirements.lock")
    assert "matplotlib" in _pinned("requirements-test.lock"), "make test and make demo install the plots"
    assert "matplotlib" not in (ROOT / "requirements.lock").read_text()  # not even as a dependency of another


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
