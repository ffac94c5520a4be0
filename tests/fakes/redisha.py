"""Real highly available Redis topologies on loopback, for tests and benchmarks: a
Sentinel group (one primary, one replica, three sentinels) and a three-node Redis
Cluster, each made of `redis-server` processes on free ports.

Both wait for conditions (sentinels that know the replica and each other; every slot
covered and `cluster_state:ok` on every node) with generous deadlines, and `cleanup()`
kills every process they started and removes their folders, whatever state they are in,
so a fixture can call it in a `finally`. Sentinel mode is `redis-server --sentinel`
(no separate `redis-sentinel` binary needed); the cluster is built with plain commands
(`CLUSTER ADDSLOTS`, `SET-CONFIG-EPOCH`, `MEET`), so `redis-cli` is not needed either.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import redis

from tests.fakes.servers import free_port, wait_for

SERVICE = "llm-shadow-primary"
DATA_PASSWORD = "data-s3cret"
SENTINEL_PASSWORD = "sentinel-s3cret"
SLOTS = 16384


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; run the README's test command")
    return binary


class _Processes:
    """redis-server processes in one temporary folder, all killed by `cleanup()`."""

    def __init__(self, prefix: str):
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def spawn(self, port: int, lines: Sequence[str], *, sentinel: bool = False) -> None:
        config = self.dir / f"{port}.conf"
        config.write_text("\n".join([
            f"port {port}", "bind 127.0.0.1", "protected-mode no", f"dir {self.dir}",
            f"logfile {self.dir / f'{port}.log'}", *lines]) + "\n")
        command = [_binary(), str(config)] + (["--sentinel"] if sentinel else [])
        self.processes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                                stderr=subprocess.DEVNULL)

    def kill(self, port: int) -> None:
        process = self.processes.pop(port, None)
        if process is not None:
            process.kill()
            process.wait(timeout=10)

    def cleanup(self) -> None:
        for port in list(self.processes):
            self.kill(port)
        shutil.rmtree(self.dir, ignore_errors=True)


def _port_with_bus() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 < 65536 and _free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _client(port: int, password: str | None = None) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2,
                       socket_connect_timeout=2)


def _answers(port: int, password: str | None = None) -> bool:
    with _client(port, password) as client:
        return bool(client.ping())


class SentinelGroup:
    """One primary, one replica and three sentinels (quorum 2), with passwords on the
    data nodes and on the sentinels. `down-after-milliseconds` is short so a failover
    takes seconds, not the default minute."""

    def __init__(self, down_after_ms: int = 500):
        self.down_after_ms = down_after_ms
        self.procs = _Processes("llm-shadow-sentinel-")
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]

    @property
    def addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.sentinel_ports]

    def redis_section(self, key_prefix: str = "llm-shadow") -> dict[str, object]:
        """The `redis` configuration section that reaches this group."""
        return {"url": f"redis://:{DATA_PASSWORD}@{SERVICE}/0", "key_prefix": key_prefix,
                "connect_timeout": 0.5, "socket_timeout": 0.5,
                "sentinel": {"addresses": self.addresses, "service_name": SERVICE,
                             "password": SENTINEL_PASSWORD}}

    def start(self) -> SentinelGroup:
        data = [f"requirepass {DATA_PASSWORD}", f"masterauth {DATA_PASSWORD}",
                'save ""', "appendonly no"]
        self.procs.spawn(self.primary_port, data)
        self.procs.spawn(self.replica_port,
                         [*data, f"replicaof 127.0.0.1 {self.primary_port}"])
        for port in self.sentinel_ports:
            self.procs.spawn(port, [
                f"requirepass {SENTINEL_PASSWORD}",
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2",
                f"sentinel auth-pass {SERVICE} {DATA_PASSWORD}",
                f"sentinel sentinel-pass {SENTINEL_PASSWORD}",
                f"sentinel down-after-milliseconds {SERVICE} {self.down_after_ms}",
                f"sentinel failover-timeout {SERVICE} 10000",
                f"sentinel parallel-syncs {SERVICE} 1"], sentinel=True)
        wait_for(lambda: self._replica_in_sync(), timeout=30, message="replica in sync")
        wait_for(self._sentinels_agree, timeout=30,
                 message="every sentinel knowing the replica and the two other sentinels")
        return self

    def _replica_in_sync(self) -> bool:
        with _client(self.replica_port, DATA_PASSWORD) as client:
            info = client.info("replication")
        return info.get("master_link_status") == "up"

    def _sentinels_agree(self) -> bool:
        for port in self.sentinel_ports:
            with _client(port, SENTINEL_PASSWORD) as client:
                replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
                others = client.execute_command("SENTINEL", "SENTINELS", SERVICE)
            if len(replicas) < 1 or len(others) < 2:
                return False
        return True

    def primary_named(self) -> int | None:
        """The primary's port as the sentinels see it (None while they disagree)."""
        ports = set()
        for port in self.sentinel_ports:
            try:
                with _client(port, SENTINEL_PASSWORD) as client:
                    _, named = client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
            except redis.RedisError:
                return None
            ports.add(int(named))
        return ports.pop() if len(ports) == 1 else None

    def kill_primary(self) -> int:
        """Kill whichever data node the sentinels name as primary; its port."""
        port = self.primary_named()
        assert port is not None, "the sentinels do not agree on a primary"
        self.procs.kill(port)
        return port

    @property
    def data_ports(self) -> list[int]:
        return [p for p in (self.primary_port, self.replica_port) if p in self.procs.processes]

    def cleanup(self) -> None:
        self.procs.cleanup()


class ClusterNodes:
    """A three-node Redis Cluster (three primaries, no replicas), slots split evenly."""

    def __init__(self, nodes: int = 3):
        self.procs = _Processes("llm-shadow-cluster-")
        self.ports = [_port_with_bus() for _ in range(nodes)]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> ClusterNodes:
        for port in self.ports:
            self.procs.spawn(port, [
                "cluster-enabled yes", f"cluster-config-file nodes-{port}.conf",
                "cluster-node-timeout 2000", 'save ""', "appendonly no"])
        for port in self.ports:
            wait_for(lambda p=port: _answers(p), message=f"cluster node {port}")
        share = SLOTS // len(self.ports)
        for index, port in enumerate(self.ports):
            first = index * share
            last = SLOTS - 1 if index == len(self.ports) - 1 else first + share - 1
            with _client(port) as client:
                client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        with _client(self.ports[0]) as client:
            for port in self.ports[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        wait_for(self._converged, timeout=30, message="cluster_state:ok on every node")
        return self

    def _converged(self) -> bool:
        for port in self.ports:
            with _client(port) as client:
                info = client.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text or \
                        f"cluster_known_nodes:{len(self.ports)}" not in text:
                    return False
        return True

    def node_of_slot(self, slot: int) -> int:
        with _client(self.ports[0]) as client:
            for first, last, primary, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(first) <= slot <= int(last):
                    return int(primary[1])
        raise AssertionError(f"slot {slot} is not covered")

    def keys_on(self, port: int) -> list[str]:
        with _client(port) as client:
            return sorted(k.decode() for k in client.keys("*"))

    def cleanup(self) -> None:
        self.procs.cleanup()
