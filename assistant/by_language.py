"""The local scorer for an answer's language: the English one (trained claim checker and grader)
for English interviews, the multilingual one for the others, whatever language the rubric is
written in."""

from __future__ import annotations

from assistant.scorer import QuestionSpec, Scorer, Verdict


class ScorerByLanguage:
    """Sends each answer to the scorer of its interview's language (`QuestionSpec.language`)."""

    name = "local"

    def __init__(self, english: Scorer, multilingual: Scorer) -> None:
        self.english = english
        self.multilingual = multilingual

    def _for(self, language: str) -> Scorer:
        return self.english if language in ("", "en") else self.multilingual

    def warm_up(self, language: str = "en") -> None:
        """Load the models of `language`'s scorer now rather than on the first answer."""
        warm = getattr(self._for(language), "warm_up", None)
        if warm is not None:
            warm()

    def prepare(self, answer_so_far: str, language: str = "en") -> None:
        """Let the scorer of `language` embed an answer still being given."""
        prepare = getattr(self._for(language), "prepare", None)
        if prepare is not None:
            prepare(answer_so_far)

    def prepare_question(self, question: QuestionSpec) -> None:
        """Let the scorer of the question's language embed its rubric before the answer."""
        prepare = getattr(self._for(question.language), "prepare_question", None)
        if prepare is not None:
            prepare(question)

    def score(self, question: QuestionSpec, answer: str) -> Verdict:
        return self._for(question.language).score(question, answer)
