"""A small network made of Linux network namespaces for one test: hosts behind one router.

Each host (a recruiter's browser, a candidate's browser, the server with its TURN relay) gets a
namespace of its own with one link to a router namespace; nftables in the router drops what a
test wants blocked (the direct path between the browsers, all UDP of one host). Every address
lives inside namespaces the lab made (10.213.<n>.0/24 on each link, no route to anything else)
and everything is removed on close. A link can be an emulated one (tests/wire.py: loss, delay,
jitter, rate, as `tc netem` would do) where the kernel lacks sch_netem.

Needs root (ip netns, nft); `skip_reason()` says why a test cannot run here.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.wire import Profile

ROOT = Path(__file__).resolve().parent.parent
SUBNET = "10.213"
T = TypeVar("T")


def skip_reason() -> str | None:
    """Why namespace tests cannot run here (only: not root), or None. A missing tool is an
    error, not a skip: .ci/run installs them."""
    if os.geteuid() != 0:
        return "network namespace tests need root (ip netns, veth, nftables)"
    return None


def _need_tools() -> None:
    for tool, package in (("ip", "iproute2"), ("nft", "nftables"), ("ss", "iproute2")):
        if shutil.which(tool) is None:
            raise RuntimeError(f"`{tool}` is missing: apt-get install {package} (.ci/run does)")


def _run(argv: Sequence[str], check: bool = True, timeout: float = 20) -> str:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


@dataclass
class Host:
    """One namespace of the lab and its address on its link to the router."""

    name: str
    namespace: str
    address: str
    gateway: str

    def argv(self, command: Sequence[str]) -> list[str]:
        """`command` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *command]


