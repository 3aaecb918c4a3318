"""The layout holds: which package may import which (read from the source), and the worker
process runs without any of the web application."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (
    "rooms",
    "telemetry",
    "bus",
    "jobs",
    "media",
    "transcription",
    "assistant",
    "signaling",
    "pipeline",
    "service",
    "web",
)
SETTINGS = "service.settings"  # read by every composition root; imports nothing of the service
ALLOWED: dict[str, set[str]] = {
    "rooms": set(),
    "telemetry": set(),
    "bus": set(),
    "media": {"telemetry"},
    "assistant": set(),
    "transcription": {"media"},
    "jobs": {"bus", "telemetry"},
    "signaling": {"rooms", "bus", "media", "telemetry"},
    "pipeline": {
        "rooms",
        "bus",
        "jobs",
        "media",
        "transcription",
        "assistant",
        "telemetry",
        SETTINGS,
    },
    "service": {
        "rooms",
        "bus",
        "jobs",
        "media",
        "transcription",
        "assistant",
        "pipeline",
        "telemetry",
    },
    "web": set(PACKAGES) - {"web"},
}
ENTRY_POINT = "service/cli.py"  # the one module outside web/ that may import it (for `serve`)


def imports_of(path: Path) -> set[str]:
    """Project modules imported anywhere in the file (function-level imports too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def allowed(package: str, module: str, path: str) -> bool:
    top = module.split(".")[0]
    if top == package:
        return not (path == "service/settings.py" and module != SETTINGS)
    if top == "web":
        return path == ENTRY_POINT
    if module == SETTINGS or module.startswith(SETTINGS + "."):
        return package != "rooms"
    return top in ALLOWED[package]


def test_each_package_imports_only_what_it_may() -> None:
    broken = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative:
                continue
            for module in sorted(imports_of(path)):
                if not allowed(package, module, relative):
                    broken.append(f"{relative} imports {module}")
    assert not broken, "imports against the layout (docs/architecture.md):\n" + "\n".join(broken)


def test_the_rule_reader_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from web.app import create_app\n    import signaling.hub\n")
    assert imports_of(sample) == {"web.app", "web.app.create_app", "signaling.hub"}
    assert not allowed("rooms", "signaling.hub", "rooms/x.py")
    assert not allowed("pipeline", "web.app", "pipeline/x.py")
    assert allowed("service", "web.app", ENTRY_POINT)


WORKER_PROBE = """
import os, signal, sys
import service.worker as worker
from service import cli

start = worker.StreamWorker.start

def started(self):
    start(self)
    web = sorted(m for m in sys.modules if m == "web" or m.startswith("web."))
    print("web modules:", ",".join(web) or "none", flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

worker.StreamWorker.start = started
sys.exit(cli.main(["worker", "--name", "layout-probe"]))
"""


def test_the_worker_runs_without_the_web_application(tmp_path: Path, redis_url: str) -> None:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "DATA_DIR": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", WORKER_PROBE],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "web modules: none" in done.stdout, done.stdout + done.stderr[-2000:]
