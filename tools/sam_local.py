"""The SAM CLI's own `sam local invoke`, in Docker, on the built functions: what `make sam-local` and
`make invoke DOCKER=1` run, and the tests beside the emulator's (tests/template/test_built_artifact.py).

- The base image. `sam local invoke` runs a ZIP function in AWS's base image for its runtime
  (public.ecr.aws/lambda/python:3.13-x86_64 here: `images()` asks the SAM CLI), on which it builds its "rapid"
  image, with the Runtime Interface Emulator. Where AWS's image is present or can be pulled, it is used as it is.
  Where it cannot be pulled (no network but Debian's packages), `ensure_base_image` builds a stand-in from Debian's
  packages (tools/lambda_image) and tags it with AWS's name, so that `sam local invoke --skip-pull-image` uses it.
  The stand-in carries a label with the digest of its inputs: it is rebuilt only when they change, and an image
  without the label (AWS's) is never replaced.
- The network. The SAM CLI runs the container on Docker's bridge network (it ignores `--docker-network host`),
  where 127.0.0.1 is the container itself. samconfig.toml maps host.docker.internal to the host (`host-gateway`),
  and `BridgeRelay` forwards what reaches the bridge's gateway address to the servers on this machine's 127.0.0.1,
  which keep listening on loopback only.
- The runner. `SamLocal` runs a built function with `sam local invoke` on an event, in the environment the
  emulator path gives it: the endpoints through the template's local-invoke parameters and the rest through
  `--env-vars`, as a user would, with samconfig.toml's local_invoke settings in effect.

    python tools/sam_local.py image        # the base image: AWS's, or the stand-in (built once; cached)
    python tools/sam_local.py relay 4599   # `make endpoint`, reachable at host.docker.internal:4599 in Docker
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import select
import shlex
import shutil
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit, urlunsplit

from invoke_local import (
    AWSLAMBDARIC,
    BUILD_DIR,
    ROOT,
    SAM_VENV,
    Invocation,
    emulator,
    host_architecture,
    sam,
    tool_environment,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

RUNTIME = "python3.13"
IMAGE_RECIPE = ROOT / "tools" / "lambda_image"
IMAGE_CONTEXT = ROOT / "build" / "lambda-image"
DEBIAN_SUITE = "trixie"  # Debian 13, whose python3.13 is the runtime's Python
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# python3.13; the C++ runtime awslambdaric's extension links; the TLS roots AWS's image has too.
DEBIAN_PACKAGES = ("python3.13", "libstdc++6", "ca-certificates")
LEFT_OUT = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*")
DEBIAN_ARCHITECTURES = {"x86_64": "amd64", "arm64": "arm64"}
PIP_PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
STAND_IN_LABEL = "codepipeline-job-worker.lambda-stand-in"
# The template's local-invoke parameters, by the variable each one sets.
ENDPOINT_PARAMETERS = {
    "AWS_ENDPOINT_URL_CODEPIPELINE": "CodePipelineEndpointUrl",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER": "SecretsManagerEndpointUrl",
    "AWS_ENDPOINT_URL_SQS": "SqsEndpointUrl",
    "AWS_ENDPOINT_URL_DYNAMODB": "DynamoDbEndpointUrl",
}
# What the SAM CLI hands the container from its own session (credentials and region), not from the template.
SESSION_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")
# All the SAM CLI process keeps of this one's environment: it gives a function any variable of the template that
# is set in its own environment, above the template's value (ACTION_TYPES, AWS_MAX_ATTEMPTS, POWERTOOLS_...).
INHERITED_VARIABLES = ("PATH", "HOME", "TMPDIR", "LANG", "DOCKER_HOST", "DOCKER_CONFIG", "DOCKER_CONTEXT")
# The SAM CLI asks STS for the account id: offline, with throwaway credentials, one attempt fails at once (it then
# uses 123456789012) where the default retries take up to 15 s. A config file, as AWS_MAX_ATTEMPTS is the
# template's (see above).
SAM_AWS_CONFIG = "[default]\nmax_attempts = 1\n"
LOOPBACK = ("127.0.0.1", "localhost")


class DockerUnavailable(RuntimeError):
    """Docker, or what the base image needs, is missing: the message says what and what to do."""


def log(message: str) -> None:
    print(f"sam_local: {message}", file=sys.stderr, flush=True)


def docker_problem() -> str | None:
    """Why `sam local invoke` cannot run here, in one line; None when Docker answers."""
    if shutil.which("docker") is None:
        return "Docker is not installed (`make sam-local` installs Debian's docker.io when run as root)"
    done = subprocess.run(
        ["docker", "info", "--format", "{{.ServerVersion}}"],  # noqa: S607 - Docker from PATH, as the SAM CLI finds it
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        if "permission denied" in done.stderr:
            return "the Docker daemon's socket is not yours (permission denied): join the docker group"
        reason = next((line for line in done.stderr.splitlines() if line.strip()), "no answer")
        return f"the Docker daemon does not answer ({reason.strip()}); `make sam-local` starts it when run as root"
    return None


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)  # noqa: S603, S607


# -- the base image -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Images:
    """The images `sam local invoke` uses for the runtime: the base it builds on, the "rapid" one it runs."""

    base: str
    rapid: str


def images(architecture: str) -> Images:
    """The names the SAM CLI itself gives them (tools/sam_inspect.py records what it would build)."""
    done = subprocess.run(  # noqa: S603 - the project's own SAM CLI environment
        [str(SAM_VENV / "bin" / "python"), str(ROOT / "tools" / "sam_inspect.py"), "images", RUNTIME, architecture],
        env=tool_environment(),
        capture_output=True,
        text=True,
        check=True,
    )
    names = json.loads(done.stdout)
    return Images(names["base"], names["rapid"])


def image_labels(name: str) -> dict[str, str] | None:
    """The image's labels; None when there is no such image."""
    done = docker("image", "inspect", "--format", "{{json .Config.Labels}}", name, check=False)
    if done.returncode != 0:
        return None
    return json.loads(done.stdout) or {}


