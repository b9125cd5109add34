"""`fleetctl check|bootstrap|up|down|restart|observe|containers|migrations check`: what `make up`
and friends run."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

import migration_lint
from fleetctl import containers, control
from fleetctl.bootstrap import bootstrap
from fleetctl.deps import unreachable
from fleetctl.observe import (
    DEFAULT_INTERVAL_SECONDS,
    DEFAULT_PORT,
    Observation,
    PrometheusFailedError,
    running,
)
from fleetctl.s3_emulator import EmulatorFailedError, EmulatorProcess
from fleetctl.signals import stop_on_signals
from fleetctl.smtp_sink import MailSink
from fleetctl.stack import DB_SERVICES, ROOT, Stack
from fleetctl.supervisor import ROLL_ORDER, Fleet, FleetFailedError


def _say(text: str) -> None:
    print(text, flush=True)


async def _check(stack: Stack) -> bool:
    problems = await unreachable(stack)
    for problem in problems:
        print(problem.advice(), file=sys.stderr)
    return not problems


async def _up(stack: Stack) -> int:
    if not await _check(stack):
        return 2
    _say("fleet: bootstrapping database roles, schemas, migrations, signing keys and seed data")
    await bootstrap(stack, seed=True)
    try:
        sink = MailSink(stack.mail_dir, port=stack.smtp_port).start()
    except OSError as exc:
        _say(f"fleet: cannot start the SMTP sink on port {stack.smtp_port} ({exc}); set SMTP_PORT")
        return 2
    _say(f"fleet: e-mail goes to {sink.url}; messages are saved in {stack.mail_dir}/")
    s3 = EmulatorProcess(port=stack.s3_port, bucket=stack.s3_bucket, emit=_say)
    try:
        await s3.start()
    except EmulatorFailedError as exc:
        sink.stop()
        _say(f"fleet: cannot start the S3 emulator on port {stack.s3_port}; set S3_PORT ({exc})")
        return 2
    _say(f"fleet: object storage is {s3.url}/{stack.s3_bucket} (moto's S3, in memory)")
    fleet = Fleet(stack, emit=_say, colors=sys.stdout.isatty(), supervise=True)
    stop = stop_on_signals()
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    server = await control.serve(fleet, stack.state_dir)
    pidfile = stack.state_dir / "fleet.pid"
    pidfile.write_text(str(os.getpid()))
    code = 0
    try:
        await fleet.start()
        ready = asyncio.create_task(fleet.wait_ready(120))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({ready, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if ready.done():
            ready.result()
            _say(
                f"fleet: ready — gateway on {stack.url('gateway')} "
                f"(admin: admin@example.com); `fleetctl restart [SERVICE]` restarts without "
                "downtime; Ctrl-C stops everything"
            )
            failed = asyncio.create_task(fleet.failed())
            await asyncio.wait({failed, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                raise failed.result()
        else:
            ready.cancel()
    except FleetFailedError as exc:
        _say(f"fleet: {exc}")
        code = 1
    finally:
        _say("fleet: stopping")
        server.close()
        codes = await fleet.stop()
        pidfile.unlink(missing_ok=True)
        await s3.stop()
        sink.stop()
        _say("fleet: stopped " + ", ".join(f"{n}={c}" for n, c in codes.items()))
    return code


def _down(stack: Stack) -> int:
    pidfile = stack.state_dir / "fleet.pid"
    if not pidfile.exists():
        _say("fleet: nothing to stop")
        return 0
    with contextlib.suppress(ProcessLookupError, ValueError):
        os.kill(int(pidfile.read_text()), signal.SIGTERM)
    _say("fleet: asked the fleet to stop (it drains every service, then exits)")
    return 0


async def _observe(observation: Observation) -> int:
    stop = stop_on_signals()
    jobs = ", ".join(f"{job} {target}" for job, target in observation.targets().items())
    _say(f"prometheus: scraping {jobs} every {observation.interval_seconds:g} s")
    try:
        async with running(observation) as prometheus:
            _say(
                f"prometheus: ready at {prometheus.url} — SLO rules from "
                f"{observation.rules_dir.relative_to(ROOT)}, data in {observation.storage}"
            )
            _say(
                f"prometheus: alerts at {prometheus.url}/classic/alerts, targets at "
                f"{prometheus.url}/classic/targets; query `ALERTS` or `slo:sli_error:ratio_rate5m`"
                "; Ctrl-C stops it"
            )
            exited = asyncio.create_task(prometheus.process.wait())
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if exited.done():
                _say(f"prometheus: exited with code {exited.result()}")
                return 1
            exited.cancel()
            _say("prometheus: stopping")
    except PrometheusFailedError as exc:
        _say(f"prometheus: {exc}")
        return 1
    _say("prometheus: stopped")
    return 0


async def _up_containers(stack: Stack, tag: str) -> int:
    if not await _check(stack):
        return 2
    fleet = containers.ContainerFleet(stack, _say, tag=tag)
    stop = stop_on_signals()
    pidfile = stack.state_dir / "containers.pid"
    stack.state_dir.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(os.getpid()))
    code = 0
    try:
        started = asyncio.create_task(fleet.start(follow_logs=True))
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({started, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if started.done():
            started.result()
            _say(
                f"containers: every service answers /readyz; gateway on {stack.url('gateway')} "
                "(admin: admin@example.com); Ctrl-C or `make down-containers` stops them"
            )
            await stopped
        else:
            started.cancel()
    except containers.ContainersError as exc:
        _say(f"containers: {exc}")
        code = 1
    finally:
        _say("containers: stopping (SIGTERM, then each pod's grace period)")
        await asyncio.to_thread(fleet.stop)
        pidfile.unlink(missing_ok=True)
        _say("containers: stopped and removed")
    return code


def _down_containers(stack: Stack) -> int:
    pidfile = stack.state_dir / "containers.pid"
    if pidfile.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pidfile.read_text()), signal.SIGTERM)
        _say("containers: asked `make up-containers` to stop (it drains every pod, then exits)")
        return 0
    containers.remove(containers.detect_engine(), stack, containers.Naming("fleet-"))
    _say("containers: removed")
    return 0


def _images(args: argparse.Namespace, stack: Stack) -> int:
    engine = containers.detect_engine()
    try:
        containers.ensure_base_image(engine, _say, work_dir=stack.state_dir)
        if args.action == "images":
            containers.build_images(engine, _say, services=args.services or None, tag=args.tag)
    except containers.ContainersError as exc:
        _say(f"images: {exc}")
        return 1
    return 0


def _check_migrations(paths: list[Path]) -> int:
    """The expand/contract check over `paths`, by default every service's migrations."""
    if not paths:
        versions = (s.directory / "alembic" / "versions" for s in DB_SERVICES)
        paths = [Path(os.path.relpath(p)) for p in versions]
    return migration_lint.run(paths)


