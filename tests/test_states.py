"""The interview's state machine: legal moves only, with precise errors."""

from __future__ import annotations

import pytest

from rooms.states import TRANSITIONS, IllegalTransition, InterviewState, check_transition, is_live

S = InterviewState


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.SCHEDULED, S.WAITING),
        (S.WAITING, S.PLAN),
        (S.PLAN, S.TECHNICAL),
        (S.TECHNICAL, S.FINISHING),
        (S.FINISHING, S.COMPLETED),
        (S.PLAN, S.COMPLETED),
        (S.TECHNICAL, S.COMPLETED),
    ],
)
def test_the_guides_path_is_allowed(current: InterviewState, target: InterviewState) -> None:
    check_transition(current, target)


def test_every_other_move_is_refused() -> None:
    for current in S:
        for target in S:
            if target in TRANSITIONS[current]:
                continue
            with pytest.raises(IllegalTransition):
                check_transition(current, target)


def test_errors_say_what_and_why() -> None:
    with pytest.raises(
        IllegalTransition,
        match=r"^Cannot start the technical part: the interview is already in the technical stage\.$",
    ):
        check_transition(S.TECHNICAL, S.TECHNICAL)
    with pytest.raises(IllegalTransition, match="the interview has already ended"):
        check_transition(S.COMPLETED, S.PLAN)
    with pytest.raises(
        IllegalTransition,
        match="Cannot start the interview: the interview is in the scheduled stage",
    ):
        check_transition(S.SCHEDULED, S.PLAN)


def test_only_a_completed_interview_is_not_live() -> None:
    assert [s for s in S if not is_live(s)] == [S.COMPLETED]