def stand_in_digest(architecture: str) -> str:
    """The digest of everything the stand-in is made of: a change to any of it means a rebuild."""
    digest = hashlib.sha256()
    digest.update(
        json.dumps([DEBIAN_SUITE, DEBIAN_MIRROR, DEBIAN_PACKAGES, LEFT_OUT, AWSLAMBDARIC, architecture]).encode()
    )
    recipe = sorted(path for path in IMAGE_RECIPE.iterdir() if path.name != "README.md")
    for path in [*recipe, emulator()]:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_base_image(names: Images, architecture: str) -> str:
    """The base image `sam local invoke --skip-pull-image` needs, present: AWS's when it is there or can be
    pulled, else the stand-in (built when absent or out of date). Says which. One process at a time on this
    machine (clones share the Docker daemon): the others wait, then find it there."""
    lock_path = Path(tempfile.gettempdir(), f"{names.base.replace('/', '_').replace(':', '_')}.stand-in.lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _ensure_base_image(names, architecture)


def _ensure_base_image(names: Images, architecture: str) -> str:
    labels = image_labels(names.base)
    if labels is not None and STAND_IN_LABEL not in labels:
        return f"{names.base}: AWS's image"
    digest = stand_in_digest(architecture)
    if labels is not None and labels[STAND_IN_LABEL] == digest:
        return f"{names.base}: the local stand-in, up to date"
    pulled = docker("pull", "--quiet", names.base, check=False)
    if pulled.returncode == 0:
        docker("image", "rm", names.rapid, check=False)  # built on what was there before
        return f"{names.base}: AWS's image, pulled"
    reason = (pulled.stderr.strip().splitlines() or ["no answer"])[-1]
    log(f"cannot pull {names.base} ({reason}): building a stand-in from Debian's packages")
    started = time.monotonic()
    build_stand_in(names, architecture, digest)
    size = int(docker("image", "inspect", "--format", "{{.Size}}", names.base).stdout)
    return f"{names.base}: the local stand-in, built in {time.monotonic() - started:.0f} s, {size / 1e6:.0f} MB"


def build_stand_in(names: Images, architecture: str, digest: str) -> None:
    """The stand-in from tools/lambda_image: Debian's root file system, awslambdaric for python3.13, the
    emulator from the SAM CLI wheel (as AWS's image carries one), tagged with AWS's name and labelled."""
    rootfs = root_file_system(architecture)
    shutil.rmtree(IMAGE_CONTEXT, ignore_errors=True)
    shutil.copytree(IMAGE_RECIPE, IMAGE_CONTEXT, ignore=shutil.ignore_patterns("README.md"))
    os.link(rootfs, IMAGE_CONTEXT / "rootfs.tar")
    shutil.copy2(emulator(), IMAGE_CONTEXT / "aws-lambda-rie")
    subprocess.run(  # noqa: S603 - pip, for the image's platform and Python
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(IMAGE_CONTEXT / "runtime"),
            "--platform",
            PIP_PLATFORMS[architecture],
            "--python-version",
            "3.13",
            "--implementation",
            "cp",
            "--only-binary=:all:",
            AWSLAMBDARIC,
        ],
        check=True,
        stdout=sys.stderr,
    )
    built = docker(
        "build", "--label", f"{STAND_IN_LABEL}={digest}", "--tag", names.base, str(IMAGE_CONTEXT), check=False
    )
    if built.returncode != 0:
        raise DockerUnavailable(f"docker build of the stand-in failed:\n{built.stdout[-2000:]}{built.stderr[-2000:]}")
    docker("image", "rm", names.rapid, check=False)  # the SAM CLI builds it again, on the new base
    shutil.rmtree(IMAGE_CONTEXT)


