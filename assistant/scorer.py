"""The scorer interface: a question with its rubric and an answer in, a verdict out."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class QuestionSpec:
    """What the scorer judges against: the expected answer and its key points."""

    text: str
    expected_answer: str
    key_points: tuple[str, ...]
    misconceptions: tuple[str, ...] = ()
    """Common wrong beliefs about the question: an answer that asserts one is marked down."""
    language: str = ""
    """The interview's language ("en", "ru"): the answer's (the rubric may be in another), and
    the one the verdict is written in. Empty: not said (the scorer's own default, English)."""
    code: str = ""
    """For a coding question: the candidate's final code and its test results, for a judge that
    reads code (the LLM judge); empty for a spoken question."""


@dataclass(frozen=True)
class Verdict:
    """A score with its reasons."""

    score: float
    """0 to 10."""
    rationale: str
    """One line for the recruiter."""
    covered: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    follow_up: str = ""
    """A question the recruiter could ask next (the LLM judge suggests one)."""
    scorer: str = ""
    note: str = ""
    """Anything the recruiter should know about how this score was made (e.g. a fallback)."""
    confidence: float = 1.0
    """How sure the scorer is, 0-1 (calibrated on held-out answers); low: "Check this answer"."""
    doubt: str = ""
    """The sentence of the answer that caused the most doubt, when confidence is low."""
    misconceptions: list[str] = field(default_factory=list)
    """The rubric's misconceptions the answer asserts."""


def reference_text(question: QuestionSpec) -> str:
    """What a whole answer is compared with: the question and its expected answer."""
    return f"{question.text} {question.expected_answer}"


class Scorer(Protocol):
    name: str

    def score(self, question: QuestionSpec, answer: str) -> Verdict:
        """Synchronous (model inference or an HTTP call): run it off the event loop."""
        ...


_NON_ANSWERS = re.compile(
    r"^(?:(?:um+|uh+|er+|hmm+|well|so|sorry|okay|ok|yeah|no|i|i'm|im|i am|not|sure|really|"
    r"don't|dont|do not|know|have|haven't|never|worked|with|that|this|it|idea|remember|"
    r"can you|could you|repeat|the|question|please|pass|skip|next|again|one|more|time|"
    r"what|was|is|no idea|say|said|a|for|moment|second|you|your|me|there|connection|line|"
    r"audio|sound|video|cut|out|froze|frozen|dropped|broke|up|lost|bad|hear|missed|catch|"
    r"didn't|did|get)[\s,.!?'-]*)*$",
    re.IGNORECASE,
)


_NON_ANSWERS_RU = re.compile(
    r"^(?:(?:э+|м+|ну|вот|так|да|нет|не|я|меня|мне|знаю|помню|сказать|могу|честно|говоря|"
    r"к сожалению|извините|простите|сложно|трудно|затрудняюсь|ответить|понятия|не имею|"
    r"никогда|работал|работала|с этим|этим|это|этого|можно|повторить|повторите|вопрос|"
    r"можете|ещё|еще|раз|пожалуйста|пропустим|следующий|дальше|давайте|связь|звук|пропала|"
    r"пропал|прервалась|оборвалась|плохо|слышно|слышу|вас|расслышал|расслышала|прослушал|"
    r"прослушала|на|секунду|что|вы|сказали)[\s,.!?'-]*)*$",
    re.IGNORECASE,
)


def is_non_answer(answer: str) -> bool:
    """Silence, filler, "I don't know", "can you repeat the question", "the connection cut
    out, say that again?" (in English or Russian): nothing to score."""
    text = answer.strip()
    return (
        len(text.split()) < 3 or bool(_NON_ANSWERS.match(text)) or bool(_NON_ANSWERS_RU.match(text))
    )
