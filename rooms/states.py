"""The interview's stages and the only moves allowed between them."""

from __future__ import annotations

import enum


class InterviewState(enum.StrEnum):
    """Where an interview is in its life, from the guide's three parts."""

    SCHEDULED = "scheduled"  # "Conduct the interview later": waits for its time
    WAITING = "waiting"  # waiting page open, candidate link live
    PLAN = "plan"  # "Start interview": the Interview plan
    TECHNICAL = "technical"  # "Start technical part": questions one by one
    FINISHING = "finishing"  # the "Finish interview" stage
    COMPLETED = "completed"  # the red phone icon was clicked


TRANSITIONS: dict[InterviewState, frozenset[InterviewState]] = {
    InterviewState.SCHEDULED: frozenset({InterviewState.WAITING}),
    InterviewState.WAITING: frozenset({InterviewState.PLAN}),
    InterviewState.PLAN: frozenset({InterviewState.TECHNICAL, InterviewState.COMPLETED}),
    InterviewState.TECHNICAL: frozenset({InterviewState.FINISHING, InterviewState.COMPLETED}),
    InterviewState.FINISHING: frozenset({InterviewState.COMPLETED}),
    InterviewState.COMPLETED: frozenset(),
}

ACTIONS: dict[InterviewState, str] = {
    InterviewState.WAITING: "open the waiting room",
    InterviewState.PLAN: "start the interview",
    InterviewState.TECHNICAL: "start the technical part",
    InterviewState.FINISHING: "move to the Finish interview stage",
    InterviewState.COMPLETED: "end the interview",
}


class IllegalTransition(Exception):
    """A move the state machine does not allow; nothing was changed."""

    def __init__(self, current: InterviewState, target: InterviewState) -> None:
        self.current = current
        self.target = target
        action = ACTIONS.get(target, target.value)
        if current is InterviewState.COMPLETED:
            reason = "the interview has already ended"
        elif current is target:
            reason = f"the interview is already in the {current.value} stage"
        else:
            reason = f"the interview is in the {current.value} stage"
        super().__init__(f"Cannot {action}: {reason}.")


def check_transition(current: InterviewState, target: InterviewState) -> None:
    """Raise IllegalTransition unless `current -> target` is an allowed move."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)


def is_live(state: InterviewState) -> bool:
    """True while the candidate link may be used to join."""
    return state in {
        InterviewState.SCHEDULED,
        InterviewState.WAITING,
        InterviewState.PLAN,
        InterviewState.TECHNICAL,
        InterviewState.FINISHING,
    }
