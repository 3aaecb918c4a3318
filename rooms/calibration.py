"""Recruiters' overrides as labels: per bank, how far the AI's scores are from the scores the
recruiters typed over them, and a linear correction fitted on them (stored only on request)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.models import Interview, Score, ScoreCalibration, utcnow

MIN_ANSWERS = 10
"""Fewer overridden answers than this in a bank: no correction is proposed."""


@dataclass(frozen=True)
class Proposal:
    """A bank's proposed correction, with its error before and after (leave-one-out)."""

    bank: str
    answers: int
    scale: float
    offset: float
    mae_before: float
    mae_after: float

    @property
    def helps(self) -> bool:
        return self.answers >= MIN_ANSWERS and self.mae_after < self.mae_before


def _fit(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares human = scale * ai + offset (a constant shift when the AI never varies)."""
    n = len(pairs)
    mean_ai = sum(a for a, _ in pairs) / n
    mean_human = sum(h for _, h in pairs) / n
    var = sum((a - mean_ai) ** 2 for a, _ in pairs)
    if var < 1e-9:
        return 1.0, mean_human - mean_ai
    scale = sum((a - mean_ai) * (h - mean_human) for a, h in pairs) / var
    scale = min(2.0, max(0.5, scale))  # a correction, not a new scorer
    return scale, mean_human - scale * mean_ai


def _apply(scale: float, offset: float, ai: float) -> float:
    return min(10.0, max(0.0, scale * ai + offset))


def propose(bank: str, pairs: list[tuple[float, float]]) -> Proposal:
    """The correction for one bank's (AI score, recruiter's score) pairs."""
    before = sum(abs(a - h) for a, h in pairs) / len(pairs)
    if len(pairs) < 3:
        return Proposal(bank, len(pairs), 1.0, 0.0, before, before)
    held_out = []
    for i, (ai, human) in enumerate(pairs):
        scale, offset = _fit(pairs[:i] + pairs[i + 1 :])
        held_out.append(abs(_apply(scale, offset, ai) - human))
    scale, offset = _fit(pairs)
    return Proposal(bank, len(pairs), scale, offset, before, sum(held_out) / len(held_out))


async def overrides_by_bank(session: AsyncSession) -> dict[str, list[tuple[float, float]]]:
    """(AI score, recruiter's score) of every overridden answer, per specialization."""
    rows = await session.execute(
        select(Interview.specialization_id, Score.score, Score.override)
        .join(Interview, Interview.id == Score.interview_id)
        .where(Score.override.is_not(None))
    )
    found: dict[str, list[tuple[float, float]]] = {}
    for bank, ai, human in rows:
        if human is not None:
            found.setdefault(str(bank), []).append((float(ai), float(human)))
    return found


async def store(session: AsyncSession, proposal: Proposal) -> None:
    row = await session.get(ScoreCalibration, proposal.bank)
    if row is None:
        row = ScoreCalibration(specialization_id=proposal.bank)
        session.add(row)
    row.scale, row.offset, row.answers = proposal.scale, proposal.offset, proposal.answers
    row.fitted_at = utcnow()
    await session.flush()


async def clear(session: AsyncSession, bank: str) -> bool:
    row = await session.get(ScoreCalibration, bank)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


async def for_interview(session: AsyncSession, interview_id: int) -> ScoreCalibration | None:
    """The stored correction of the interview's bank, if an operator applied one."""
    bank = await session.scalar(
        select(Interview.specialization_id).where(Interview.id == interview_id)
    )
    return await session.get(ScoreCalibration, bank) if bank else None
