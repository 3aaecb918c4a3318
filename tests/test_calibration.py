"""Recruiters' overrides as labels: a bank's correction is proposed from them, stored only when
the operator applies it, and then every new score of that bank is adjusted and says so."""

from __future__ import annotations

import time

from sqlalchemy import select

from rooms import calibration, conduct
from rooms.db import make_engine, make_sessionmaker
from rooms.models import Score
from rooms.results import override_score
from service.cli import main
from tests.conftest import Mailbox
from tests.test_answers import answer_job
from tests.test_conduct import api, started_interview
from web.keys import ANSWERS


def test_a_correction_is_proposed_only_where_it_helps() -> None:
    # The AI scores two points above the recruiters, consistently.
    pairs = [(float(s), float(max(0, s - 2))) for s in [3, 4, 5, 6, 7, 8, 9, 9, 6, 5, 7, 4]]
    proposal = calibration.propose("python-backend", pairs)
    assert proposal.helps and proposal.mae_after < 0.5 < proposal.mae_before
    assert 0.9 < proposal.scale < 1.3
    few = calibration.propose("python-backend", pairs[:5])
    assert not few.helps  # too few answers to trust
    noise = calibration.propose("x", [(5.0, 5.0 + (-1) ** i) for i in range(12)])
    assert not noise.helps  # nothing systematic to correct


async def test_an_applied_correction_adjusts_new_scores_visibly(
    client, make_client, mailbox: Mailbox, settings, capsys
) -> None:
    interview_id, _, token, _ = await started_interview(client, make_client, mailbox)
    assert (await api(client, token, f"/api/interviews/{interview_id}/technical", {}))[0] == 200
    engine = make_engine(settings.database_url)
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        for position in range(1, 11):
            ai = float(position % 5 + 4)
            await conduct.save_score(
                session, interview_id, position, ai, "r", [], [], "", "local", ""
            )
            await override_score(session, interview_id, position, max(0.0, ai - 2))
    # Shown, not stored: scores stay as the AI gave them.
    async with sessions.begin() as session:
        found = await calibration.overrides_by_bank(session)
        assert len(found["python-backend"]) == 10
        assert await calibration.for_interview(session, interview_id) is None
        await calibration.store(
            session, calibration.propose("python-backend", found["python-backend"])
        )

    work = client.app[ANSWERS].work
    t = time.time() - 30
    job = answer_job(interview_id, t, t + 10, "A generator yields values lazily, one at a time.")
    await work.answer(job)
    async with sessions() as session:
        score = await session.scalar(
            select(Score).where(Score.interview_id == interview_id, Score.position == 1)
        )
    await engine.dispose()
    assert score is not None
    assert "Adjusted for this bank from 10 recruiters' scores" in score.note


def test_the_command_shows_before_it_stores(settings, monkeypatch, capsys) -> None:
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    assert main(["calibrate-scorer"]) == 0
    assert "no overridden scores yet" in capsys.readouterr().out
    assert main(["calibrate-scorer", "--clear"]) == 2
