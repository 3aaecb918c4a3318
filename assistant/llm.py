"""An LLM judge through the `openai` client (OpenAI or any compatible server: set a base URL)."""

from __future__ import annotations

import json
import logging
from typing import Any

from openai import OpenAI
from pydantic import BaseModel, Field, ValidationError

from assistant.scorer import QuestionSpec, Scorer, Verdict, is_non_answer

log = logging.getLogger(__name__)

RUBRIC = """You are a senior engineer grading one spoken answer in a technical job interview.
The answer was transcribed by speech recognition: ignore filler words and small mis-hearings.
Score 0-10 against the expected answer and its key points:
- 10: every key point, correct and clear; 7-9: most key points, no errors;
- 4-6: some key points, or right but vague; 1-3: mostly wrong, or confident but incorrect;
- 0: silence, "I don't know", or off topic.
A fluent answer that states something incorrect must score low even if it uses the right terms.
List each key point under covered or missing (copy the key point's text), give a one-line
rationale, and suggest one follow-up question. Answer with JSON only."""

SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["score", "rationale", "covered", "missing", "follow_up"],
    "properties": {
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "rationale": {"type": "string"},
        "covered": {"type": "array", "items": {"type": "string"}},
        "missing": {"type": "array", "items": {"type": "string"}},
        "follow_up": {"type": "string"},
    },
}


class _Judgement(BaseModel):
    score: int = Field(ge=0, le=10)
    rationale: str = Field(max_length=2000)
    covered: list[str]
    missing: list[str]
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
    ) -> None:
        self.model = model
        self.fallback = fallback
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
            "answer": answer,
        }
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                temperature=0,
                messages=[
                    {"role": "system", "content": RUBRIC},
                    {"role": "user", "content": json.dumps(prompt)},
                ],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "verdict", "schema": SCHEMA, "strict": True},
                },
            )
            content = response.choices[0].message.content or ""
            judgement = _Judgement.model_validate_json(content)
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
        points = set(question.key_points)
        return Verdict(
            score=float(judgement.score),
            rationale=judgement.rationale.strip(),
            covered=[p for p in judgement.covered if p in points] or judgement.covered,
            missing=[p for p in judgement.missing if p in points] or judgement.missing,
            follow_up=judgement.follow_up.strip(),
            scorer=f"llm:{self.model}",
        )

    def _fallback(self, question: QuestionSpec, answer: str, why: str) -> Verdict:
        verdict = self.fallback.score(question, answer)
        return Verdict(
            score=verdict.score,
            rationale=verdict.rationale,
            covered=verdict.covered,
            missing=verdict.missing,
            follow_up=verdict.follow_up,
            scorer=verdict.scorer,
            note=f"Scored by the local model: {why}.",
        )
