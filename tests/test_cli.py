"""The command line: bank validate / export / import, create-recruiter, migrate."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_bank_validate_reports_file_line_and_field(tmp_path: Path) -> None:
    good = cli("bank", "validate")
    assert good.returncode == 0 and good.stdout.count("ok,") >= 6
    exported = tmp_path / "export"
    assert cli("bank", "export", str(exported)).returncode == 0
    broken = exported / "python-backend.yaml"
    text = broken.read_text()
    broken.write_text(text.replace("expected_answer:", "expected_answr:", 1))
    result = cli("bank", "validate", str(broken))
    assert result.returncode == 1
    line = result.stderr.strip().splitlines()[0]
    assert (
        line.startswith(f"{broken}:")
        and "questions[0].expected_answer: is missing or empty" in line
    )


def test_migrate_create_recruiter_and_import_on_a_fresh_database(tmp_path: Path) -> None:
    env = {"DATA_DIR": str(tmp_path / "var"), "DATABASE_URL": ""}
    migrated = cli("migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "9 specializations loaded" in migrated.stdout  # 6 in English, 3 in Russian
    assert (tmp_path / "var" / "p2p-interview.db").exists()
    secret = {**env, "P2PI_PASSWORD": "long enough pw"}
    created = cli("create-recruiter", "ops@example.com", env=secret)
    assert created.returncode == 0 and "ops@example.com created" in created.stdout
    again = cli("create-recruiter", "OPS@example.com", env=secret)
    assert again.returncode == 1 and "already exists" in again.stderr
    short = cli("create-recruiter", "x@example.com", env={**env, "P2PI_PASSWORD": "short"})
    assert short.returncode == 1 and "at least 10 characters" in short.stderr
    exported = tmp_path / "banks"
    cli("bank", "export", str(exported))
    imported = cli("bank", "import", *map(str, sorted(exported.glob("*.yaml"))), env=env)
    assert imported.returncode == 0 and "imported 9" in imported.stdout


def test_bad_settings_are_reported_clearly() -> None:
    result = cli("migrate", env={"ICE_SERVERS": "not json"})
    assert result.returncode == 2 and "ICE_SERVERS is not valid JSON" in result.stderr


def test_create_recruiter_never_takes_the_password_on_the_command_line(tmp_path: Path) -> None:
    """A password in argv is readable by every user through `ps`: refused, with the ways that
    are not (the environment, or typed at the prompt; here piped to it)."""
    env = {"DATA_DIR": str(tmp_path / "var"), "DATABASE_URL": "", "P2PI_PASSWORD": ""}
    assert cli("migrate", env=env).returncode == 0
    refused = cli("create-recruiter", "ps@example.com", "--password", "long enough pw", env=env)
    assert refused.returncode == 2 and "P2PI_PASSWORD" in refused.stderr
    assert "created" not in refused.stdout
    asked = subprocess.run(
        [sys.executable, "-m", "service.cli", "create-recruiter", "ps@example.com"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        input="long enough pw\n",
        env={**os.environ, **env},
        timeout=120,
    )
    assert asked.returncode == 0 and "ps@example.com created" in asked.stdout, asked.stderr
    # The admin can end every session of an account.
    ended = cli("sign-out", "PS@example.com", env=env)
    assert ended.returncode == 0 and "0 sessions of ps@example.com ended" in ended.stdout
    assert cli("sign-out", "nobody@example.com", env=env).returncode == 1


def test_files_of_the_service_are_private(tmp_path: Path) -> None:
    """The database and its folder are the service user's only (0600 / 0700)."""
    env = {"DATA_DIR": str(tmp_path / "var"), "DATABASE_URL": ""}
    assert cli("migrate", env=env).returncode == 0
    for path in (tmp_path / "var").rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    assert (tmp_path / "var").stat().st_mode & 0o777 == 0o700
