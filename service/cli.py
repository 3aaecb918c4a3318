"""The command line: `p2p-interview serve | worker | migrate | create-recruiter | bank ...`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from pathlib import Path

from rooms import accounts, sessions
from rooms.bank import (
    BankInvalid,
    all_bundled_banks,
    check_solutions,
    dump_bank,
    import_banks,
    load_banks,
)
from rooms.db import make_engine, make_sessionmaker
from rooms.errors import InvalidInput
from rooms.migrate import upgrade
from service.settings import Settings, SettingsError
from telemetry.logs import configure as configure_logging


async def _with_session(settings: Settings, work):  # type: ignore[no-untyped-def]
    engine = make_engine(settings.effective_database_url)
    try:
        async with make_sessionmaker(engine).begin() as session:
            return await work(session)
    finally:
        await engine.dispose()


async def _calibrate(session, args) -> int:  # type: ignore[no-untyped-def]
    """Print each bank's proposed correction; store (or clear) it only when asked."""
    from rooms import calibration

    if args.clear:
        if not args.bank:
            print("error: --clear needs --bank ID", file=sys.stderr)
            return 2
        removed = await calibration.clear(session, args.bank)
        print(f"{args.bank}: correction removed" if removed else f"{args.bank}: had none")
        return 0
    found = await calibration.overrides_by_bank(session)
    if args.bank:
        found = {args.bank: found.get(args.bank, [])}
    if not any(found.values()):
        print("no overridden scores yet: nothing to calibrate on")
        return 0
    for bank, pairs in sorted(found.items()):
        if not pairs:
            print(f"{bank}: no overridden scores")
            continue
        p = calibration.propose(bank, pairs)
        line = (
            f"{bank}: {p.answers} overridden answers; recruiter = {p.scale:.2f} x AI "
            f"{p.offset:+.2f}; mean absolute error {p.mae_before:.2f} -> {p.mae_after:.2f} "
            "(leave-one-out)"
        )
        if not p.helps:
            why = (
                f"needs {calibration.MIN_ANSWERS} answers"
                if p.answers < calibration.MIN_ANSWERS
                else "it would not help"
            )
            print(f"{line}; not proposed: {why}")
        elif args.apply:
            await calibration.store(session, p)
            print(f"{line}; stored: new scores of this bank are adjusted and say so")
        else:
            print(f"{line}; run again with --apply to store it")
    return 0


async def _sign_out(session, email: str) -> int | None:  # type: ignore[no-untyped-def]
    recruiter = await accounts.find_by_email(session, email)
    return None if recruiter is None else await sessions.end_all(session, recruiter.id)


def _ask_password() -> str:
    """The new account's password, typed twice at a terminal (once from a pipe)."""
    password = getpass.getpass("Password: ")
    if sys.stdin.isatty() and getpass.getpass("Password again: ") != password:
        print("error: the two passwords do not match", file=sys.stderr)
        raise SystemExit(1)
    return password


def migrate(settings: Settings) -> None:
    """Bring the schema up to date and load the bundled question banks (every language)."""
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    upgrade(settings.effective_database_url)
    banks = all_bundled_banks()
    asyncio.run(_with_session(settings, lambda s: import_banks(s, banks)))
    print(f"database ready; {len(banks)} specializations loaded")


def serve(settings: Settings) -> None:
    import gc

    from aiohttp import web

    from web.app import create_app  # the one import of web/ outside it

    app = create_app(settings)
    # Thousands of long-lived WebSockets make full collections slow (150-220 ms pauses were
    # measured at 1,000 rooms): keep startup objects out of them and collect less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    # The "Running on" banner through the log: with LOG_FORMAT=json every line is JSON.
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        access_log=None,
        print=logging.getLogger(__name__).info,
    )


