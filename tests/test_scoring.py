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
from assistant.local import FEATURES, WEIGHTS, LocalScorer, Weights, tree_value  # noqa: E402
from assistant.scorer import QuestionSpec, is_non_answer  # noqa: E402
from rooms.bank import bundled_banks  # noqa: E402

GIL = next(q for b in bundled_banks() for q in b.questions if q.slug == "py-gil")
SPEC = QuestionSpec(GIL.text, GIL.expected_answer, GIL.key_points)


@pytest.fixture(scope="module")
def local() -> LocalScorer:
    return LocalScorer()


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "um",
        "I don't know",
        "Sorry, can you repeat the question?",
        "no idea",
        "Sorry, you froze for a moment there, I didn't catch that. Could you say it again?",
    ],
)
def test_silence_and_dont_know_score_zero(local: LocalScorer, answer: str) -> None:
    assert is_non_answer(answer)
    verdict = local.score(SPEC, answer)
    assert verdict.score == 0 and verdict.missing == list(GIL.key_points)


def test_expected_answer_scores_high_and_off_topic_low(local: LocalScorer) -> None:
    strong = local.score(SPEC, GIL.expected_answer)
    # Covered: 3 of its 6 points (one more is supported 0.92, but another sentence reads as
    # contradicting it); the score is 9.4.
    assert strong.score >= 7 and len(strong.covered) >= len(GIL.key_points) // 2
    assert not strong.rationale.startswith(("Contradicts", "Asserts"))
    off = local.score(
        SPEC, "I usually cook pasta on weekends and go hiking with my family in the hills."
    )
    assert off.score <= 1 and off.rationale == "The answer does not address the question."


DEFAULTS = next(b for b in bundled_banks() if b.id == "python-backend").questions[0]
DEFAULTS_SPEC = QuestionSpec(
    DEFAULTS.text, DEFAULTS.expected_answer, DEFAULTS.key_points, DEFAULTS.misconceptions
)
# What Whisper tiny.en wrote of espeak-ng reading DEFAULTS' expected answer, in one test run: the
# claim checker reads its second sentence as "a fresh list on every call".
GARBLED = (
    "File to mail you are evaluated once, when the neft statement runs, and the same object is "
    "stored on the function and reused on every call. mutating that object, for example "
    "appending to a default list, or dict, therefore release state between calls and the list "
    "keep throwing. The standard fix is to use as the default and create a new list inside the "
    "function when the argument is done. The same rule is why they the classes reject newable "
    "defaults. and the wire field, the file factory equals list."
)


def test_a_misconception_is_named_only_when_nothing_the_answer_states_contradicts_it(
    local: LocalScorer,
) -> None:
    garbled = local.score(DEFAULTS_SPEC, GARBLED)
    assert garbled.misconceptions == [] and not garbled.rationale.startswith("Asserts")
    believer = local.score(
        DEFAULTS_SPEC, f"So I'm fairly sure about this one. {DEFAULTS.misconceptions[0]} That's it."
    )
    assert believer.misconceptions == [DEFAULTS.misconceptions[0]] and believer.score < 5


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


def test_local_scorer_agrees_with_the_human_scores_on_unseen_questions(
    local: LocalScorer,
) -> None:
    """The dev split: 100 answers to 10 questions (3 outside the bank) the weights and the
    claim checker were not fitted on."""
    from scoring_data import agreement, load, splits

    specs, items = load()
    dev = [i for i in items if i.question in splits()["dev"]]
    result = agreement(dev, [local.score(specs[i.question], i.answer).score for i in dev])
    print(result.line("dev"))
    # Measured: Spearman 0.889, MAE 1.07, wrong +0.8, off-topic +1.1 (the goal: 0.85 / 1.2 /
    # every kind within +-1.0); the first scorer: 0.25 / 3.01, wrong +4.5.
    assert result.spearman >= 0.8
    assert result.mae <= 1.4
    assert result.bias_by_kind["wrong"] <= 1.8