def root_file_system(architecture: str) -> Path:
    """Debian's essential packages and DEBIAN_PACKAGES as a tarball (mmdebstrap), kept in build/ by its inputs."""
    inputs = json.dumps([DEBIAN_SUITE, DEBIAN_MIRROR, DEBIAN_PACKAGES, LEFT_OUT, architecture]).encode()
    path = ROOT / "build" / f"lambda-rootfs-{hashlib.sha256(inputs).hexdigest()[:16]}.tar"
    if path.exists():
        return path
    mmdebstrap = shutil.which("mmdebstrap") or install_debian_package("mmdebstrap")
    path.parent.mkdir(exist_ok=True)
    partial = path.with_suffix(".partial.tar")
    log(f"mmdebstrap: Debian {DEBIAN_SUITE} with {', '.join(DEBIAN_PACKAGES)}")
    subprocess.run(  # noqa: S603 - Debian's mmdebstrap
        [
            mmdebstrap,
            "--quiet",
            "--variant=essential",
            f"--architectures={DEBIAN_ARCHITECTURES[architecture]}",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            *(f"--dpkgopt=path-exclude={pattern}" for pattern in LEFT_OUT),
            DEBIAN_SUITE,
            str(partial),
            DEBIAN_MIRROR,
        ],
        check=True,
        stdout=sys.stderr,
    )
    partial.replace(path)
    return path


def install_debian_package(package: str) -> str:
    """Install a Debian package's command, where allowed (root, apt-get): CI and containers."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DockerUnavailable(f"{package} is not installed: `apt-get install {package}` (Debian, Ubuntu)")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, env=environment, capture_output=True, check=False).returncode != 0:  # noqa: S603
        subprocess.run(["apt-get", "update", "-qq"], env=environment, check=True)  # noqa: S607
        subprocess.run(install, env=environment, capture_output=True, check=True)  # noqa: S603
    return str(shutil.which(package))


# -- the network --------------------------------------------------------------------------------------------


def container_host() -> str:
    """The host name samconfig.toml's local_invoke settings map to this machine (`add_host`, to host-gateway)."""
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    settings = config.get("default", {}).get("local_invoke", {}).get("parameters", {})
    for entry in settings.get("add_host", []):
        name, _, address = entry.partition(":")
        if address == "host-gateway":
            return str(name)
    raise RuntimeError(
        "samconfig.toml's [default.local_invoke.parameters] maps no host name to host-gateway (add_host): "
        "a function in Docker could not reach the local endpoint"
    )