async def _requeue(url: str) -> int:
    import redis.asyncio as aioredis

    from jobs.streams import requeue_failed

    client = aioredis.from_url(url)
    try:
        return await requeue_failed(client)
    finally:
        await client.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="p2p-interview", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("serve", help="run the web server")
    run.add_argument("--host")
    run.add_argument("--port", type=int)
    run.add_argument("--migrate", action="store_true", help="migrate before serving")
    work = commands.add_parser("worker", help="run speech jobs from the Redis queue (REDIS_URL)")
    work.add_argument("--name", help="consumer name in the group (default: host-pid)")
    work.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on this port (no token)"
    )
    work.add_argument("--metrics-host", default="127.0.0.1", help="address of --metrics-port")
    commands.add_parser(
        "requeue-failed-jobs", help="put answer jobs that failed 3 times back in the queue"
    )
    commands.add_parser("migrate", help="create or upgrade the database, load the bank")
    create = commands.add_parser(
        "create-recruiter",
        help="create a recruiter account (the password from P2PI_PASSWORD, else asked for)",
    )
    create.add_argument("email")
    # Refused, not taken: a password on the command line is visible to every user in `ps`.
    create.add_argument("--password", help=argparse.SUPPRESS)
    sign_out = commands.add_parser(
        "sign-out", help="end every session of a recruiter (every browser must sign in again)"
    )
    sign_out.add_argument("email")
    calibrate = commands.add_parser(
        "calibrate-scorer",
        help="fit each bank's AI score correction on the recruiters' overrides (shown; stored "
        "only with --apply)",
    )
    calibrate.add_argument("--bank", help="only this specialization")
    calibrate.add_argument("--apply", action="store_true", help="store the corrections that help")
    calibrate.add_argument("--clear", action="store_true", help="remove the bank's correction")
    purge = commands.add_parser("purge-recordings", help="delete recordings older than N days")
    purge.add_argument("--days", type=int, help="default: RECORDING_RETENTION_DAYS")
    bank = commands.add_parser("bank", help="question bank: validate, import, export")
    bank_commands = bank.add_subparsers(dest="bank_command", required=True)
    validate = bank_commands.add_parser("validate", help="check YAML files, report line and field")
    validate.add_argument("files", nargs="*", type=Path)
    imp = bank_commands.add_parser("import", help="load YAML files into the database")
    imp.add_argument("files", nargs="*", type=Path)
    exp = bank_commands.add_parser("export", help="write the bundled banks as YAML to a folder")
    exp.add_argument("folder", type=Path)
    args = parser.parse_args(argv)
    # Everything this service writes (database, outbox, recordings, keys) is for its own user.
    os.umask(0o077)

    # Text until the settings are read (their errors are printed either way), then LOG_FORMAT.
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"), "text")
    # aioice logs every ICE check at INFO: keep the operator's log readable.
    logging.getLogger("aioice").setLevel(logging.WARNING)
    # aiosqlite logs every statement with its parameters at DEBUG: emails, names, notes.
    logging.getLogger("aiosqlite").setLevel(logging.INFO)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if settings.log_format != "text":
        configure_logging(os.environ.get("LOG_LEVEL", "INFO"), settings.log_format)
    if args.command == "serve":
        if args.host or args.port:
            settings = Settings(
                **{
                    **settings.__dict__,
                    "host": args.host or settings.host,
                    "port": args.port or settings.port,
                }
            )
        if args.migrate:
            migrate(settings)
        serve(settings)
    elif args.command == "worker":
        if not settings.redis_url:
            print(
                "error: the worker takes its jobs from Redis: set REDIS_URL "
                "(without Redis, `serve` runs the jobs itself)",
                file=sys.stderr,
            )
            return 2
        from service.worker import run_worker

        asyncio.run(
            run_worker(settings, args.name, metrics_at=(args.metrics_host, args.metrics_port))
        )
    elif args.command == "requeue-failed-jobs":
        if not settings.redis_url:
            print("error: failed jobs are kept only in Redis: set REDIS_URL", file=sys.stderr)
            return 2
        print(f"requeued {asyncio.run(_requeue(settings.redis_url))} answer jobs")
    elif args.command == "migrate":
        migrate(settings)
    elif args.command == "create-recruiter":
        if args.password is not None:
            print(
                "error: --password is not accepted (other users can read it in `ps`); "
                "set P2PI_PASSWORD or leave it out to be asked",
                file=sys.stderr,
            )
            return 2
        password = os.environ.get("P2PI_PASSWORD") or _ask_password()
        try:
            recruiter = asyncio.run(
                _with_session(
                    settings, lambda s: accounts.create_recruiter(s, args.email, password)
                )
            )
        except InvalidInput as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
        print(f"recruiter {recruiter.email} created")
    elif args.command == "sign-out":
        ended = asyncio.run(_with_session(settings, lambda s: _sign_out(s, args.email)))
        if ended is None:
            print(f"error: no recruiter {args.email}", file=sys.stderr)
            return 1
        print(f"{ended} sessions of {accounts.email_key(args.email)} ended")
    elif args.command == "calibrate-scorer":
        return asyncio.run(_with_session(settings, lambda s: _calibrate(s, args)))
    elif args.command == "purge-recordings":
        days = args.days if args.days is not None else settings.retention_days
        if days <= 0:
            print("error: give --days N (N > 0) or set RECORDING_RETENTION_DAYS", file=sys.stderr)
            return 2
        from pipeline.factories import make_storage
        from pipeline.retention import purge_recordings

        async def purge_now() -> int:
            engine = make_engine(settings.effective_database_url)
            storage = make_storage(settings)
            await storage.start()
            try:
                return await purge_recordings(make_sessionmaker(engine), storage, days)
            finally:
                await storage.close()
                await engine.dispose()

        count = asyncio.run(purge_now())
        print(f"deleted {count} recordings older than {days} days")
    elif args.command == "bank":
        files = args.files if getattr(args, "files", None) else None
        try:
            banks = load_banks(files) if files else all_bundled_banks()
        except BankInvalid as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 1
        if args.bank_command == "validate":
            check = check_solutions(banks)
            for problem in check.problems:
                print(problem, file=sys.stderr)
            for b in banks:
                coding = sum(1 for q in b.questions if q.code)
                print(
                    f"{b.source}: ok, {len(b.topics)} topics, {len(b.questions)} questions"
                    f" ({coding} coding)"
                )
            print(f"reference solutions: {check.checked} pass their tests")
            for skipped in check.skipped:
                print(f"skipped {skipped}")
            if check.problems:
                return 1
        elif args.bank_command == "import":
            asyncio.run(_with_session(settings, lambda s: import_banks(s, banks)))
            print(f"imported {len(banks)} specializations")
        else:
            args.folder.mkdir(parents=True, exist_ok=True)
            for b in banks:
                (args.folder / f"{b.id}.yaml").write_text(dump_bank(b), encoding="utf-8")
            print(f"exported {len(banks)} banks to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
