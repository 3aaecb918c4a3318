"""An LLM judge through the `openai` client (OpenAI or any compatible server: set a base URL)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from openai import OpenAI
from pydantic import BaseModel, Field, ValidationError

from assistant.scorer import QuestionSpec, Scorer, Verdict, is_non_answer

log = logging.getLogger(__name__)

RUBRIC = """You are a senior engineer grading one spoken answer in a technical job interview.
The answer was transcribed by speech recognition: ignore filler words and mis-heard words
("jason" for JSON, "cash" for cache) when the meaning is clear.
Judge it against the expected answer, its key points and the common misconceptions given.
Score levels (anchor every score to one of them):
- 9-10: every key point, correct and clear, however it is worded (analogies count);
- 7-8: most key points, nothing wrong; a short answer that states the main points belongs here;
- 4-6: about half of the key points, or right but with one wrong claim;
- 2-3: vague or generic (buzzwords, "it depends", no substance), or half right and half wrong;
- 0-1: confidently wrong about the core of the question, off topic, silence or "I don't know".
For a coding question, candidate_code holds the code the candidate wrote and its test results:
judge the spoken explanation and the code together (failing hidden tests weigh against it).
A fluent answer that asserts a misconception or contradicts a key point scores low even if it
uses the right terms. Copy under covered, missing and contradicted the key points' own text,
and under misconceptions the misconceptions the answer asserts. Give a one-line rationale,
"doubt": the answer's sentence you are least sure how to judge (or ""), "confidence" 0-1 that a
second senior engineer would score within 2 points of you, and one follow-up question.
Write the rationale, doubt and follow-up in {language}. Answer with JSON only."""

LANGUAGES = {"en": "English", "ru": "Russian"}

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "score",
        "rationale",
        "covered",
        "missing",
        "contradicted",
        "misconceptions",
        "doubt",
        "confidence",
        "follow_up",
    ],
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "rationale": {"type": "string"},
        "covered": {"type": "array", "items": {"type": "string"}},
        "missing": {"type": "array", "items": {"type": "string"}},
        "contradicted": {"type": "array", "items": {"type": "string"}},
        "misconceptions": {"type": "array", "items": {"type": "string"}},
        "doubt": {"type": "string"},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "follow_up": {"type": "string"},
    },
}


class _Judgement(BaseModel):
    score: int = Field(ge=0, le=10)
    rationale: str = Field(max_length=2000)
    covered: list[str]
    missing: list[str]
    contradicted: list[str] = Field(default_factory=list)
    misconceptions: list[str] = Field(default_factory=list)
    doubt: str = Field(default="", max_length=2000)
    confidence: float = Field(default=0.8, ge=0, le=1)
    follow_up: str = Field(default="", max_length=2000)


class LLMJudge:
    """Falls back to another scorer (the local one) with a visible note when the API fails."""

    name = "llm"

    def __init__(
        self,
        model: str,
        fallback: Scorer,
        base_url: str | None = None,
        api_key: str = "",
        timeout: float = 20,
        samples: int = 1,
        language: str = "en",
    ) -> None:
        self.model = model
        self.fallback = fallback
        self.samples = max(1, samples)
        """Judgements asked for and averaged (at temperature 0.7 when more than one): their
        spread lowers the stated confidence."""
        self.language = language
        self.client = OpenAI(
            base_url=base_url, api_key=api_key or "unset", timeout=timeout, max_retries=1
        )

    def warm_up(self) -> None:
        warm = getattr(self.fallback, "warm_up", None)
        if warm is not None:
            warm()

    def score(self, question: QuestionSpec, answer: str) -> Verdict:
        if is_non_answer(answer):
            return self.fallback.score(question, answer)
        prompt = {
            "question": question.text,
            "expected_answer": question.expected_answer,
            "key_points": list(question.key_points),
            "misconceptions": list(question.misconceptions),
            "answer": answer,
        }
        if question.code:
            prompt["candidate_code"] = question.code
        try:
            # The verdict in the interview's language (the answer's), whatever the rubric's.
            language = question.language or self.language

            judgements = [self._ask(prompt, language) for _ in range(self.samples)]
        except (ValidationError, ValueError) as exc:
            return self._fallback(
                question,
                answer,
                f"the LLM judge answered in an unexpected form ({exc.__class__.__name__})",
            )
        except Exception as exc:  # the API is down, slow, or refused
            log.warning("LLM judge failed: %s", exc)
            return self._fallback(
                question, answer, f"the LLM judge was unavailable ({exc.__class__.__name__})"
            )
        first = judgements[0]
        scores = [j.score for j in judgements]
        spread = max(scores) - min(scores)
        confidence = sum(j.confidence for j in judgements) / len(judgements)
        confidence = max(0.0, confidence - 0.1 * max(0, spread - 1))
        points = set(question.key_points)
        wrong = set(question.misconceptions)
        return Verdict(
            score=round(sum(scores) / len(scores), 1),
            rationale=first.rationale.strip(),
            covered=[p for p in first.covered if p in points] or first.covered,
            missing=[p for p in first.missing if p in points] or first.missing,
            follow_up=first.follow_up.strip(),
            scorer=f"llm:{self.model}",
            confidence=round(confidence, 2),
            doubt=first.doubt.strip(),
            misconceptions=[m for m in first.misconceptions if m in wrong],
        )

    def _ask(self, prompt: dict[str, Any], language: str) -> _Judgement:
        response = self.client.chat.completions.create(
            model=self.model,
            temperature=0 if self.samples == 1 else 0.7,
            messages=[
                {
                    "role": "system",
                    "content": RUBRIC.format(language=LANGUAGES.get(language, "English")),
                },
                {"role": "user", "content": json.dumps(prompt, ensure_ascii=False)},
            ],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": SCHEMA, "strict": True},
            },
        )
        return _Judgement.model_validate_json(response.choices[0].message.content or "")

    def _fallback(self, question: QuestionSpec, answer: str, why: str) -> Verdict:
        verdict = self.fallback.score(question, answer)
        return replace(verdict, note=f"Scored by the local model: {why}.")