@dataclass
class Lab:
    """Namespaces made for one test; `close()` removes them all (and the processes in them)."""

    prefix: str = field(default_factory=lambda: f"p2pt{secrets.token_hex(2)}")
    hosts: dict[str, Host] = field(default_factory=dict)
    router: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _links: int = 0

    def __post_init__(self) -> None:
        _need_tools()
        self.router = f"{self.prefix}-router"
        self._namespace(self.router)
        self.router_exec(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        self.router_exec(
            [
                "nft",
                "add table inet lab; "
                "add chain inet lab outage; "
                "add chain inet lab forward { type filter hook forward priority 0; policy accept; }; "
                "add rule inet lab forward jump outage",
            ]
        )

    def _namespace(self, name: str) -> None:
        _run(["ip", "netns", "add", name])
        _run(["ip", "-n", name, "link", "set", "lo", "up"])
        # IPv4 only: no link-local IPv6 host candidates to confuse what a test blocks.
        for key in ("all", "default", "lo"):
            _run(
                [
                    "ip",
                    "netns",
                    "exec",
                    name,
                    "sysctl",
                    "-qw",
                    f"net.ipv6.conf.{key}.disable_ipv6=1",
                ]
            )

    def router_exec(self, command: Sequence[str]) -> str:
        return _run(["ip", "netns", "exec", self.router, *command])

    def add_host(self, name: str, wire: Callable[[Host, str], None] | None = None) -> Host:
        """A namespace `<prefix>-<name>` linked to the router, by a veth pair, or by `wire`
        (called with the host and the router's interface name to make the link itself)."""
        self._links += 1
        if self._links > 250:
            raise RuntimeError("a lab has at most 250 hosts")
        net = f"{SUBNET}.{self._links}"
        host = Host(name, f"{self.prefix}-{name}", f"{net}.2", f"{net}.1")
        self._namespace(host.namespace)
        self.hosts[name] = host
        outside = f"r-{name}"[:15]
        if wire is None:
            _run(
                [
                    "ip",
                    "link",
                    "add",
                    "eth0",
                    "netns",
                    host.namespace,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    outside,
                    "netns",
                    self.router,
                ]
            )
            _run(["ip", "-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0"])
            _run(["ip", "-n", self.router, "addr", "add", f"{host.gateway}/24", "dev", outside])
        else:
            wire(host, outside)
            _run(
                [
                    "ip",
                    "-n",
                    host.namespace,
                    "addr",
                    "add",
                    host.address,
                    "peer",
                    host.gateway,
                    "dev",
                    "eth0",
                ]
            )
            _run(
                [
                    "ip",
                    "-n",
                    self.router,
                    "addr",
                    "add",
                    host.gateway,
                    "peer",
                    host.address,
                    "dev",
                    outside,
                ]
            )
        _run(["ip", "-n", host.namespace, "link", "set", "eth0", "up"])
        _run(["ip", "-n", self.router, "link", "set", outside, "up"])
        _run(["ip", "-n", host.namespace, "route", "add", "default", "via", host.gateway])
        return host

    def emulated(self, profile: Profile, log: Path) -> Callable[[Host, str], None]:
        """A link for add_host(wire=...) made by tests/wire.py with netem's impairments."""

        def make(host: Host, outside: str) -> None:
            handle = log.open("wb")
            process = subprocess.Popen(
                python_argv(
                    "-m", "tests.wire", "--a", f"{host.namespace}:eth0",
                    "--b", f"{self.router}:{outside}", *profile.argv(),
                ),
                stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
            handle.close()
            self.processes.append(process)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                if "ready" in log.read_text(errors="replace"):
                    return
                if process.poll() is not None:
                    break
                time.sleep(0.05)
            raise RuntimeError(f"the emulated link did not come up: {log.read_text()[-1000:]}")

        return make

    def drop(self, rule: str) -> None:
        """Add `rule ... drop` to the router's forward chain (nft syntax, addresses of the lab)."""
        self.router_exec(["nft", f"add rule inet lab forward {rule} counter drop"])

    def drop_between(self, a: Host, b: Host) -> None:
        """No packet between the two hosts, either way (the router forwards all else)."""
        self.drop(f"ip saddr {a.address} ip daddr {b.address}")
        self.drop(f"ip saddr {b.address} ip daddr {a.address}")

    def drop_udp(self, host: Host) -> None:
        """No UDP to or from the host: what a network that allows only TCP (and TLS) does."""
        self.drop(f"ip saddr {host.address} meta l4proto udp")
        self.drop(f"ip daddr {host.address} meta l4proto udp")

    def outage(self, *rules: str) -> None:
        """Drop what the rules match until end_outage() (a network that fails mid-call)."""
        for rule in rules:
            self.router_exec(["nft", f"add rule inet lab outage {rule} counter drop"])

    def end_outage(self) -> None:
        self.router_exec(["nft", "flush chain inet lab outage"])

    def dropped_packets(self) -> int:
        """Packets the router's rules have dropped so far."""
        out = self.router_exec(["nft", "-j", "list chain inet lab forward"])
        total = 0
        for item in json.loads(out).get("nftables", []):
            for expression in item.get("rule", {}).get("expr", []):
                if "counter" in expression:
                    total += int(expression["counter"]["packets"])
        return total

    def popen(
        self, host: Host, command: Sequence[str], log: Path, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """A process inside the host's namespace, its output in `log`; ended by close()."""
        handle = log.open("ab")
        process = subprocess.Popen(
            host.argv(command),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
        )
        handle.close()
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(self.processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for host in self.hosts.values():
            _kill_namespace(host.namespace)
        _kill_namespace(self.router)


def _kill_namespace(name: str) -> None:
    """End what is left in the namespace (only processes of this lab are there), then remove it."""
    pids = _run(["ip", "netns", "pids", name], check=False).split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), 9)
    _run(["ip", "netns", "del", name], check=False)


def listens(host: Host, port: int) -> bool:
    """Whether something in the host's namespace listens for TCP on the port."""
    probe = subprocess.run(
        host.argv(["ss", "-Htln", f"sport = :{port}"]), capture_output=True, text=True, timeout=10
    )
    return bool(probe.stdout.strip())


def wait_for_port(host: Host, port: int, timeout: float = 30, process: Any = None) -> None:
    """Until something in the host's namespace accepts TCP connections on the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process in {host.namespace} exited ({process.returncode})")
        if listens(host, port):
            return
        time.sleep(0.2)
    raise RuntimeError(f"nothing listens on {host.address}:{port} after {timeout} s")


_CLONE_NEWNET = 0x40000000


class InNamespace:
    """`work()` running in a thread that lives in a host's namespace (its sockets are made
    there); setns(2) on a thread moves only that thread, the test's own stays where it is."""

    def __init__(self, host: Host, work: Callable[[], Any]) -> None:
        self.host = host
        self._result: list[Any] = []
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._body, args=(work,), daemon=True)
        self._thread.start()

    def _body(self, work: Callable[[], Any]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            with open(f"/run/netns/{self.host.namespace}") as handle:
                if libc.setns(handle.fileno(), _CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {self.host.namespace}")
            self._result.append(work())
        except BaseException as exc:  # handed to whoever waits for the result
            self._failure.append(exc)

    def result(self, timeout: float) -> Any:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"work in {self.host.namespace} did not finish within {timeout} s")
        if self._failure:
            raise self._failure[0]
        return self._result[0]


def run_in(host: Host, work: Callable[[], T], timeout: float = 120) -> T:
    """`work()` in a thread inside the host's namespace; its result (or its exception)."""
    return InNamespace(host, work).result(timeout)  # type: ignore[no-any-return]


def python_argv(*args: str) -> list[str]:
    """This interpreter (the project's virtual environment), for processes in a namespace."""
    return [sys.executable, *args]