def gateway_address(image: str) -> str:
    """The address `host-gateway` stands for, as Docker resolves it in a container (the bridge's gateway)."""
    hosts = docker("run", "--rm", "--add-host", "gateway:host-gateway", "--entrypoint", "cat", image, "/etc/hosts")
    for line in hosts.stdout.splitlines():
        address, *names = line.split()
        if "gateway" in names:
            return address
    raise DockerUnavailable(f"Docker did not resolve host-gateway:\n{hosts.stdout}")


class _Pipe(socketserver.BaseRequestHandler):
    """One relayed connection: bytes both ways until either side closes."""

    server: _RelayServer

    def handle(self) -> None:
        with socket.create_connection(("127.0.0.1", self.server.upstream_port), timeout=10) as upstream:
            peers = {self.request: upstream, upstream: self.request}
            while not self.server.closing.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.5)
                for side in readable:
                    data = side.recv(65536)
                    if not data:
                        return
                    peers[side].sendall(data)


class _RelayServer(socketserver.ThreadingTCPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], upstream_port: int, closing: threading.Event) -> None:
        super().__init__(address, _Pipe)
        self.upstream_port = upstream_port
        self.closing = closing


class BridgeRelay:
    """Forwards connections to the bridge's gateway address (which `host-gateway` names in a container) to the
    servers on this machine's 127.0.0.1: one relay port per server, while the relay runs. Where the gateway is
    not an address of this machine (Docker Desktop, whose host.docker.internal reaches the host's loopback
    itself), connections go straight to the server's own port."""

    def __init__(self, gateway: str, host_name: str) -> None:
        self.gateway = gateway
        self.host_name = host_name
        self._servers: dict[int, _RelayServer] = {}
        self._closing = threading.Event()
        self._lock = threading.Lock()

    def reachable(self, url: str) -> str:
        """The container's view of a URL on this machine's loopback; any other URL as it is."""
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK or parts.port is None:
            return url
        port = self._relay(parts.port)
        return urlunsplit(parts._replace(netloc=f"{self.host_name}:{port}"))

    def _relay(self, port: int) -> int:
        with self._lock:
            if port not in self._servers:
                try:
                    server = self._listen(port)
                except OSError:  # not an address here: Docker Desktop forwards to the host's loopback
                    return port
                threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True).start()
                self._servers[port] = server
            return int(self._servers[port].server_address[1])

    def _listen(self, port: int) -> _RelayServer:
        """The server's own port number on the gateway when it is free there, so that URLs read the same."""
        try:
            return _RelayServer((self.gateway, port), port, self._closing)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
            return _RelayServer((self.gateway, 0), port, self._closing)

    def close(self) -> None:
        self._closing.set()
        for server in self._servers.values():
            server.shutdown()
            server.server_close()


# -- the runner ---------------------------------------------------------------------------------------------


class SamLocal:
    """Runs the host build (build/sam-host/, as make invoke builds it) with `sam local invoke` in Docker: a
    `invoke_local.Runner`."""

    def __init__(self, overrides: dict[str, str] | None = None, template: Path = BUILD_DIR / "template.yaml") -> None:
        self.overrides = {"Architecture": host_architecture(), **(overrides or {})}
        self.template = template
        self.images: Images | None = None
        self._relay: BridgeRelay | None = None

    def __enter__(self) -> Self:
        problem = docker_problem()
        if problem:
            raise DockerUnavailable(problem)
        architecture = self.overrides["Architecture"]
        self.images = images(architecture)
        log(ensure_base_image(self.images, architecture))
        self._relay = BridgeRelay(gateway_address(self.images.base), container_host())
        return self

    def __exit__(self, *_: object) -> None:
        if self._relay is not None:
            self._relay.close()

    def reachable(self, url: str) -> str:
        assert self._relay is not None, "enter SamLocal first"  # noqa: S101 - a programming error
        return self._relay.reachable(url)

    @contextlib.contextmanager
    def running(self, function: dict[str, Any], environment: dict[str, str]) -> Iterator[SamFunction]:
        yield SamFunction(self, function, environment)


