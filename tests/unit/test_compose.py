"""Checks of docker-compose.yml, the Dockerfile and deploy/ that need no container engine.

The compose file is parsed with PyYAML (anchors and merge keys included) and its `${VAR...}`
interpolations are resolved the way Compose resolves them; the Dockerfile is read as text; the
Temporal setup script is run against a fake `temporal` command.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from orderflow.embedded import SA_TYPE_NAMES
from orderflow.settings import Settings
from workflows import contract

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SETUP_SCRIPT = ROOT / "deploy" / "temporal-setup.sh"
POSTGRES_INIT = ROOT / "deploy" / "postgres-init.sql"

# The only variable compose requires from the shell; everything else has a default.
TEST_ENV = {
    "ORDERFLOW_WEBHOOK_SECRET": "test-webhook-secret",
    "ORDERFLOW_PAYMENT_WEBHOOK_SECRET": "test-payment-webhook-secret",
}

# compose service -> the `orderflow` subcommand it runs.
ORDERFLOW_COMMANDS = {
    "migrate": "migrate",
    "worker": "worker",
    "api": "api",
    "payment": "payment-standin",
    "carrier": "carrier-standin",
}
ORDERFLOW_SERVICES = sorted(ORDERFLOW_COMMANDS)
STANDINS = ["payment", "carrier"]
INFRA_SERVICES = {"postgresql", "temporal", "temporal-setup", "temporal-ui"}

# What must be up (healthy) or done (completed) before a service starts.
EXPECTED_DEPENDS_ON = {
    "temporal": {"postgresql": "service_healthy"},
    "migrate": {"postgresql": "service_healthy"},
    "worker": {
        "migrate": "service_completed_successfully",
        "temporal-setup": "service_completed_successfully",
    },
    "api": {
        "migrate": "service_completed_successfully",
        "temporal-setup": "service_completed_successfully",
    },
}

# What the setup script registers must be what the workflows set.
SEARCH_ATTRIBUTES = {
    key.name: SA_TYPE_NAMES[key.indexed_value_type.name] for key in contract.SEARCH_ATTRIBUTES
}


# --- compose interpolation ----------------------------------------------------------------------


class MissingVariableError(LookupError):
    """A `${VAR:?message}` (or `${VAR?message}`) whose variable is not set."""


_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.S)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Resolves compose's `$VAR`, `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?m}`, `${VAR?m}`,
    `${VAR:+r}`, `${VAR+r}` and `$$` in one string (no nesting, which this repo does not use)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        if match["named"]:
            return env.get(match["named"], "")
        braced = _BRACED.fullmatch(match["braced"])
        if braced is None or "${" in (braced["arg"] or ""):
            raise ValueError(f"unsupported interpolation {match[0]!r}")
        name, op, arg = braced["name"], braced["op"], braced["arg"] or ""
        is_set = name in env
        is_nonempty = bool(env.get(name))
        if op is None:
            return env.get(name, "")
        if op in (":?", "?"):
            if is_nonempty if op == ":?" else is_set:
                return env[name]
            raise MissingVariableError(f"{name}: {arg}")
        if op in (":-", "-"):
            return env[name] if (is_nonempty if op == ":-" else is_set) else arg
        return arg if (is_nonempty if op == ":+" else is_set) else ""

    return _INTERPOLATION.sub(replace, value)


def interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(item, env) for item in node]
    return node


def test_interpolation_follows_compose_rules() -> None:
    env = {"SET": "value", "EMPTY": ""}
    assert interpolate("a${SET}b$SET$$", env) == "avaluebvalue$"
    assert interpolate("${UNSET:-d} ${EMPTY:-d} ${EMPTY-d} ${SET:-d}", env) == "d d  value"
    assert interpolate("${SET:+r}|${EMPTY:+r}|${EMPTY+r}", env) == "r||r"
    assert interpolate("${SET:?needed}", env) == "value"
    with pytest.raises(MissingVariableError, match="EMPTY"):
        interpolate("${EMPTY:?needed}", env)


# --- loading --------------------------------------------------------------------------------------


def load_compose(env: Mapping[str, str]) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    return interpolate_tree(raw, env)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose(TEST_ENV)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in env.items()}


def argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def depends_on(service: Mapping[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def published_ports(service: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(host port, container port) of every published port."""
    result = set()
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            result.add((str(port.get("published", "")), str(port["target"])))
            continue
        parts = str(port).split("/", 1)[0].split(":")
        host = parts[-2] if len(parts) >= 2 else ""
        result.add((host, parts[-1]))
    return result


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference; a registry port is not a tag."""
    name, _, digest = image.partition("@")
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def init_script_names() -> tuple[str, str]:
    """The database and the role that deploy/postgres-init.sql creates."""
    sql = POSTGRES_INIT.read_text()
    databases = re.findall(r"^\s*CREATE\s+DATABASE\s+(\w+)", sql, re.I | re.M)
    roles = re.findall(r"^\s*CREATE\s+(?:ROLE|USER)\s+(\w+)", sql, re.I | re.M)
    assert len(databases) == 1, databases
    assert len(roles) == 1, roles
    return databases[0], roles[0]


# --- services and start-up order ------------------------------------------------------------------


def test_every_expected_service_exists(services: dict[str, Any]) -> None:
    missing = (INFRA_SERVICES | set(ORDERFLOW_COMMANDS)) - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


def test_every_depends_on_target_exists(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for target in depends_on(service):
            assert target in services, f"{name} depends on unknown service {target}"


@pytest.mark.parametrize("name", sorted(EXPECTED_DEPENDS_ON))
def test_start_up_order(services: dict[str, Any], name: str) -> None:
    deps = depends_on(services[name])
    for target, condition in EXPECTED_DEPENDS_ON[name].items():
        assert deps.get(target) == condition, f"{name} must wait for {target}: {condition}"


def test_temporal_setup_waits_for_temporal(services: dict[str, Any]) -> None:
    assert depends_on(services["temporal-setup"]).get("temporal") in {
        "service_started",
        "service_healthy",
    }


def test_conditions_are_satisfiable(services: dict[str, Any]) -> None:
    """service_healthy needs a healthcheck; service_completed_successfully needs a one-shot."""
    for name, service in services.items():
        for target, condition in depends_on(service).items():
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name}: {target} has no healthcheck"
            elif condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", (
                    f"{name} waits for {target} to complete, so {target} must not restart"
                )
            else:
                assert condition == "service_started", f"{name}: unknown condition {condition}"


@pytest.mark.parametrize("name", ["migrate", "temporal-setup"])
def test_one_shot_services_do_not_restart(services: dict[str, Any], name: str) -> None:
    assert services[name].get("restart") == "no"


# --- orderflow services ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ORDERFLOW_SERVICES)
def test_orderflow_service_builds_our_image(services: dict[str, Any], name: str) -> None:
    service = services[name]
    build = service.get("build")
    assert build, f"{name} must be built from this repository"
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context).resolve() == ROOT
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE
    assert service.get("image") == services["api"].get("image"), "one image for all processes"


@pytest.mark.parametrize(("name", "subcommand"), sorted(ORDERFLOW_COMMANDS.items()))
def test_orderflow_service_runs_its_command(
    services: dict[str, Any], name: str, subcommand: str
) -> None:
    service = services[name]
    assert "entrypoint" not in service
    assert argv(service.get("command")) == ["orderflow", subcommand]


@pytest.mark.parametrize("name", ORDERFLOW_SERVICES)
def test_orderflow_service_gets_the_shared_environment(
    compose: dict[str, Any], services: dict[str, Any], name: str
) -> None:
    shared = compose["x-orderflow-env"]
    env = environment(services[name])
    assert {key: env.get(key) for key in shared} == {key: str(v) for key, v in shared.items()}


@pytest.mark.parametrize("name", ORDERFLOW_SERVICES)
def test_orderflow_service_reaches_postgres_and_temporal(
    services: dict[str, Any], name: str
) -> None:
    env = environment(services[name])
    url = urlsplit(env["ORDERFLOW_DATABASE_URL"])
    database, role = init_script_names()
    assert url.scheme == "postgresql+psycopg"
    assert url.hostname == "postgresql" and "postgresql" in services
    assert url.port == 5432
    assert url.path == f"/{database}", "the database that deploy/postgres-init.sql creates"
    assert url.username == role, "the role that deploy/postgres-init.sql creates"
    assert url.password
    assert host_port(env["ORDERFLOW_TEMPORAL_ADDRESS"]) == ("temporal", 7233)
    assert "temporal" in services


@pytest.mark.parametrize("name", ORDERFLOW_SERVICES)
def test_orderflow_environment_is_valid_settings(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in list(os.environ):
        if key.startswith("ORDERFLOW_"):
            monkeypatch.delenv(key)
    for key, value in environment(services[name]).items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.temporal_address == "temporal:7233"
    assert settings.webhook_secret == TEST_ENV["ORDERFLOW_WEBHOOK_SECRET"]
    assert settings.payment_webhook_secret == TEST_ENV["ORDERFLOW_PAYMENT_WEBHOOK_SECRET"]


def test_database_password_is_the_one_given_to_postgresql() -> None:
    custom = load_compose({**TEST_ENV, "APP_DB_PASSWORD": "not-the-default"})["services"]
    url = urlsplit(environment(custom["worker"])["ORDERFLOW_DATABASE_URL"])
    assert url.password == "not-the-default"
    assert environment(custom["postgresql"])["APP_DB_PASSWORD"] == "not-the-default"
    assert "APP_DB_PASSWORD" in POSTGRES_INIT.read_text(), "the init script reads it"


@pytest.mark.parametrize(
    ("variable", "senders"),
    [
        ("ORDERFLOW_WEBHOOK_SECRET", ("carrier",)),
        ("ORDERFLOW_PAYMENT_WEBHOOK_SECRET", ("payment",)),
    ],
)
def test_webhook_secrets_are_required_and_shared(variable: str, senders: tuple[str, ...]) -> None:
    with pytest.raises(MissingVariableError, match=variable):
        load_compose({k: v for k, v in TEST_ENV.items() if k != variable})
    services = load_compose({**TEST_ENV, variable: "s3cret"})["services"]
    for name in ("api", "worker", *senders):
        assert environment(services[name])[variable] == "s3cret"


def test_one_temporal_namespace_everywhere(services: dict[str, Any]) -> None:
    namespace = environment(services["worker"])["ORDERFLOW_TEMPORAL_NAMESPACE"]
    assert environment(services["temporal"]).get("DEFAULT_NAMESPACE", "default") == namespace
    assert environment(services["temporal-setup"])["TEMPORAL_NAMESPACE"] == namespace
    assert {
        environment(services[n])["ORDERFLOW_TEMPORAL_NAMESPACE"] for n in ORDERFLOW_SERVICES
    } == {namespace}


def test_worker_scales_out(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert worker.get("deploy", {}).get("replicas", 1) >= 2
    assert "container_name" not in worker, "a fixed container name prevents replicas"
    assert not worker.get("ports"), "published ports would clash between replicas"


def test_api_is_published_and_healthchecked(services: dict[str, Any]) -> None:
    api = services["api"]
    env = environment(api)
    assert ("8000", "8000") in published_ports(api)
    assert env["ORDERFLOW_API_HOST"] == "0.0.0.0"
    assert env.get("ORDERFLOW_API_PORT", "8000") == "8000"
    probe = " ".join(argv(api["healthcheck"]["test"]))
    assert "/healthz" in probe and ":8000" in probe


def test_carrier_webhooks_reach_the_api(services: dict[str, Any]) -> None:
    public = urlsplit(environment(services["carrier"])["ORDERFLOW_PUBLIC_URL"])
    assert (public.hostname, public.port) == ("api", 8000)


@pytest.mark.parametrize(("name", "setting"), [("payment", "PAYMENT"), ("carrier", "CARRIER")])
def test_providers_default_to_the_standins(
    services: dict[str, Any], name: str, setting: str
) -> None:
    env = environment(services["worker"])
    url = urlsplit(env[f"ORDERFLOW_{setting}_URL"])
    assert url.hostname == name
    assert url.port == int(environment(services[name])[f"ORDERFLOW_{setting}_PORT"])
    real = f"https://{name}.provider.example"
    replaced = load_compose({**TEST_ENV, f"ORDERFLOW_{setting}_URL": real})["services"]
    assert environment(replaced["worker"])[f"ORDERFLOW_{setting}_URL"] == real


@pytest.mark.parametrize("name", STANDINS)
def test_standins_are_marked_as_standins(name: str) -> None:
    lines = COMPOSE_FILE.read_text().splitlines()
    index = lines.index(f"  {name}:")
    comment = []
    while index > 0 and lines[index - 1].strip().startswith("#"):
        index -= 1
        comment.append(lines[index])
    text = " ".join(comment).lower()
    assert "stand-in" in text and "production" in text, f"{name} needs a stand-in comment"


@pytest.mark.parametrize("name", STANDINS)
def test_standins_keep_state_in_a_volume(
    compose: dict[str, Any], services: dict[str, Any], name: str
) -> None:
    data_dir = environment(services[name])["ORDERFLOW_DATA_DIR"]
    volumes = [str(v).split(":") for v in services[name].get("volumes", [])]
    assert any(v[1] == data_dir and v[0] in compose.get("volumes", {}) for v in volumes)


# --- Temporal and PostgreSQL ----------------------------------------------------------------------


def test_temporal_uses_postgres_persistence(services: dict[str, Any]) -> None:
    temporal = services["temporal"]
    env = environment(temporal)
    postgres = environment(services["postgresql"])
    assert split_image(temporal["image"])[0] == "temporalio/auto-setup"
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env.get("DB_PORT") == "5432"
    assert env["POSTGRES_USER"] == postgres["POSTGRES_USER"]
    assert env["POSTGRES_PWD"] == postgres["POSTGRES_PASSWORD"]


def test_temporal_password_follows_the_postgres_password() -> None:
    custom = load_compose({**TEST_ENV, "POSTGRES_PASSWORD": "changed"})["services"]
    assert environment(custom["temporal"])["POSTGRES_PWD"] == "changed"
    assert environment(custom["postgresql"])["POSTGRES_PASSWORD"] == "changed"


@pytest.mark.parametrize("name", ["temporal-setup", "temporal-ui"])
def test_temporal_clients_use_the_compose_address(services: dict[str, Any], name: str) -> None:
    assert host_port(environment(services[name])["TEMPORAL_ADDRESS"]) == ("temporal", 7233)


def test_temporal_ui(services: dict[str, Any]) -> None:
    ui = services["temporal-ui"]
    assert split_image(ui["image"])[0] == "temporalio/ui"
    assert ("8080", "8080") in published_ports(ui)


def test_postgresql_service(compose: dict[str, Any], services: dict[str, Any]) -> None:
    postgres = services["postgresql"]
    assert split_image(postgres["image"])[0] in {"postgres", "library/postgres"}
    mounts = [str(v).split(":") for v in postgres["volumes"]]
    data = [m for m in mounts if m[1] == "/var/lib/postgresql/data"]
    assert data and data[0][0] in compose["volumes"], "data in a named volume"
    init = [m for m in mounts if m[1].startswith("/docker-entrypoint-initdb.d/")]
    assert init and (ROOT / init[0][0]).resolve() == POSTGRES_INIT
    assert "pg_isready" in argv(postgres["healthcheck"]["test"])


def test_postgres_init_script_creates_orderflow() -> None:
    sql = POSTGRES_INIT.read_text()
    assert init_script_names() == ("orderflow", "orderflow")
    assert re.search(r"CREATE\s+DATABASE\s+orderflow\s+OWNER\s+orderflow", sql, re.I)
    assert not re.search(r"PASSWORD\s+'", sql, re.I), "no password written in the script"


def test_setup_service_runs_the_setup_script(services: dict[str, Any]) -> None:
    setup = services["temporal-setup"]
    assert split_image(setup["image"])[0] == "temporalio/admin-tools"
    mounts = {m[1]: m[0] for m in (str(v).split(":") for v in setup["volumes"])}
    scripts = [
        target for target, source in mounts.items() if (ROOT / source).resolve() == SETUP_SCRIPT
    ]
    assert scripts, "deploy/temporal-setup.sh is mounted"
    assert scripts[0] in argv(setup.get("entrypoint")) + argv(setup.get("command"))


# --- the setup script, run against a fake `temporal` ----------------------------------------------

FAKE_TEMPORAL = r"""
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["FAKE_TEMPORAL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
state = Path(os.environ["FAKE_TEMPORAL_STATE"])
mode = os.environ["FAKE_TEMPORAL_MODE"]
registered = json.loads(state.read_text()) if state.exists() else {}


def flag(name):
    return args[args.index(name) + 1]


if args[:3] == ["operator", "cluster", "health"]:
    print("temporal.api.workflowservice.v1.WorkflowService: SERVING")
elif args[:3] == ["operator", "namespace", "describe"]:
    print("NamespaceInfo.Name  " + flag("--namespace"))
elif args[:3] == ["operator", "search-attribute", "create"]:
    name, type_ = flag("--name"), flag("--type")
    if mode == "broken":
        sys.exit("Error: unable to add search attributes: connection refused")
    if name in registered:
        sys.exit(f"Error: search attribute {name} already exists")
    registered[name] = "Text" if mode == "wrong-type" else type_
    state.write_text(json.dumps(registered))
    print("Search attributes have been added")
elif args[:3] == ["operator", "search-attribute", "list"]:
    print("        Name                Type    ")
    print("  WorkflowId             Keyword    ")
    for name, type_ in registered.items():
        print(f"  {name:<22} {type_:<11}")
else:
    sys.exit(f"unexpected call: {args}")
"""


def run_setup_script(
    tmp_path: Path, services: dict[str, Any], mode: str, registered: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = tmp_path / "fake_temporal.py"
    fake.write_text(FAKE_TEMPORAL)
    wrapper = bin_dir / "temporal"
    wrapper.write_text(
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(fake))} "$@"\n'
    )
    wrapper.chmod(0o755)
    state = tmp_path / "state.json"
    if registered is not None:
        state.write_text(json.dumps(registered))
    log = tmp_path / "calls.jsonl"
    env = {
        **os.environ,
        **environment(services["temporal-setup"]),
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "TEMPORAL_SETUP_TIMEOUT_SECONDS": "10",
        "FAKE_TEMPORAL_LOG": str(log),
        "FAKE_TEMPORAL_STATE": str(state),
        "FAKE_TEMPORAL_MODE": mode,
    }
    result = subprocess.run(
        ["sh", str(SETUP_SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


needs_sh = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


@needs_sh
def test_setup_script_registers_exactly_the_search_attributes(
    tmp_path: Path, services: dict[str, Any]
) -> None:
    result, calls = run_setup_script(tmp_path, services, "fresh")
    assert result.returncode == 0, result.stderr
    creates = [c for c in calls if c[:3] == ["operator", "search-attribute", "create"]]
    registered = [(c[c.index("--name") + 1], c[c.index("--type") + 1]) for c in creates]
    assert sorted(registered) == sorted(SEARCH_ATTRIBUTES.items())
    setup_env = environment(services["temporal-setup"])
    for call in creates:
        assert call[call.index("--namespace") + 1] == setup_env["TEMPORAL_NAMESPACE"]
        assert call[call.index("--address") + 1] == setup_env["TEMPORAL_ADDRESS"]


@needs_sh
def test_setup_script_tolerates_already_registered_attributes(
    tmp_path: Path, services: dict[str, Any]
) -> None:
    result, _ = run_setup_script(tmp_path, services, "fresh", registered=dict(SEARCH_ATTRIBUTES))
    assert result.returncode == 0, result.stderr
    assert "already registered" in result.stdout


@needs_sh
@pytest.mark.parametrize("mode", ["broken", "wrong-type"])
def test_setup_script_fails_when_registration_fails(
    tmp_path: Path, services: dict[str, Any], mode: str
) -> None:
    result, _ = run_setup_script(tmp_path, services, mode)
    assert result.returncode != 0


# --- files, images and settings names -------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with comments dropped and continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        if line.strip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        if pending.strip():
            keyword, _, args = pending.strip().partition(" ")
            instructions.append((keyword.upper(), args.strip()))
        pending = ""
    return instructions


def dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, args in dockerfile_instructions():
        if keyword == "ENV":
            tokens = shlex.split(args)
            if "=" not in tokens[0]:
                env[tokens[0]] = " ".join(tokens[1:])
            else:
                env.update(token.split("=", 1) for token in tokens)
    return env


def copy_sources() -> list[str]:
    sources = []
    for keyword, args in dockerfile_instructions():
        if keyword not in {"COPY", "ADD"}:
            continue
        tokens = json.loads(args) if args.startswith("[") else shlex.split(args)
        if any(token.startswith("--from") for token in tokens):
            continue
        sources += [token for token in tokens if not token.startswith("--")][:-1]
    return sources


def test_every_referenced_file_exists(services: dict[str, Any]) -> None:
    referenced = [f"Dockerfile:{source}" for source in copy_sources()]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):
                referenced.append(f"{name}:{source}")
        for env_file in argv(service.get("env_file")):
            referenced.append(f"{name}:{env_file}")
    assert any(ref.startswith("postgresql:") for ref in referenced)
    missing = [ref for ref in referenced if not (ROOT / ref.split(":", 1)[1]).exists()]
    assert not missing, f"referenced but not in the repository: {missing}"


def test_deploy_scripts_are_executable_shell() -> None:
    assert SETUP_SCRIPT.read_text().startswith("#!/bin/sh\n")
    assert os.access(SETUP_SCRIPT, os.X_OK)


def test_dockerfile_copies_every_package_pip_needs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {source.strip("/").removeprefix("./") for source in copy_sources()}
    needed = packages | {"pyproject.toml", project["project"].get("readme", "pyproject.toml")}
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"


def test_dockerfile_builds_a_non_root_image_running_the_api() -> None:
    instructions = dockerfile_instructions()
    bases = [args.split()[0] for keyword, args in instructions if keyword == "FROM"]
    assert bases and all(re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", b) for b in bases)
    assert any(k == "RUN" and re.search(r"\bpip install \.(\s|$)", a) for k, a in instructions)
    final_stage = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [args for keyword, args in final_stage if keyword == "USER"]
    assert users, "the final stage must switch to a non-root user"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    commands = [args for keyword, args in final_stage if keyword == "CMD"]
    assert commands and json.loads(commands[-1]) == ["orderflow", "api"]
    assert not [args for keyword, args in final_stage if keyword == "ENTRYPOINT"]


def test_no_image_uses_latest(compose: dict[str, Any]) -> None:
    images = [
        node["image"]
        for key, node in [*compose["services"].items(), *compose.items()]
        if isinstance(node, dict) and "image" in node
    ]
    stages = set()
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            words = args.split()
            if words[0] not in stages and words[0] != "scratch":
                images.append(words[0])
            if len(words) == 3 and words[1].upper() == "AS":
                stages.add(words[2])
    assert len(images) > len(ORDERFLOW_SERVICES)
    for image in images:
        _, tag, digest = split_image(image)
        assert digest or (tag and tag != "latest"), f"{image} is not pinned"


def orderflow_variable_names(compose: dict[str, Any]) -> set[str]:
    names = set(dockerfile_env())
    for key, node in compose.items():
        if key.startswith("x-") and isinstance(node, dict):
            names |= set(node) | set(environment(node))
    for service in compose["services"].values():
        names |= set(environment(service))
    names |= set(re.findall(r"\$\{?(ORDERFLOW_\w+?)(?=[:?\-+}]|\b)", COMPOSE_FILE.read_text()))
    return {name for name in names if name.startswith("ORDERFLOW_")}


def test_every_orderflow_variable_is_a_setting(compose: dict[str, Any]) -> None:
    assert Settings.model_config.get("env_prefix") == "ORDERFLOW_"
    names = orderflow_variable_names(compose)
    assert {"ORDERFLOW_DATABASE_URL", "ORDERFLOW_API_HOST", "ORDERFLOW_DATA_DIR"} <= names
    unknown = sorted(
        name
        for name in names
        if name.removeprefix("ORDERFLOW_").lower() not in Settings.model_fields
    )
    assert not unknown, f"not fields of orderflow.settings.Settings: {unknown}"


def test_dockerfile_and_compose_agree_on_the_data_dir(services: dict[str, Any]) -> None:
    image_dir = dockerfile_env()["ORDERFLOW_DATA_DIR"]
    for name in ORDERFLOW_SERVICES:
        assert environment(services[name]).get("ORDERFLOW_DATA_DIR", image_dir) == image_dir
