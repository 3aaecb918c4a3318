"""What an operator watches: /metrics behind its token, scraped while a call is up and jobs
wait; log lines as JSON with the interview they belong to."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from jobs.streams import ANSWER_STREAM, ensure_group
from media.oggopus import OggOpusWriter
from rooms.db import make_engine, make_sessionmaker
from rooms.recordings import start_segment
from service.settings import Settings, SettingsError
from telemetry.logs import InterviewField, JsonLines, TextLines, working_on
from telemetry.metrics import ERRORS, ErrorCounter
from tests.conftest import Mailbox, free_port, start_server, with_redis
from tests.helpers import create_interview_now, register
from tests.seed import _seed
from tests.test_candidate_and_presence import next_of

TOKEN = "metrics-token-for-tests"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return samples(await response.text())


async def test_metrics_are_404_without_a_token_and_401_with_a_wrong_one(
    client, make_client, settings: Settings
) -> None:
    assert (await client.get("/metrics")).status == 404
    node = await make_client(replace(settings, metrics_token=TOKEN))
    assert (await node.get("/metrics")).status == 401
    wrong = await node.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401 and "Authorization: Bearer" in (await wrong.json())["error"]


async def test_a_scrape_counts_sockets_calls_recorded_bytes_and_waiting_jobs(
    make_client, settings: Settings, mailbox: Mailbox, redis_url: str, tmp_path: Path
) -> None:
    node = await make_client(
        replace(with_redis(settings), metrics_token=TOKEN, inline_worker=False)
    )
    before = await scrape(node)
    assert before[("p2pi_sockets", ())] == 0 and before[("p2pi_calls", ())] == 0
    assert ("p2pi_score_delay_seconds_count", ()) in before
    assert before[("p2pi_recordings_active", ())] == 0

    await register(node, mailbox, "metrics@example.com")
    interview_id, _ = await create_interview_now(node)
    ws = await node.ws_connect("/ws")
    await ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    await next_of(ws, "joined")
    writer = OggOpusWriter(tmp_path / "x.opus", serial=1)
    writer.write_gap(48000 * 2)
    writer.close()
    # An answer job that no worker takes (INLINE_WORKER=false and no worker running).
    client = aioredis.from_url(redis_url)
    await ensure_group(client)
    await client.xadd(ANSWER_STREAM, {"id": "j1", "kind": "answer", "body": "{}"})
    await asyncio.sleep(0.3)
    await client.aclose()

    after = await scrape(node)
    assert after[("p2pi_sockets", ())] == 1 and after[("p2pi_calls", ())] == 1
    grown = after[("p2pi_recorded_bytes_total", ())] - before[("p2pi_recorded_bytes_total", ())]
    assert grown == (tmp_path / "x.opus").stat().st_size
    assert after[("p2pi_jobs_waiting", (("queue", "answers"),))] == 1
    assert 0.2 <= after[("p2pi_jobs_oldest_age_seconds", (("queue", "answers"),))] < 30
    assert after[("p2pi_jobs_waiting", (("queue", "live"),))] == 0
    await ws.close()

    # Every series the Grafana dashboard plots is one the service exports.
    response = await node.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    families = {family.name for family in text_string_to_metric_families(await response.text())}
    dashboard = (Path(__file__).parent.parent / "docs" / "grafana-dashboard.json").read_text()
    plotted = {re.sub(r"_(bucket|total)$", "", n) for n in re.findall(r"p2pi_[a-z_]+", dashboard)}
    assert plotted and plotted <= families, plotted - families


def test_errors_are_counted_by_kind_and_settings_refuse_a_bad_log_format() -> None:
    logger = logging.getLogger("tests.metrics.errors")
    counter = ErrorCounter()
    logger.addHandler(counter)
    logger.propagate = False  # the root may hold the service's own counter (an earlier test's)
    try:
        before = ERRORS.labels("tests.metrics.errors")._value.get()
        logger.error("one")
        logger.warning("not an error")
        logger.critical("two")
        assert ERRORS.labels("tests.metrics.errors")._value.get() == before + 2
    finally:
        logger.removeHandler(counter)
        logger.propagate = True
    try:
        Settings.from_env({"LOG_FORMAT": "xml"})
    except SettingsError as exc:
        assert "LOG_FORMAT" in str(exc)
    else:
        raise AssertionError("LOG_FORMAT=xml accepted")


async def test_the_interview_follows_its_work_into_tasks() -> None:
    formatter, field = JsonLines(), InterviewField()

    def line(message: str) -> dict[str, object]:
        record = logging.LogRecord("work", logging.INFO, __file__, 1, message, None, None)
        field.filter(record)
        return dict(json.loads(formatter.format(record)))

    async def job(interview: int) -> tuple[dict[str, object], dict[str, object]]:
        working_on(interview)
        inner = await asyncio.create_task(asyncio.sleep(0, line("in a task it started")))
        return line("in the job"), inner

    first, second = await asyncio.gather(job(5), job(6))
    assert [first[0]["interview"], first[1]["interview"]] == [5, 5]
    assert [second[0]["interview"], second[1]["interview"]] == [6, 6]
    assert "interview" not in line("outside any")
    record = logging.LogRecord("work", logging.INFO, __file__, 1, "text form", None, None)
    working_on(9)
    field.filter(record)
    assert TextLines().format(record).endswith("work: text form [interview 9]")


async def test_serve_logs_json_lines_with_the_interview_and_counts_the_error(
    db: str, tmp_path: Path
) -> None:
    """A real `serve` with LOG_FORMAT=json whose bucket is out of reach: playing a recording
    fails (503), and that error's line names the interview and is counted in /metrics."""
    if db.startswith("postgresql"):
        pytest.skip("the database plays no part in this; one backend is enough")
    seeded = await _seed(db, "json@example.com", "a long pass phrase", "python-backend")
    engine = make_engine(db)
    async with make_sessionmaker(engine).begin() as session:
        row = await start_segment(
            session,
            seeded.interview_id,
            "candidate",
            f"interview-{seeded.interview_id}/candidate-000.opus",
            datetime.now(UTC),
        )
        recording_id = row.id
    await engine.dispose()
    log = tmp_path / "server.log"
    server = start_server(
        {
            "DATABASE_URL": db,
            "DATA_DIR": str(tmp_path / "var"),
            "SECRET_KEY": "json-test",
            "LOG_FORMAT": "json",
            "METRICS_TOKEN": TOKEN,
            "RECORDINGS_URL": "s3://recordings/p2pi",
            "S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
            "S3_ACCESS_KEY_ID": "key",
            "S3_SECRET_ACCESS_KEY": "secret",
        },
        log,
    )
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            page = await (await http.get(f"{server.url}/signin")).text()
            token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
            await http.post(
                f"{server.url}/signin",
                data={"email": seeded.email, "password": seeded.password, "csrf_token": token},
            )
            ws = await http.ws_connect(f"{server.url.replace('http', 'ws')}/ws")
            await ws.send_json({"type": "join", "role": "candidate", "token": seeded.token})
            await next_of(ws, "joined")
            played = await http.get(
                f"{server.url}/interviews/{seeded.interview_id}/recordings/{recording_id}"
            )
            assert played.status == 503
            await http.get(f"{server.url}/healthz")
            scraped = await http.get(
                f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert scraped.status == 200
            found = samples(await scraped.text())
            assert found[("p2pi_sockets", ())] == 1 and found[("p2pi_calls", ())] == 1
            assert found[("p2pi_errors_total", (("kind", "web.pages"),))] >= 1
            await ws.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=15)
    text = log.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert all(line.startswith("{") for line in text.splitlines() if line.strip())
    failed = [line for line in lines if line["level"] == "ERROR"]
    assert failed and all(line.get("interview") == seeded.interview_id for line in failed)
    assert any("/recordings/" in str(line["message"]) for line in failed)
    assert any("interview" not in line for line in lines)  # start-up lines belong to none
    assert seeded.token not in text and seeded.email not in text
