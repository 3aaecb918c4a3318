"""The AI assistant: the local scorer on the labelled set, and the LLM judge against a local
server that speaks the OpenAI chat API (and its fallback when that server fails)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from assistant.llm import LLMJudge  # noqa: E402
from assistant.local import LocalScorer  # noqa: E402
from assistant.scorer import QuestionSpec, is_non_answer  # noqa: E402
from rooms.bank import bundled_banks  # noqa: E402

GIL = next(q for b in bundled_banks() for q in b.questions if q.slug == "py-gil")
SPEC = QuestionSpec(GIL.text, GIL.expected_answer, GIL.key_points)


@pytest.fixture(scope="module")
def local() -> LocalScorer:
    return LocalScorer()


@pytest.mark.parametrize(
    "answer", ["", "um", "I don't know", "Sorry, can you repeat the question?", "no idea"]
)
def test_silence_and_dont_know_score_zero(local: LocalScorer, answer: str) -> None:
    assert is_non_answer(answer)
    verdict = local.score(SPEC, answer)
    assert verdict.score == 0 and verdict.missing == list(GIL.key_points)


def test_expected_answer_scores_high_and_off_topic_low(local: LocalScorer) -> None:
    strong = local.score(SPEC, GIL.expected_answer)
    assert strong.score >= 8 and len(strong.covered) >= 4
    off = local.score(
        SPEC, "I usually cook pasta on weekends and go hiking with my family in the hills."
    )
    assert off.score <= 1 and off.rationale == "The answer does not address the question."


def test_preparing_during_the_answer_changes_nothing_but_the_time() -> None:
    """The sentences embedded while the candidate speaks are the ones scoring needs later."""
    first, rest = GIL.expected_answer.split(". ", 1)
    cold = LocalScorer().score(SPEC, GIL.expected_answer)
    scorer = LocalScorer()
    scorer.prepare(first + ".")
    cached = len(scorer.embedder._cache)
    assert cached >= 1
    scorer.prepare(GIL.expected_answer)
    assert len(scorer.embedder._cache) > cached
    assert scorer.score(SPEC, GIL.expected_answer) == cold
    scorer.prepare("I don't know")  # nothing to embed for a non-answer
    assert "I don't know" not in scorer.embedder._cache


def test_local_scorer_agrees_with_the_human_scores(local: LocalScorer) -> None:
    import scoring

    rho, mae, _ = scoring.evaluate(local)
    print(f"Spearman {rho:.3f}, MAE {mae:.2f}")
    assert rho >= 0.8
    assert mae <= 2.0


def test_onnxruntime_telemetry_is_off_in_process(tmp_path: Path) -> None:
    """Importing the assistant sets the variable before onnxruntime loads; no device id is left."""
    code = (
        "import os, assistant.embeddings as e; "
        "assert os.environ['ORT_DISABLE_TELEMETRY'] == '1'; "
        "e.Embedder().embed(['hello'])"
    )
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env["HOME"] = str(tmp_path)
    subprocess.run(
        [sys.executable, "-c", code], check=True, env=env, cwd=Path(__file__).parent.parent
    )
    assert not any("onnx" in str(p).lower() for p in tmp_path.rglob("*")), list(tmp_path.rglob("*"))


def chat_server(reply):  # type: ignore[no-untyped-def]
    """An OpenAI-compatible /v1/chat/completions that answers with `reply(request_json)`."""
    seen: list[dict] = []

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        status, content = reply(body)
        if status != 200:
            return web.json_response({"error": {"message": "boom"}}, status=status)
        return web.json_response(
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
            }
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app, seen


async def test_llm_judge_uses_a_schema_and_returns_its_verdict(
    aiohttp_server, local: LocalScorer
) -> None:
    verdict_json = json.dumps(
        {
            "score": 3,
            "rationale": "Claims threads run bytecode in parallel, which is wrong.",
            "covered": [GIL.key_points[2]],
            "missing": list(GIL.key_points[:2]),
            "follow_up": "What would you use for CPU-bound work?",
        }
    )
    app, seen = chat_server(lambda body: (200, verdict_json))
    server = await aiohttp_server(app)
    judge = LLMJudge(
        "judge-model", fallback=local, base_url=str(server.make_url("/v1")), api_key="k"
    )
    answer = (
        "The GIL lets threads run Python bytecode in parallel on all cores, so threads are great."
    )
    verdict = await asyncio.to_thread(judge.score, SPEC, answer)
    assert verdict.score == 3 and verdict.scorer == "llm:judge-model"
    assert verdict.covered == [GIL.key_points[2]] and verdict.follow_up.startswith("What would")
    assert verdict.note == ""
    request = seen[0]
    assert request["response_format"]["type"] == "json_schema"
    assert request["temperature"] == 0
    assert answer in request["messages"][1]["content"]


@pytest.mark.parametrize("failure", [(500, ""), (200, "not json"), (200, '{"score": 42}')])
async def test_llm_judge_falls_back_to_the_local_scorer_with_a_note(
    aiohttp_server, local: LocalScorer, failure: tuple[int, str]
) -> None:
    app, _ = chat_server(lambda body: failure)
    server = await aiohttp_server(app)
    judge = LLMJudge(
        "judge-model", fallback=local, base_url=str(server.make_url("/v1")), api_key="k", timeout=5
    )
    verdict = await asyncio.to_thread(judge.score, SPEC, GIL.expected_answer)
    assert verdict.scorer == "local" and verdict.score >= 8
    assert verdict.note.startswith("Scored by the local model: the LLM judge")