def test_the_claim_checker_flags_contradictions_of_questions_it_never_saw() -> None:
    """Key points of the test split's bank questions (no training pair names them), each
    negated by rule, and a few handwritten contradictions: flagged; the points themselves and
    paraphrases: supported. The model loads offline from the repository."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
    from rules import negate
    from scoring_data import splits

    from assistant.claims import ClaimChecker

    checker = ClaimChecker()
    unseen = splits()["test"]
    points = [
        p for b in bundled_banks() for q in b.questions if q.slug in unseen for p in q.key_points
    ]
    negated = [(p, n) for p in points if (n := negate(p)) is not None]
    assert len(negated) >= 15
    probs = checker.check(negated)
    flagged = sum(row[1] > row[0] for row in probs) / len(negated)
    themselves = checker.check([(p, p) for p in points])
    supported = sum(row[0] > row[1] for row in themselves) / len(points)
    handwritten = [
        (
            "Generators produce values lazily, one at a time, as they are requested.",
            "A generator computes all of its values up front and stores them in a list.",
            1,
        ),
        (
            "asyncio runs coroutines concurrently on a single thread with an event loop.",
            "asyncio starts a separate operating system thread for every coroutine you await.",
            1,
        ),
        (
            "A HashMap gives average constant-time lookups by hashing the key into a bucket.",
            "so basically the hash map hashes your key to pick a bucket and the lookup is usually "
            "constant time",
            0,
        ),
        (
            "The test pyramid has many fast unit tests at the base and few end-to-end tests on top.",
            "You want mostly end-to-end UI tests and only a handful of unit tests at the top.",
            1,
        ),
    ]
    rows = checker.check([(c, s) for c, s, _ in handwritten])
    right = [
        int(row.argmax()) == label for row, (_, _, label) in zip(rows, handwritten, strict=True)
    ]
    print(
        f"contradictions flagged {flagged:.2f}, points supported {supported:.2f}, handwritten {right}"
    )
    assert flagged >= 0.8
    assert supported >= 0.9
    assert sum(right) >= 3


def test_right_sentences_neither_contradict_key_points_nor_assert_misconceptions() -> None:
    """The bank's expected answers of questions the checker never learned from (dev and test
    splits), sentence by sentence, against every key point and misconception of their question:
    a true sentence about one point is not read as contradicting the next, nor as asserting a
    misconception that shares its words (what the partial labels of training/train_claims.py
    teach). Measured: 16.6 % and 7.0 % (the checker trained without them: 24.3 % and 14.7 %)."""
    from scoring_data import splits

    from assistant.claims import ClaimChecker
    from assistant.local import split_sentences

    unseen = splits()["dev"] | splits()["test"]
    questions = [q for b in bundled_banks() for q in b.questions if q.slug in unseen]
    points, wrong = [], []
    for q in questions:
        sentences = [s for s in split_sentences(q.expected_answer) if len(s.split()) >= 5][:12]
        points += [(p, s) for p in q.key_points for s in sentences]
        wrong += [(m, s) for m in q.misconceptions for s in sentences]
    assert len(points) >= 500 and len(wrong) >= 300
    checker = ClaimChecker()
    contradicted = float((checker.check(points).argmax(axis=1) == 1).mean())
    supported = float((checker.check(wrong).argmax(axis=1) == 0).mean())
    print(f"key points contradicted {contradicted:.3f}, misconceptions supported {supported:.3f}")
    assert contradicted <= 0.21
    assert supported <= 0.10


def test_the_grader_tells_confident_wrong_answers_from_partial_ones_on_unseen_questions() -> None:
    """The dev split's answers (questions the grader never saw): a confidently wrong answer
    sounds as fluent and topical as a partial one, and the grader, which also learns from
    answers composed of the claim pairs' contradictions, grades it lower. Measured, mean of 10
    per kind: wrong 1.5, partial 2.8, off-topic 2.2, strong 8.4 (the grader trained on real
    answers alone: wrong 3.6, partial 3.8, off-topic 3.8, strong 7.8)."""
    from scoring_data import load, splits

    from assistant.grader import Grader

    specs, items = load()
    dev = [i for i in items if i.question in splits()["dev"]]
    grader = Grader()
    by_kind: dict[str, list[float]] = {}
    for item in dev:
        if item.kind in ("strong", "partial", "wrong", "off-topic"):
            by_kind.setdefault(item.kind, []).append(
                grader.grade(specs[item.question], item.answer)
            )
    mean = {kind: sum(v) / len(v) for kind, v in by_kind.items()}
    print({kind: round(m, 1) for kind, m in mean.items()})
    assert len(by_kind["wrong"]) >= 8
    assert mean["wrong"] <= 2.5
    assert mean["wrong"] <= mean["partial"] - 0.8
    assert mean["off-topic"] <= 3.0
    assert mean["strong"] - mean["wrong"] >= 5


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


async def test_llm_judge_reads_the_code_of_a_coding_question(
    aiohttp_server, local: LocalScorer
) -> None:
    reply = {
        "score": 6,
        "rationale": "Explains it; one hidden test fails.",
        "covered": [],
        "missing": [],
    }
    app, seen = chat_server(lambda body: (200, json.dumps(reply)))
    server = await aiohttp_server(app)
    judge = LLMJudge(
        "judge-model", fallback=local, base_url=str(server.make_url("/v1")), api_key="k"
    )
    code = (
        "python, function merge:\ndef merge(xs):\n    return xs\nhidden tests: failed, 2/3 passed"
    )
    spoken = QuestionSpec(GIL.text, GIL.expected_answer, GIL.key_points)
    coding = QuestionSpec(GIL.text, GIL.expected_answer, GIL.key_points, code=code)
    await asyncio.to_thread(judge.score, spoken, "I sort them and merge neighbours.")
    verdict = await asyncio.to_thread(judge.score, coding, "I sort them and merge neighbours.")
    assert verdict.score == 6
    assert "candidate_code" not in json.loads(seen[0]["messages"][1]["content"])
    assert json.loads(seen[1]["messages"][1]["content"])["candidate_code"] == code
    assert "candidate_code holds the code" in seen[1]["messages"][0]["content"]


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
    assert verdict.scorer == "local" and verdict.score >= 7
    assert verdict.note.startswith("Scored by the local model: the LLM judge")


async def test_llm_judge_reads_the_misconceptions_and_averages_several_samples(
    aiohttp_server, local: LocalScorer
) -> None:
    """Three samples 3, 5 and 7 average to 5; their spread lowers the stated confidence; the
    misconceptions reach the judge and the one it names comes back marked."""
    spec = QuestionSpec(GIL.text, GIL.expected_answer, GIL.key_points, GIL.misconceptions)
    replies = iter([3, 5, 7])

    def reply(body: dict) -> tuple[int, str]:
        return 200, json.dumps(
            {
                "score": next(replies),
                "rationale": "Says threads run in parallel.",
                "covered": [],
                "missing": list(GIL.key_points),
                "contradicted": [GIL.key_points[0]],
                "misconceptions": [GIL.misconceptions[0], "something the rubric does not say"],
                "doubt": "threads run in parallel",
                "confidence": 0.9,
                "follow_up": "",
            }
        )

    app, seen = chat_server(reply)
    server = await aiohttp_server(app)
    judge = LLMJudge(
        "judge-model",
        fallback=local,
        base_url=str(server.make_url("/v1")),
        api_key="k",
        samples=3,
        language="ru",
    )
    verdict = await asyncio.to_thread(judge.score, spec, "The GIL lets threads run in parallel.")
    assert verdict.score == 5.0 and len(seen) == 3
    assert verdict.confidence == pytest.approx(0.6)  # 0.9, less 0.1 per point of spread past 1
    assert verdict.misconceptions == [GIL.misconceptions[0]]
    assert verdict.doubt == "threads run in parallel"
    request = json.loads(seen[0]["messages"][1]["content"])
    assert request["misconceptions"] == list(GIL.misconceptions)
    assert "in Russian" in seen[0]["messages"][0]["content"]
    assert all(r["temperature"] == 0.7 for r in seen)


def test_the_shipped_combination_is_boosted_trees_and_a_linear_file_still_loads(
    tmp_path: Path,
) -> None:
    tree = [0, 0.5, -1.0, [1, 0.2, 2.0, 3.0]]  # feature 0 <= 0.5: -1; else by feature 1
    assert [tree_value(tree, x) for x in ([0.5, 9.0], [0.7, 0.2], [0.7, 0.3])] == [-1.0, 2.0, 3.0]
    shipped = Weights.load()
    assert len(shipped.trees) >= 50 and shipped.learning_rate > 0
    x = [0.5] * len(FEATURES)
    expected = shipped.intercept + shipped.learning_rate * sum(
        tree_value(t, x) for t in shipped.trees
    )
    assert shipped.raw_score(x) == pytest.approx(expected)
    # A weights file written before the trees (a recalibrated or older install): linear.
    old = json.loads(WEIGHTS.read_text(encoding="utf-8"))
    old.pop("trees")
    old.pop("learning_rate")
    old["intercept"], old["coefficients"] = 1.0, [2.0] + [0.0] * (len(FEATURES) - 1)
    (tmp_path / "scorer.json").write_text(json.dumps(old))
    linear = Weights.load(tmp_path / "scorer.json")
    assert linear.trees == () and linear.raw_score(x) == pytest.approx(2.0)


def test_a_kind_weighted_heavier_pulls_the_trees_towards_its_scores() -> None:
    """Answers the evidence cannot tell apart (the same features) but humans scored apart:
    unweighted, the trees split the difference; with one kind weighted 8 times they move to the
    weighted mean, near that kind's score."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "training"))
    from fit_scorer import LEARNING_RATE, fit_trees
    from scoring_data import Labelled

    class Ev:
        def __init__(self, value: float) -> None:
            self.features = {f: value for f in FEATURES}

    items, evidence = [], []
    for n in range(40):
        same = 0.3 if n % 2 else 0.7  # two groups; within each, a wrong and a partial answer
        for kind, score in (("wrong", 1.0), ("partial", 5.0)):
            items.append(Labelled(f"q{n}", kind, score if same < 0.5 else score + 3, "", ""))
            evidence.append(Ev(same))

    def predicted(kind_weights: dict[str, float] | None) -> float:
        base, trees = fit_trees(items, evidence, kind_weights=kind_weights)
        x = [0.3] * len(FEATURES)
        return base + LEARNING_RATE * sum(tree_value(t, x) for t in trees)

    assert predicted(None) == pytest.approx(3.0, abs=0.05)  # between wrong 1 and partial 5
    weighted = predicted({"wrong": 8.0})
    assert weighted == pytest.approx(1.0 + 4.0 / 9, abs=0.05)  # the weighted mean: (8*1+5)/9
