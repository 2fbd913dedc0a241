"""docker-compose.yml, run without Docker: every service's command, exactly as
`docker-compose config` resolves it (with .env-style variables), runs here as a local process
against a local redis-server started with the compose Redis command. An item must flow from a
loopback feed to the stream; the workers' healthchecks, Flower (with and without auth) and the
metrics endpoint must answer.

What differs from a container, and only this: container paths (volumes, /data) map to a temp
dir, container ports (6379, 5555, 9464) to free local ports, the feeds file is a loopback one,
and FEEDPIPE_ALLOW_PRIVATE_NETWORKS is set because that feed is on 127.0.0.1.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis as sync_redis
import yaml

from pipeline.settings import Settings
from tests.conftest import ROOT
from tests.integration.conftest import KEYS
from tests.integration.servers import ServerThread
from workers.embedded_redis import find_redis_server, free_port
from workers.supervisor import celery_commands

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
ENV_FILE = {
    "REDIS_PASSWORD": "compose-test-pw",
    "FLOWER_USER": "admin",
    "FLOWER_PASSWORD": "flower-secret",
    "FEEDPIPE_FETCH_CONCURRENCY": "1",
    "FEEDPIPE_EXTRACT_CONCURRENCY": "1",
    "FEEDPIPE_WEBSUB_BASE_URL": "https://feeds.example",  # the websub profile's service
}
LONG_RUNNING = (
    "worker-fetch",
    "worker-extract",
    "worker-push",
    "beat",
    "flower",
    "exporter",
    "websub",
)


def compose_config(tmp: Path, variables: Mapping[str, str] = ENV_FILE) -> dict[str, Any]:
    """`docker-compose config` of the compose file with an env file of ``variables``."""
    if shutil.which("docker-compose") is None:
        pytest.fail("docker-compose is not installed (.ci/run installs Debian's package)")
    env_file = tmp / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    out = subprocess.run(
        ["docker-compose", "--env-file", str(env_file), "-f", str(ROOT / "docker-compose.yml"),
         "config"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    return dict(yaml.safe_load(out.stdout))


class Deployment:
    """The compose services as local processes."""

    def __init__(self, config: dict[str, Any], tmp: Path, feeds_file: Path) -> None:
        self.services = config["services"]
        self.tmp = tmp
        self.feeds_file = feeds_file
        self.ports = {6379: free_port(), 5555: free_port(), 9464: free_port(), 8480: free_port()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    # --- mapping container -> local -------------------------------------------------------
    def path(self, service: str, container_path: str) -> str:
        if container_path == "/config/feeds.yaml":
            return str(self.feeds_file)
        for volume in self.services[service].get("volumes", []):
            source, target = volume.split(":")[:2]  # "beat-data:/data:rw"
            if container_path.startswith(target):
                local = self.tmp / "volumes" / Path(source).name
                local.mkdir(parents=True, exist_ok=True)
                return str(local) + container_path[len(target) :]
        return container_path

    def command(self, service: str) -> list[str]:
        args = [
            self.path(service, a) if a.startswith("/") else a
            for a in self.services[service]["command"]
        ]
        return [str(BIN / args[0]) if (BIN / args[0]).exists() else args[0], *args[1:]]

    def env(self, service: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDPIPE_", "FLOWER_"))}
        env |= {k: str(v) for k, v in (self.services[service].get("environment") or {}).items()}
        if "FEEDPIPE_REDIS_URL" in env:
            env["FEEDPIPE_REDIS_URL"] = env["FEEDPIPE_REDIS_URL"].replace(
                "@redis:6379", f"@127.0.0.1:{self.ports[6379]}"
            )
        data = self.tmp / "data" / service
        data.mkdir(parents=True, exist_ok=True)
        return env | {
            "PATH": f"{BIN}:{env.get('PATH', '')}",
            "HOSTNAME": socket.gethostname(),
            "FEEDPIPE_DATA_DIR": str(data),  # the image's ENV
            "FEEDPIPE_ALLOW_PRIVATE_NETWORKS": "true",
            "FEEDPIPE_DISPATCH_INTERVAL_SECONDS": "0.5",
            "FEEDPIPE_METRICS_HOST": "127.0.0.1",
            "FEEDPIPE_METRICS_PORT": str(self.ports[9464]),
            "FEEDPIPE_WEBSUB_HOST": "127.0.0.1",
            "FEEDPIPE_WEBSUB_PORT": str(self.ports[8480]),
            "FLOWER_PORT": str(self.ports[5555]),
            "FLOWER_ADDRESS": "127.0.0.1",
        }

    # --- processes ------------------------------------------------------------------------
    def start_redis(self) -> str:
        command = self.services["redis"]["command"]
        assert command[0] == "redis-server"
        (self.tmp / "redis").mkdir()
        local = [find_redis_server(), *command[1:], "--port", str(self.ports[6379]),
                 "--bind", "127.0.0.1", "--dir", str(self.tmp / "redis")]  # fmt: skip
        self.procs["redis"] = subprocess.Popen(local, stdout=subprocess.DEVNULL)
        url = f"redis://:{ENV_FILE['REDIS_PASSWORD']}@127.0.0.1:{self.ports[6379]}/0"
        client = sync_redis.Redis.from_url(url)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return url
            except sync_redis.ConnectionError:
                assert time.monotonic() < deadline, "compose redis did not start"
                time.sleep(0.1)

    def run_once(self, service: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(service), env=self.env(service), capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    def start(self, service: str) -> None:
        log = (self.tmp / f"{service}.log").open("wb")
        self.procs[service] = subprocess.Popen(
            self.command(service), env=self.env(service), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def healthcheck(self, service: str) -> subprocess.CompletedProcess[str]:
        test = self.services[service]["healthcheck"]["test"]
        kind, *args = test
        for container_port, local_port in self.ports.items():
            args = [
                a.replace(f"127.0.0.1:{container_port}", f"127.0.0.1:{local_port}") for a in args
            ]
        if kind == "CMD-SHELL":
            command = ["sh", "-c", args[0].replace("$$", "$")]
        else:
            command = [sys.executable if args[0] == "python" else args[0], *args[1:]]
        return subprocess.run(
            command, env=self.env(service), capture_output=True, text=True, timeout=60, check=False
        )

    def log(self, service: str) -> str:
        return (self.tmp / f"{service}.log").read_text(errors="replace")[-3000:]

    def grace(self, service: str) -> float:
        """The service's stop_grace_period (Docker's default: 10 s), as Docker applies it."""
        period = str(self.services[service].get("stop_grace_period", "10s"))
        return float(period.removesuffix("s"))

    def stop(self) -> None:
        """`docker compose stop`: SIGTERM, SIGKILL after the grace period. Every service must
        have stopped by itself, cleanly, within its grace period."""
        unclean = []
        for name, proc in reversed(list(self.procs.items())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(self.grace(name))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if name != "redis" and proc.returncode not in (0, -signal.SIGTERM):
                unclean.append(f"{name} exited {proc.returncode}:\n{self.log(name)}")
        assert not unclean, "\n\n".join(unclean)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Deployment, str]]:
    from tests.integration import hostile

    tmp = tmp_path_factory.mktemp("compose")
    case = hostile.Case("compose-news", hostile.xml(hostile.one_item_feed("compose-news")))
    server = ServerThread(hostile.make_app([case]))
    feeds_file = tmp / "feeds.yaml"
    feeds_file.write_text(f"feeds:\n  - url: {server.url(case.path)}\n    tags: [compose]\n")
    deployed = Deployment(compose_config(tmp), tmp, feeds_file)
    try:
        url = deployed.start_redis()
        imported = deployed.run_once("feeds-import")
        assert imported.returncode == 0 and "1 new" in imported.stdout, imported.stderr
        for service in LONG_RUNNING:
            deployed.start(service)
        yield deployed, url
    finally:
        deployed.stop()
        server.stop()


def test_every_service_has_a_command_and_restart_policy() -> None:
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, service in config["services"].items():
        assert service.get("command"), name
        assert service.get("restart") in ("unless-stopped", "no"), name
        if name != "feeds-import":
            assert service.get("healthcheck") or name == "beat", f"{name} has no healthcheck"


def test_compose_workers_take_the_options_feedpipe_run_gives_them() -> None:
    """The worker options (prefetch, recycling, events) are one choice, made in
    workers/supervisor.py for `feedpipe run` and written again in docker-compose.yml."""
    config = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    ours = celery_commands(Settings(), "compose")
    for service, name in (("worker-extract", "extract"), ("worker-fetch", "fetch")):
        compose = config["services"][service]["command"]
        assert _worker_options(compose) == _worker_options(ours[name]), service


def _worker_options(command: list[str]) -> set[str]:
    """The options written as one word (``--max-tasks-per-child=1000``, ``-E``)."""
    return {arg for arg in command if arg.startswith("--") or arg == "-E"}


def test_env_example_documents_every_compose_variable() -> None:
    import re

    used = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(re.findall(r"^(\w+)=", (ROOT / ".env.example").read_text(), re.M))
    assert used <= documented, f"missing from .env.example: {sorted(used - documented)}"


def test_an_item_flows_through_the_compose_services(deployment: tuple[Deployment, str]) -> None:
    deployed, url = deployment
    client = sync_redis.Redis.from_url(url)
    deadline = time.monotonic() + 90
    while client.xlen(KEYS.output_stream) < 1:
        assert time.monotonic() < deadline, deployed.log("worker-fetch") + deployed.log(
            "worker-extract"
        )
        time.sleep(0.3)
    _id, fields = client.xrange(KEYS.output_stream)[0]
    assert b"compose-news story" in fields[b"item"] and b'"compose"' in fields[b"item"]


def test_worker_healthchecks_pass(deployment: tuple[Deployment, str]) -> None:
    deployed, _ = deployment
    for service in ("worker-fetch", "worker-extract", "worker-push"):
        done = _retry(lambda s=service: deployed.healthcheck(s))
        assert done.returncode == 0, f"{service}: {done.stdout}{done.stderr}"


def test_flower_needs_its_password_and_shows_both_pools(deployment: tuple[Deployment, str]) -> None:
    deployed, _ = deployment
    base = f"http://127.0.0.1:{deployed.ports[5555]}"
    assert _retry(lambda: deployed.healthcheck("flower")).returncode == 0, deployed.log("flower")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(base + "/", timeout=10)
    assert refused.value.code == 401
    auth = base64.b64encode(f"admin:{ENV_FILE['FLOWER_PASSWORD']}".encode()).decode()

    def get(path: str) -> Any:
        request = urllib.request.Request(base + path, headers={"Authorization": f"Basic {auth}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            body = response.read()
        return yaml.safe_load(body) if path.startswith("/api") else body

    assert b"Flower" in get("/")
    host = socket.gethostname()

    def pools_and_tasks() -> tuple[set[str], dict[str, Any]]:
        return set(get("/api/workers?refresh=1")), get("/api/tasks")

    deadline = time.monotonic() + 60
    while True:
        workers, tasks = pools_and_tasks()
        names = {t["name"] for t in tasks.values()}
        wanted = {"feedpipe.poll_feeds", "feedpipe.extract_article", "feedpipe.dispatch_due_feeds"}
        if {f"fetch@{host}", f"extract@{host}"} <= workers and wanted <= names:
            break
        assert time.monotonic() < deadline, (workers, names)
        time.sleep(1)
    extract = next(t for t in tasks.values() if t["name"] == "feedpipe.extract_article")
    assert "compose-news/story" in extract["args"] and len(extract["args"]) < 300


def test_metrics_endpoint(deployment: tuple[Deployment, str]) -> None:
    deployed, _ = deployment
    assert _retry(lambda: deployed.healthcheck("exporter")).returncode == 0, deployed.log(
        "exporter"
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{deployed.ports[9464]}/metrics") as response:
        text = response.read().decode()
    for line in (
        "feedpipe_redis_up 1.0",
        'feedpipe_feeds{state="ok"}',
        'feedpipe_queue_length{queue="extract"}',
        "feedpipe_items_published_total",
        "feedpipe_feed_fetch_seconds_bucket",
        'feedpipe_polls_total{outcome="2xx"}',
        "feedpipe_scheduling_lag_seconds",
    ):
        assert line in text, line


def test_websub_service_answers_and_refuses_what_it_did_not_ask_for(
    deployment: tuple[Deployment, str],
) -> None:
    deployed, _ = deployment
    assert _retry(lambda: deployed.healthcheck("websub")).returncode == 0, deployed.log("websub")
    url = f"http://127.0.0.1:{deployed.ports[8480]}/websub/0123456789abcdef?hub.mode=subscribe"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url)
    assert refused.value.code == 404


def _retry(check: Any, attempts: int = 20) -> subprocess.CompletedProcess[str]:
    for _ in range(attempts):
        done: subprocess.CompletedProcess[str] = check()
        if done.returncode == 0:
            return done
        time.sleep(1)
    return done
