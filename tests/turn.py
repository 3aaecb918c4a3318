"""Debian's coturn (`turnserver`) for the tests: a real TURN relay over UDP, TCP and TLS.

It runs the way an operator runs it beside the service (docs/connectivity.md): `use-auth-secret`
with a shared secret, so it accepts exactly the time-limited credentials the service hands out
(signaling/ice.py), and a TLS listener with a self-signed certificate made here.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
REALM = "p2p-interview.test"


def missing() -> str | None:
    """What is missing to run coturn here, or None."""
    if shutil.which("turnserver") is None:
        return "coturn is not installed (apt-get install coturn; .ci/run does it)"
    if shutil.which("openssl") is None:
        return "openssl is needed for the TURN server's TLS certificate"
    return None


def self_signed(folder: Path, address: str) -> tuple[Path, Path]:
    """A certificate and key for `address` (valid one day), for the TLS listener."""
    cert, key = folder / "turn-cert.pem", folder / "turn-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=turn.p2p-interview.test",
            "-addext", f"subjectAltName=IP:{address}",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


def spki_pin(cert: Path) -> str:
    """base64 SHA-256 of the certificate's public key, as Chromium's
    `--ignore-certificate-errors-spki-list` takes it: trust that one key, nothing else."""
    public = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-pubkey", "-noout"],
        check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    der = subprocess.run(
        ["openssl", "pkey", "-pubin", "-outform", "der"],
        input=public, check=True, capture_output=True, timeout=30,
    ).stdout  # fmt: skip
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@dataclass
class TurnServer:
    """A running coturn: where it listens, its secret, and its log."""

    address: str
    port: int
    tls_port: int
    secret: str
    log: Path
    process: subprocess.Popen[bytes]
    cert: Path

    def chromium_args(self) -> list[str]:
        """What a browser needs to accept this server's self-signed certificate for turns: (an
        operator's server has a certificate browsers already trust)."""
        return [f"--ignore-certificate-errors-spki-list={spki_pin(self.cert)}"]

    def urls(self, transports: Sequence[str] = ("udp", "tcp", "tls")) -> list[str]:
        """TURN URLs for the given transports: plain UDP and TCP on `port`, TLS on `tls_port`."""
        found = []
        for transport in transports:
            if transport == "tls":
                found.append(f"turns:{self.address}:{self.tls_port}?transport=tcp")
            else:
                found.append(f"turn:{self.address}:{self.port}?transport={transport}")
        return found

    def ice_servers(
        self, transports: Sequence[str] = ("udp", "tcp", "tls")
    ) -> list[dict[str, Any]]:
        """The service's ICE_SERVERS value: one TURN entry (no username: the service adds them)."""
        return [{"urls": self.urls(transports)}]

    def env(self, transports: Sequence[str] = ("udp", "tcp", "tls")) -> dict[str, str]:
        """ICE_SERVERS and TURN_SECRET for `p2p-interview serve`."""
        return {"ICE_SERVERS": json.dumps(self.ice_servers(transports)), "TURN_SECRET": self.secret}

    def allocations(self) -> list[str]:
        """The log lines of the relay allocations made so far (with their transport)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "ALLOCATE" in line and "success" in line]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_turn(
    folder: Path,
    address: str = "127.0.0.1",
    port: int = 0,
    tls_port: int = 0,
    wrap: Callable[[list[str]], list[str]] = lambda argv: argv,
    ready: Callable[[int], bool] | None = None,
) -> TurnServer:
    """coturn listening on `address` (UDP and TCP on `port`, TLS on `tls_port`; 0: free ports of
    this namespace), relaying from the same address. `wrap` runs it elsewhere (a namespace);
    `ready(port)` says when its TCP listener is up (by default: a connection here succeeds)."""
    problem = missing()
    if problem:
        raise RuntimeError(problem)
    folder.mkdir(parents=True, exist_ok=True)
    port = port or _free_port(address)
    tls_port = tls_port or _free_port(address)
    secret = secrets.token_urlsafe(16)
    cert, key = self_signed(folder, address)
    log = folder / "turnserver.log"
    argv = [
        TURNSERVER,
        "-n",  # no configuration file: everything is here
        "--no-cli",
        "-v",  # one line per allocation, which the tests read
        "--simple-log",
        f"--log-file={log}",
        f"--pidfile={folder / 'turnserver.pid'}",
        f"--userdb={folder / 'turndb'}",
        f"--listening-ip={address}",
        f"--relay-ip={address}",
        f"--listening-port={port}",
        f"--tls-listening-port={tls_port}",
        "--no-dtls",
        f"--cert={cert}",
        f"--pkey={key}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        f"--realm={REALM}",
        "--no-multicast-peers",
        "--min-port=40000",
        "--max-port=49999",
    ]
    if address.startswith("127."):
        argv.append("--allow-loopback-peers")
    process = subprocess.Popen(
        wrap(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    server = TurnServer(address, port, tls_port, secret, log, process, cert)
    check = ready or (lambda p: _accepts(address, p))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"turnserver exited ({process.returncode}): {_tail(log)}")
        if check(port) and check(tls_port):
            return server
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"turnserver did not listen within 20 s: {_tail(log)}")


def _free_port(address: str) -> int:
    """A port free for both TCP and UDP on the address (TURN listens on both)."""
    for _ in range(50):
        with socket.socket() as tcp, socket.socket(type=socket.SOCK_DGRAM) as udp:
            tcp.bind((address, 0))
            chosen = int(tcp.getsockname()[1])
            try:
                udp.bind((address, chosen))
            except OSError:
                continue
            return chosen
    raise RuntimeError(f"no port free for TCP and UDP on {address}")


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.3):
            return True
    except OSError:
        return False


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
