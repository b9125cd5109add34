"""The fleet as containers: images built from services/Dockerfile, run from the charts' pod specs.

`make base-image`, `make images`, `make up-containers` and `make down-containers` run this module
(`fleetctl containers base-image|images|up|down`).

Images: each service's image is built unchanged from services/Dockerfile with podman (or docker
where a user has it). The Dockerfile's pinned base comes from Docker Hub; where it cannot be
pulled (an offline machine), `ensure_base_image` builds a stand-in under the same name from Debian
bookworm (debootstrap and Debian's Python 3.11), so the Dockerfile stays as production builds it.

Pods: the umbrella chart is rendered with deploy/helm/fleet/values-containers.yaml plus what
this machine knows (each service's port and its peers' and dependencies' addresses from
`fleetctl.stack.Stack`, the same values `make up` gives its processes), and what it renders is run
as it is: the migration hook Jobs first (their pod template, each to completion), then every
Deployment and ConfigMap through `podman kube play`, with their commands, env, ports, probes and
securityContext. A cluster provides three things podman cannot, and this module stands in for them
only: Service DNS names (the pods share the host's network, so peers are at 127.0.0.1:<port>),
the secret store (it writes each `<service>-env` Secret as a podman secret), and secret volumes
(podman 4.3 crashes on them, so their files are written to a directory mounted read-only in their
place, as a kubelet does). Everything else a cluster runs (Services, ServiceAccounts, Rollouts,
autoscalers, NetworkPolicies) is listed as not run here.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from fleetctl.bootstrap import ensure_database, ensure_roles_and_schemas, run_service_command
from fleetctl.charts import UMBRELLA, build_charts, merge_values, render_fleet
from fleetctl.s3_emulator import S3Emulator
from fleetctl.smtp_sink import MailSink
from fleetctl.stack import ROOT, SERVICES, Stack, spec

Say = Callable[[str], None]

DOCKERFILE = ROOT / "services" / "Dockerfile"
VALUES = UMBRELLA / "values-containers.yaml"
PODMAN_CONF = ROOT / "deploy" / "podman" / "containers.conf"
IMAGE_REGISTRY = "localhost"
DEFAULT_TAG = "dev"
# The UID and GID the images and the charts run as.
FLEET_UID = 10001

# Environment the charts set themselves, or that the image does.
_CHART_KEYS = frozenset({"FLEET_ENV", "HOST", "PORT", "PYTHONUNBUFFERED"})
# Values of a service's Secret: credentials are never in a ConfigMap (the charts' values schema
# refuses them in `config`).
SECRET_KEYS = frozenset(
    {
        "DATABASE_URL",
        "AMQP_URL",
        "REDIS_URL",
        "SMTP_URL",
        # Object storage's keys (the worker's exports and reports).
        "S3_ACCESS_KEY_ID",
        "S3_SECRET_ACCESS_KEY",
        # Service identity (client credentials): each caller's secret, and auth's copy of each.
        "SERVICE_CLIENT_SECRET",
        "GATEWAY_CLIENT_SECRET",
        "ORDERS_CLIENT_SECRET",
        "WORKER_CLIENT_SECRET",
    }
)
# Set by the worker chart from values of their own (never in `config`): key -> (values block,
# value name, whether the value is a number).
_OWN_VALUES = {
    "S3_ENDPOINT_URL": ("objectStorage", "endpointUrl", False),
    "S3_PRESIGN_ENDPOINT_URL": ("objectStorage", "presignEndpointUrl", False),
    "S3_REGION": ("objectStorage", "region", False),
    "S3_BUCKET": ("objectStorage", "bucket", False),
    "COMMAND_PREFETCH": ("commands", "prefetch", True),
    "EXPORT_DEADLINE_SECONDS": ("exports", "deadlineSeconds", True),
    "EXPORT_DEADLINE_SCAN_SECONDS": ("exports", "deadlineScanSeconds", True),
    "RECONCILIATION_EVERY_SECONDS": ("reconciliation", "everySeconds", True),
    "RECONCILIATION_CHECK_SECONDS": ("reconciliation", "checkSeconds", True),
    "RECONCILIATION_SETTLE_SECONDS": ("reconciliation", "settleSeconds", True),
}
# The one secret volume of the charts: auth's signing keys, made by `python -m auth keys ensure`.
JWT_KEYS_SECRET = "auth-jwt-keys"  # noqa: S105 - a Secret's name
# Environment variables that name a directory a Secret volume fills (the chart sets them).
_MOUNTED_KEYS = frozenset({"JWT_KEYS_DIR"})


class ContainersError(RuntimeError):
    """Something the container engine was asked to do failed; the message says what and why."""


# --- The engine ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Engine:
    """The container engine's command line: podman, or docker where a user has it."""

    name: str
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_podman(self) -> bool:
        return self.name == "podman"

    def run(
        self,
        *args: str,
        input_text: str | None = None,
        timeout: float | None = 600,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.name, *args],
            input=input_text,
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            msg = f"`{self.name} {' '.join(args)}` failed ({result.returncode}):\n{result.stderr}"
            raise ContainersError(msg)
        return result

    def stream(self, *args: str) -> subprocess.Popen[str]:
        """The command running in the background, its output (stdout and stderr) piped."""
        return subprocess.Popen(
            [self.name, *args],
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def has_image(self, reference: str) -> bool:
        return self.run("image", "inspect", reference, check=False).returncode == 0


def detect_engine(env: Mapping[str, str] = os.environ) -> Engine:
    """`FLEET_CONTAINER_ENGINE` if set, else podman, else docker. podman gets Fleet's settings
    (deploy/podman/containers.conf) unless CONTAINERS_CONF names others."""
    wanted = env.get("FLEET_CONTAINER_ENGINE")
    candidates = [wanted] if wanted else ["podman", "docker"]
    for name in candidates:
        if shutil.which(name):
            extra = (
                {}
                if name != "podman" or "CONTAINERS_CONF" in env
                else {"CONTAINERS_CONF": str(PODMAN_CONF)}
            )
            return Engine(name, extra)
    msg = (
        f"no container engine found ({' or '.join(candidates)}): "
        "apt-get install -y podman (see `make container-tools`)"
    )
    raise ContainersError(msg)


# --- Images ---------------------------------------------------------------------------------------


def base_image(dockerfile: Path = DOCKERFILE) -> str:
    """The one base image every stage of the Dockerfile starts from, fully qualified."""
    bases = {
        line.split()[1]
        for line in dockerfile.read_text(encoding="utf-8").splitlines()
        if line.upper().startswith("FROM ")
    }
    if len(bases) != 1:
        msg = f"{dockerfile} has {len(bases)} base images ({', '.join(sorted(bases))}), not one"
        raise ContainersError(msg)
    (name,) = bases
    if "/" not in name.split(":")[0]:
        name = f"docker.io/library/{name}"
    return name


def image_name(service: str, tag: str = DEFAULT_TAG) -> str:
    """The name the chart gives the service's image under values-containers.yaml."""
    return f"{IMAGE_REGISTRY}/fleet-{service}:{tag}"


def ensure_base_image(engine: Engine, say: Say, *, work_dir: Path) -> str:
    """The Dockerfile's base image: already there, pulled, or else built as a stand-in."""
    reference = base_image()
    if engine.has_image(reference):
        say(f"images: base image {reference} is present")
        return reference
    say(f"images: pulling {reference}")
    pulled = engine.run("pull", reference, check=False, timeout=900)
    if pulled.returncode == 0:
        return reference
    say(f"images: {reference} cannot be pulled ({_last_line(pulled.stderr)}); building a stand-in")
    build_standin_base(engine, reference, say, work_dir=work_dir)
    return reference


def build_standin_base(engine: Engine, reference: str, say: Say, *, work_dir: Path) -> None:
    """`reference` built from Debian bookworm: debootstrap's minimal system with Debian's Python
    3.11, pip and venv, laid out like the official slim image (`python`, `pip` on the PATH in
    /usr/local/bin, pip allowed to install system-wide, C.UTF-8). It trusts this machine's extra
    CA certificates (a TLS-inspecting proxy between a build and PyPI). For local builds only:
    production CI pulls the real base."""
    if shutil.which("debootstrap") is None:
        msg = (
            "debootstrap is needed to build the stand-in base image: apt-get install -y debootstrap"
        )
        raise ContainersError(msg)
    if os.geteuid() != 0:
        msg = "building the stand-in base image needs root (debootstrap, chroot)"
        raise ContainersError(msg)
    started = time.monotonic()
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="base-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        packages = "python3,python3-pip,python3-venv,ca-certificates"
        say("images: debootstrap bookworm (about a minute)")
        _checked(
            ["debootstrap", "--variant=minbase", f"--include={packages}", "bookworm", str(rootfs)],
            "debootstrap",
        )
        extra_cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
        for certificate in extra_cas:
            shutil.copy2(certificate, rootfs / "usr/local/share/ca-certificates" / certificate.name)
        if extra_cas:
            _checked(["chroot", str(rootfs), "update-ca-certificates"], "update-ca-certificates")
        (rootfs / "usr/lib/python3.11/EXTERNALLY-MANAGED").unlink(missing_ok=True)
        for name, target in (("python", "python3"), ("python3", "python3"), ("pip", "pip3")):
            (rootfs / "usr/local/bin" / name).symlink_to(f"/usr/bin/{target}")
        for leftovers in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc"):
            for path in (rootfs / leftovers).glob("*"):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.name != "lock":
                    path.unlink()
        changes = [
            "ENV LANG=C.UTF-8",
            "ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
            f'LABEL org.opencontainers.image.description="Fleet stand-in for {reference}"',
            'CMD ["python3"]',
        ]
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        command = [engine.name, "import"]
        for change in changes:
            command += ["--change", change]
        imported = subprocess.run(
            [*command, "-", reference],
            stdin=tar.stdout,
            env={**os.environ, **engine.env},
            capture_output=True,
            text=True,
            check=False,
        )
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            msg = f"importing the stand-in base image failed:\n{imported.stderr}"
            raise ContainersError(msg)
    size = _image_size(engine, reference)
    say(f"images: stand-in {reference} built in {time.monotonic() - started:.0f} s ({size})")


def build_images(
    engine: Engine, say: Say, *, services: Iterable[str] | None = None, tag: str = DEFAULT_TAG
) -> dict[str, str]:
    """Build each service's image from services/Dockerfile; its name by service."""
    built: dict[str, str] = {}
    for name in services or [s.name for s in SERVICES]:
        reference = image_name(name, tag)
        started = time.monotonic()
        args = ["build", "-f", str(DOCKERFILE), "-t", reference]
        args += ["--build-arg", f"SERVICE={name}", "--build-arg", f"PORT={spec(name).default_port}"]
        if engine.is_podman:
            # buildah 1.28: when the builder stage comes wholly from the layer cache, the runtime
            # stage's `RUN --mount=type=bind,from=builder` cannot find its files.
            args.append("--no-cache")
        say(f"images: building {reference}")
        engine.run(*args, str(ROOT), timeout=1800)
        elapsed = time.monotonic() - started
        say(f"images: {reference} built in {elapsed:.0f} s ({_image_size(engine, reference)})")
        built[name] = reference
    return built


def _image_size(engine: Engine, reference: str) -> str:
    size = engine.run("image", "inspect", "--format", "{{.Size}}", reference).stdout.strip()
    return f"{int(size) / 1e6:.0f} MB" if size.isdigit() else size


# --- Pod specs from the charts --------------------------------------------------------------------


def chart_values(stack: Stack, *, tag: str = DEFAULT_TAG) -> dict[str, Any]:
    """values-containers.yaml plus this machine's part: ports, peers, dependencies."""
    base = yaml.safe_load(VALUES.read_text(encoding="utf-8"))
    local: dict[str, Any] = {"global": {"imageTag": tag}}
    for service in SERVICES:
        env = stack.env_for(service.name)
        config = {
            key: value
            for key, value in env.items()
            if key not in _CHART_KEYS | SECRET_KEYS | _MOUNTED_KEYS | _OWN_VALUES.keys()
        }
        values: dict[str, Any] = {"service": {"port": stack.port(service.name)}, "config": config}
        if service.name == "worker":  # the only chart with these values; no other reads them
            for key, (block, name, number) in _OWN_VALUES.items():
                if key in env:
                    value = int(float(env[key])) if number else env[key]
                    values.setdefault(block, {})[name] = value
        local[service.name] = values
    return merge_values(base, local)


def service_secrets(stack: Stack) -> dict[str, dict[str, str]]:
    """Each service's `<service>-env` Secret, as the secret store would hold it."""
    secrets = {}
    for service in SERVICES:
        env = stack.env_for(service.name)
        secrets[f"{service.name}-env"] = {k: v for k, v in env.items() if k in SECRET_KEYS}
    return secrets


@dataclass
class PodSpecs:
    """What the chart renders, sorted by how it runs here."""

    config_maps: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    not_run: Counter[str] = field(default_factory=Counter)

    @classmethod
    def sort(cls, documents: Iterable[Mapping[str, Any]]) -> PodSpecs:
        specs = cls()
        for doc in documents:
            kind = doc["kind"]
            if kind == "ConfigMap":
                specs.config_maps.append(dict(doc))
            elif kind == "Deployment":
                specs.deployments.append(dict(doc))
            elif kind == "Job":
                specs.jobs.append(dict(doc))
            else:
                specs.not_run[kind] += 1
        return specs

    def deployment(self, service: str) -> dict[str, Any]:
        return next(d for d in self.deployments if d["metadata"]["name"] == service)

    def job(self, name: str) -> dict[str, Any]:
        return next(j for j in self.jobs if j["metadata"]["name"] == name)


def render_pod_specs(stack: Stack, *, tag: str = DEFAULT_TAG) -> PodSpecs:
    with tempfile.TemporaryDirectory(prefix="fleet-charts-") as tmp:
        charts = build_charts(Path(tmp) / "helm")
        return PodSpecs.sort(render_fleet(charts, chart_values(stack, tag=tag)))


@dataclass(frozen=True)
class Naming:
    """Names on this machine: every pod, ConfigMap and secret gets `prefix`, so two fleets (yours
    and a test's) never share one."""

    prefix: str

    def __call__(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def pod(self, deployment: str) -> str:
        """podman's name for the pod of a Deployment's (one) replica."""
        return f"{self(deployment)}-pod-0"

    def container(self, deployment: str, container: str | None = None) -> str:
        return f"{self.pod(deployment)}-{container or deployment}"


def _host_pod_spec(
    pod: Mapping[str, Any], naming: Naming, volumes: Mapping[str, Path]
) -> dict[str, Any]:
    """The pod spec as this machine runs it: on the host's network, names prefixed, each secret
    volume replaced by its directory (`volumes`, by secret name). The rest is the chart's."""
    spec_ = _copy(pod)
    spec_["hostNetwork"] = True
    for container in spec_.get("containers", []):
        # On the host's network a container port is the host's port: podman 4.3 refuses to map
        # one there, so the ports go and the probes get the number their name stands for (as a
        # kubelet resolves it).
        named = {p["name"]: p["containerPort"] for p in container.pop("ports", []) if "name" in p}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            check = container.get(probe, {}).get("httpGet")
            if check is not None and isinstance(check.get("port"), str):
                check["port"] = named[check["port"]]
        for source in container.get("envFrom", []):
            for ref in ("configMapRef", "secretRef"):
                if ref in source:
                    source[ref]["name"] = naming(source[ref]["name"])
    for volume in spec_.get("volumes", []):
        secret = volume.pop("secret", None)
        if secret is not None:
            volume["hostPath"] = {"path": str(volumes[secret["secretName"]]), "type": "Directory"}
    return spec_


def deployment_for_host(
    deployment: Mapping[str, Any], naming: Naming, volumes: Mapping[str, Path]
) -> dict[str, Any]:
    doc = _copy(deployment)
    doc["metadata"]["name"] = naming(doc["metadata"]["name"])
    doc["spec"]["template"]["spec"] = _host_pod_spec(
        doc["spec"]["template"]["spec"], naming, volumes
    )
    return doc


def config_map_for_host(config_map: Mapping[str, Any], naming: Naming) -> dict[str, Any]:
    doc = _copy(config_map)
    doc["metadata"]["name"] = naming(doc["metadata"]["name"])
    return doc


def job_pod(
    job: Mapping[str, Any],
    naming: Naming,
    volumes: Mapping[str, Path],
    *,
    name: str | None = None,
    args: list[str] | None = None,
) -> dict[str, Any]:
    """A Job's pod template as a Pod that runs once (`args` replace its container's)."""
    template = job["spec"]["template"]
    pod_spec = _host_pod_spec(template["spec"], naming, volumes)
    pod_spec["restartPolicy"] = "Never"
    if args is not None:
        pod_spec["containers"][0]["args"] = args
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": naming(name or job["metadata"]["name"]),
            "labels": template["metadata"].get("labels", {}),
        },
        "spec": pod_spec,
    }