def _add_observe(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    observe = sub.add_parser(
        "observe",
        help="run Prometheus in the foreground, scraping the fleet and evaluating the SLO rules",
    )
    observe.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PROMETHEUS_PORT", str(DEFAULT_PORT))),
        help=f"where Prometheus listens on 127.0.0.1 (default: $PROMETHEUS_PORT or {DEFAULT_PORT})",
    )
    observe.add_argument(
        "--interval",
        type=float,
        default=DEFAULT_INTERVAL_SECONDS,
        metavar="SECONDS",
        help=f"scrape and rule evaluation interval (default: {DEFAULT_INTERVAL_SECONDS:g})",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="fleetctl")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="check that Postgres, Redis and RabbitMQ are reachable")
    boot = sub.add_parser("bootstrap", help="database, roles, schemas, migrations, keys")
    boot.add_argument("--seed", action="store_true", help="also seed the admin and the catalog")
    sub.add_parser("up", help="bootstrap, then run the whole fleet in the foreground")
    sub.add_parser("down", help="stop a fleet started by `up` in another terminal")
    restart = sub.add_parser(
        "restart",
        help="replace services' processes without downtime in a fleet started by `up`",
    )
    restart.add_argument(
        "services",
        nargs="*",
        metavar="SERVICE",
        help=f"default: every service in turn ({', '.join(ROLL_ORDER)})",
    )
    _add_observe(sub)
    boxes = sub.add_parser("containers", help="the fleet as images and the charts' pods (podman)")
    box = boxes.add_subparsers(dest="action", required=True)
    box.add_parser("base-image", help="the Dockerfile's base image: present, pulled or a stand-in")
    build = box.add_parser("images", help="build every service's image (base image first)")
    build.add_argument("services", nargs="*", metavar="SERVICE", help="default: all five")
    up = box.add_parser("up", help="run the images from the charts' pod specs (foreground)")
    box.add_parser("down", help="stop and remove a fleet started by `containers up`")
    for parser_ in (build, up):
        parser_.add_argument("--tag", default=containers.DEFAULT_TAG, help="image tag (dev)")
    migrations = sub.add_parser("migrations", help="checks of the services' migrations")
    checks = migrations.add_subparsers(dest="action", required=True)
    lint = checks.add_parser(
        "check",
        help="refuse destructive upgrades not marked as contract steps, and no-op downgrades",
    )
    lint.add_argument("paths", nargs="*", type=Path, help="default: every service's migrations")
    args = parser.parse_args(argv)
    if args.command == "migrations":
        sys.exit(_check_migrations(args.paths))
    stack = Stack.from_env()
    if args.command == "containers":
        if args.action in ("base-image", "images"):
            sys.exit(_images(args, stack))
        if args.action == "up":
            sys.exit(asyncio.run(_up_containers(stack, args.tag)))
        sys.exit(_down_containers(stack))
    if args.command == "check":
        sys.exit(0 if asyncio.run(_check(stack)) else 2)
    if args.command == "bootstrap":
        if not asyncio.run(_check(stack)):
            sys.exit(2)
        asyncio.run(bootstrap(stack, seed=args.seed))
        return
    if args.command == "up":
        sys.exit(asyncio.run(_up(stack)))
    if args.command == "observe":
        observation = Observation(stack, port=args.port, interval_seconds=args.interval)
        sys.exit(asyncio.run(_observe(observation)))
    if args.command == "restart":
        unknown = sorted(set(args.services) - set(ROLL_ORDER))
        if unknown:
            parser.error(f"unknown service {', '.join(unknown)}; one of {', '.join(ROLL_ORDER)}")
        sys.exit(asyncio.run(control.request_restart(stack.state_dir, args.services, _say)))
    sys.exit(_down(stack))


if __name__ == "__main__":
    main()