@dataclass
class SamFunction:
    """One function, invoked with `sam local invoke` (a container per invocation, as the command does)."""

    sam_local: SamLocal
    function: dict[str, Any]
    environment: dict[str, str]

    def command(self, event_file: Path, env_file: Path) -> list[str]:
        parameters = {**self.sam_local.overrides}
        parameters.update({ENDPOINT_PARAMETERS[k]: v for k, v in self.environment.items() if k in ENDPOINT_PARAMETERS})
        return sam(
            "local",
            "invoke",
            self.function["name"],
            "--template",
            str(self.sam_local.template),
            # With --template, the SAM CLI looks for samconfig.toml beside the template, not here.
            "--config-file",
            str(ROOT / "samconfig.toml"),
            "--event",
            str(event_file),
            "--env-vars",
            str(env_file),
            "--parameter-overrides",
            " ".join(f"{key}={value}" for key, value in parameters.items()),
            "--skip-pull-image",
        )

    def env_vars(self) -> dict[str, dict[str, str]]:
        """What --env-vars sets: the variables the template declares whose value the run changes. The SAM CLI
        resolves the rest from the template itself, and passes nothing the template does not declare."""
        declared = self.function["environment"]
        return {
            self.function["name"]: {
                key: value
                for key, value in self.environment.items()
                if key in declared and key not in ENDPOINT_PARAMETERS and declared[key] != value
            }
        }

    def invoke(self, event: Any) -> Invocation:
        """`sam local invoke` on the event: the function's response (stdout) and everything it logged (stderr)."""
        scratch = ROOT / "build"
        scratch.mkdir(exist_ok=True)
        with tempfile.TemporaryDirectory(dir=scratch, prefix="sam-local-") as directory:
            event_file, env_file = Path(directory, "event.json"), Path(directory, "env.json")
            event_file.write_text(json.dumps(event))
            env_file.write_text(json.dumps(self.env_vars()))
            session = {key: self.environment[key] for key in SESSION_VARIABLES if key in self.environment}
            aws_config = Path(directory, "aws-config")
            aws_config.write_text(SAM_AWS_CONFIG)
            inherited = {key: os.environ[key] for key in INHERITED_VARIABLES if key in os.environ}
            command = self.command(event_file, env_file)
            done = subprocess.run(  # noqa: S603 - the project's own SAM CLI
                command,
                cwd=ROOT,  # samconfig.toml's [default.local_invoke.parameters] apply, as for a user
                env={**inherited, "SAM_CLI_TELEMETRY": "0", "AWS_CONFIG_FILE": str(aws_config), **session},
                capture_output=True,
                text=True,
                timeout=int(self.function["timeout"]) + 120,
                check=False,
            )
        logs = f"$ {shlex.join(['sam', *command[1:]])}\n{done.stderr}"
        if done.returncode != 0 or not done.stdout.strip():
            raise RuntimeError(f"sam local invoke {self.function['name']} failed ({done.returncode}):\n{logs}")
        return Invocation(json.loads(done.stdout.strip().splitlines()[-1]), logs, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("image", help="make sure the base image is there: AWS's, or the stand-in (built once)")
    relay = commands.add_parser(
        "relay", help="until interrupted, let functions in Docker reach servers on 127.0.0.1 at host.docker.internal"
    )
    relay.add_argument("ports", type=int, nargs="+", help="the servers' ports on 127.0.0.1 (e.g. 4599)")
    args = parser.parse_args(argv)
    problem = docker_problem()
    if problem:
        log(problem)
        return 1
    try:
        names = images(host_architecture())
        log(ensure_base_image(names, host_architecture()))
        if args.command == "relay":
            serve_relay(BridgeRelay(gateway_address(names.base), container_host()), args.ports)
    except DockerUnavailable as error:
        log(str(error))
        return 1
    return 0


def serve_relay(relay: BridgeRelay, ports: list[int]) -> None:
    for port in ports:
        log(f"127.0.0.1:{port} is {relay.reachable(f'http://127.0.0.1:{port}')} in the functions' containers")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        relay.close()


if __name__ == "__main__":
    sys.exit(main())