# --- The fleet in containers ----------------------------------------------------------------------


def _podman_secret(values: Mapping[str, str]) -> str:
    """A podman 4.3 secret that a pod's `envFrom.secretRef` reads: a JSON object of base64 values
    (podman 4.3 does not take a Kubernetes Secret document there)."""
    return json.dumps({k: base64.b64encode(v.encode()).decode() for k, v in values.items()})


@dataclass
class ContainerFleet:
    """The fleet run from its images and the charts' pod specs, on this machine's Postgres,
    RabbitMQ and Redis. `start()` returns once every service answers /readyz; `stop()` stops
    every pod within its termination grace period, SIGTERM first, and removes it all."""

    stack: Stack
    say: Say
    tag: str = DEFAULT_TAG
    naming: Naming = field(default_factory=lambda: Naming("fleet-"))
    engine: Engine = field(default_factory=detect_engine)
    specs: PodSpecs = field(default_factory=PodSpecs)
    mail: MailSink | None = None
    s3: S3Emulator | None = None
    _logs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.stack.state_dir / "containers"

    @property
    def kube_file(self) -> Path:
        return self.state_dir / "fleet.yaml"

    def container(self, service: str) -> str:
        return self.naming.container(service)

    async def start(self, *, timeout: float = 180.0, follow_logs: bool = False) -> None:
        if not self.engine.is_podman:
            msg = "running the charts' pod specs needs podman (`podman kube play`); docker has none"
            raise ContainersError(msg)
        await self._check_ports()
        missing = [
            image_name(s.name, self.tag)
            for s in SERVICES
            if not self.engine.has_image(image_name(s.name, self.tag))
        ]
        if missing:
            msg = f"images missing: {', '.join(missing)}; build them with `make images`"
            raise ContainersError(msg)
        self.say("containers: rendering the charts (deploy/helm/fleet, values-containers.yaml)")
        self.specs = await asyncio.to_thread(render_pod_specs, self.stack, tag=self.tag)
        self.say(
            "containers: not run here (they need a cluster): "
            + ", ".join(f"{n} {kind}" for kind, n in sorted(self.specs.not_run.items()))
        )
        await ensure_database(self.stack)
        await ensure_roles_and_schemas(self.stack)
        volumes = await asyncio.to_thread(self._write_secrets)
        for job in self.specs.jobs:
            await asyncio.to_thread(self._run_once, job_pod(job, self.naming, volumes))
        for service, args in (("auth", ["seed-admin"]), ("catalog", ["seed"])):
            job = next(
                j for j in self.specs.jobs if j["metadata"]["name"] == f"{service}-migrations"
            )
            pod = job_pod(job, self.naming, volumes, name=f"{service}-{args[0]}", args=args)
            await asyncio.to_thread(self._run_once, pod)
        self.mail = MailSink(self.stack.mail_dir, port=self.stack.smtp_port).start()
        try:
            self.s3 = S3Emulator(port=self.stack.s3_port).start()
        except OSError as exc:
            msg = f"cannot start the S3 emulator on port {self.stack.s3_port} ({exc}); set S3_PORT"
            raise ContainersError(msg) from exc
        self.s3.create_bucket(self.stack.s3_bucket)
        self.say(f"containers: object storage is {self.s3.url}/{self.stack.s3_bucket} (moto's S3)")
        documents = [config_map_for_host(c, self.naming) for c in self.specs.config_maps]
        documents += [deployment_for_host(d, self.naming, volumes) for d in self.specs.deployments]
        self.kube_file.write_text(yaml.safe_dump_all(documents), encoding="utf-8")
        self.say(f"containers: podman kube play {self.kube_file}")
        await asyncio.to_thread(self.engine.run, "kube", "play", str(self.kube_file))
        if follow_logs:
            self._follow_logs()
        await self._wait_ready(timeout)

    async def _check_ports(self) -> None:
        """The charts fix each service's port (its values schema); each must be free here."""
        moved = [s.name for s in SERVICES if self.stack.port(s.name) != s.default_port]
        if moved:
            msg = f"the charts serve {', '.join(moved)} on their usual ports only; unset *_PORT"
            raise ContainersError(msg)
        taken = []
        for service in SERVICES:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", service.default_port)
            except OSError:
                continue
            writer.close()
            taken.append(f"{service.default_port} ({service.name})")
        if taken:
            msg = f"ports in use: {', '.join(taken)}; is `make up` running? (`make down`)"
            raise ContainersError(msg)

    def _write_secrets(self) -> dict[str, Path]:
        """The secret store's part: `<service>-env` as podman secrets, the signing keys (made by
        `auth keys ensure`) as the files of the `auth-jwt-keys` secret volume."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for name, values in service_secrets(self.stack).items():
            self.engine.run("secret", "rm", self.naming(name), check=False)
            self.engine.run(
                "secret", "create", self.naming(name), "-", input_text=_podman_secret(values)
            )
        run_service_command(self.stack, "auth", "keys", "ensure")
        volumes: dict[str, Path] = {}
        for deployment in self.specs.deployments:
            for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
                if "secret" in volume:
                    secret = volume["secret"]["secretName"]
                    volumes[secret] = self._secret_volume(secret, volume["secret"])
        return volumes

    def _secret_volume(self, secret: str, source: Mapping[str, Any]) -> Path:
        if secret != JWT_KEYS_SECRET:
            msg = f"no local source for the secret volume {secret!r}"
            raise ContainersError(msg)
        directory = self.state_dir / "secrets" / secret
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
        mode = int(source.get("defaultMode", 0o644))
        for key_file in sorted(self.stack.keys_dir.iterdir()):
            if key_file.is_file():
                target = directory / key_file.name
                shutil.copyfile(key_file, target)
                target.chmod(mode)
                _chown(target)
        directory.chmod(0o750)
        _chown(directory)
        return directory

    def _run_once(self, pod: dict[str, Any]) -> None:
        """Run a pod to completion; its output is shown and the fleet fails when it does."""
        name = pod["metadata"]["name"]
        container = f"{name}-{pod['spec']['containers'][0]['name']}"
        self.engine.run("pod", "rm", "--force", name, check=False)
        path = self.state_dir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(pod), encoding="utf-8")
        self.say(f"containers: running {name} ({' '.join(pod['spec']['containers'][0]['args'])})")
        try:
            self.engine.run("kube", "play", str(path))
            code = self.engine.run("wait", container, timeout=900).stdout.strip()
            output = self.engine.run("logs", container, check=False)
            if code != "0":
                msg = f"{name} exited with {code}:\n{output.stdout}{output.stderr}"
                raise ContainersError(msg)
        finally:
            self.engine.run("pod", "rm", "--force", name, check=False)

    def _follow_logs(self) -> None:
        for deployment in self.specs.deployments:
            service = deployment["metadata"]["name"]
            process = self.engine.stream("logs", "--follow", self.container(service))
            self._logs.append(process)
            threading.Thread(target=self._print_lines, args=(service, process), daemon=True).start()

    def _print_lines(self, service: str, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        width = max(len(s.name) for s in SERVICES)
        for line in process.stdout:
            self.say(f"{service:<{width}} | {line.rstrip()}")

    async def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = {s.name for s in SERVICES}
        async with httpx.AsyncClient(timeout=2) as client:
            while waiting:
                for service in sorted(waiting):
                    state = self.state(service)
                    if state["Status"] == "exited":
                        logs = self.engine.run("logs", self.container(service), check=False)
                        msg = f"{service} exited ({state['ExitCode']}):\n{logs.stdout}{logs.stderr}"
                        raise ContainersError(msg)
                    try:
                        answer = await client.get(f"{self.stack.url(service)}/readyz")
                    except httpx.HTTPError:
                        continue
                    if answer.status_code == 200:
                        waiting.discard(service)
                if waiting and time.monotonic() > deadline:
                    msg = f"not ready within {timeout:.0f} s: {', '.join(sorted(waiting))}"
                    raise ContainersError(msg)
                await asyncio.sleep(0.5)
        self.say(f"containers: ready — gateway on {self.stack.url('gateway')}")

    def state(self, service: str) -> dict[str, Any]:
        """`podman inspect`'s State of the service's container."""
        output = self.engine.run("inspect", "--format", "{{json .State}}", self.container(service))
        state: dict[str, Any] = json.loads(output.stdout)
        return state

    def grace_seconds(self, service: str) -> int:
        """The Deployment's terminationGracePeriodSeconds: how long a stop may take."""
        template = self.specs.deployment(service)["spec"]["template"]["spec"]
        return int(template.get("terminationGracePeriodSeconds", 30))

    def stop(self) -> None:
        """SIGTERM to every container, SIGKILL past its grace period, then remove it all."""
        for deployment in self.specs.deployments:
            service = deployment["metadata"]["name"]
            self.engine.run(
                "pod",
                "stop",
                "--time",
                str(self.grace_seconds(service)),
                self.naming.pod(service),
                check=False,
                timeout=self.grace_seconds(service) + 30,
            )
        remove(self.engine, self.stack, self.naming)
        for process in self._logs:
            process.terminate()
        if self.mail is not None:
            self.mail.stop()
        if self.s3 is not None:
            self.s3.stop()


def remove(engine: Engine, stack: Stack, naming: Naming) -> None:
    """Remove what `ContainerFleet.start` created (also after a crash): pods, secrets, files."""
    state_dir = stack.state_dir / "containers"
    kube_file = state_dir / "fleet.yaml"
    if kube_file.exists():
        engine.run("kube", "down", str(kube_file), check=False, timeout=120)
    for name in service_secrets(stack):
        engine.run("secret", "rm", naming(name), check=False)
    shutil.rmtree(state_dir, ignore_errors=True)


def _copy(document: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(document))
    return copied


def _chown(path: Path) -> None:
    """Owned by the pods' group (fsGroup), as a kubelet leaves secret files; as root only."""
    if os.geteuid() == 0:
        os.chown(path, 0, FLEET_UID)


def _checked(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        msg = (
            f"{what} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
        raise ContainersError(msg)


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
