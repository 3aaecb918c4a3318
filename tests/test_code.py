"""Coding questions and the shared code: the bank's checks, the server's document (kept with
pycrdt, rebuilt from the database), and the code-* signaling messages with their errors."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pycrdt import Doc, Text

from rooms.bank import BankInvalid, bundled_banks, check_solutions, dump_bank, parse_bank
from rooms.code_documents import (
    MAX_UPDATE_BYTES,
    CodeDocuments,
    CodeRefused,
    decode_update,
    judged_code,
    seed_update,
    text_at,
)
from rooms.code_tasks import CodeTask, CodeTest, run_reference
from rooms.conduct import save_answer
from rooms.db import make_engine, make_sessionmaker
from signaling import protocol
from tests.conftest import Mailbox, csrf_of, with_redis
from tests.helpers import create_interview_now, register
from tests.test_bank import bank_text
from tests.test_candidate_and_presence import join_consents, next_of
from tests.test_scoring import chat_server

CODE_QUESTION = """
  - id: code-add
    kind: code
    difficulty: easy
    text: Write add(a, b).
    alternative: Add two numbers.
    expected_answer: Return a + b.
    key_points: [one, two, three]
    code:
      language: python
      function: add
      starter: "def add(a, b):\\n    pass\\n"
      solution: "def add(a, b):\\n    return a + b\\n"
      tests:
        - {args: [1, 2], expected: 3}
        - {args: [-1, 1], expected: 0, hidden: true}
"""
MERGE_POSITION = 6
"""py-code-merge-intervals is the sixth question of the Python backend bank."""


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def edit(base: bytes, position: int, at: int, text: str, client_id: int = 42) -> bytes:
    """A Yjs update (made with pycrdt) inserting `text` at `at` into a document that has `base`."""
    doc: Doc[Any] = Doc(client_id=client_id)
    doc.apply_update(base)
    before = doc.get_state()
    doc.get(f"q{position}", type=Text).insert(at, text)
    return doc.get_update(before)


# The bank


def test_shipped_coding_questions_pass_their_own_tests() -> None:
    banks = bundled_banks()
    coding = [q for b in banks for q in b.questions if q.code]
    assert len(coding) >= 10
    assert {q.code.language for q in coding if q.code} == {"python", "javascript"}
    for bank in banks:
        first_ten = [q for q in bank.questions[:10] if q.code]
        assert bank.id == "java-backend" or len(first_ten) == 2, bank.id
    check = check_solutions(banks)
    assert check.problems == []
    assert check.checked + len(check.skipped) == len(coding)


def test_a_coding_question_round_trips_through_export() -> None:
    bank = parse_bank(bank_text(extra=CODE_QUESTION), "demo.yaml")
    again = parse_bank(dump_bank(bank), "demo.yaml")
    assert again == bank and again.questions[-1].kind == "code"
    assert again.questions[-1].code and len(again.questions[-1].code.hidden) == 1


def test_a_wrong_reference_solution_is_reported() -> None:
    bank = parse_bank(bank_text(extra=CODE_QUESTION.replace("a + b", "a - b")), "demo.yaml")
    check = check_solutions([bank])
    assert len(check.problems) == 2
    assert "add(*[1, 2]) returned -1, expected 3" in str(check.problems[0])


def test_a_reference_solution_that_never_ends_is_stopped() -> None:
    task = CodeTask("python", "spin", "", "def spin():\n    while True: pass\n", (CodeTest((), 1),))
    assert run_reference(task, timeout_s=1) == ["the reference solution ran longer than 1 s"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (("language: python", "language: cobol"), "code.language", "must be one of"),
        (("function: add", "function: 2add"), "code.function", "name of the function"),
        (("        - {args: [-1, 1], expected: 0, hidden: true}\n", ""), "code.tests", "hidden"),
        (("kind: code", "kind: essay"), "kind", "talk or code"),
        (("{args: [1, 2], expected: 3}", "{args: 1, expected: 3}"), "code.tests[0].args", "list"),
    ],
)
def test_broken_coding_questions_name_the_field(
    change: tuple[str, str], field: str, message: str
) -> None:
    with pytest.raises(BankInvalid) as caught:
        parse_bank(bank_text(extra=CODE_QUESTION.replace(*change)), "demo.yaml")
    found = [p for p in caught.value.problems if p.field.endswith(field)]
    assert found and message in found[0].message, caught.value.problems


# The server's document


def test_the_starter_code_seeds_once_wherever_it_is_made() -> None:
    first, second = seed_update(3, "def f():\n"), seed_update(3, "def f():\n")
    assert first == second
    assert text_at([first, second, first], 3) == "def f():\n"


def test_updates_that_are_not_yjs_are_refused_clearly() -> None:
    for bad, code in [("%%%", "bad_update"), ("", "bad_update")]:
        with pytest.raises(CodeRefused) as caught:
            decode_update(bad)
        assert caught.value.code == code
    with pytest.raises(CodeRefused) as caught:
        decode_update(b64(b"x" * (MAX_UPDATE_BYTES + 1)))
    assert caught.value.code == "too_large"


async def test_the_document_survives_a_restart_and_refuses_garbage(
    client: TestClient, mailbox: Mailbox, db: str
) -> None:
    await register(client, mailbox, "doc@example.com")
    interview_id, _ = await create_interview_now(client)
    engine = make_engine(db)
    sessions = make_sessionmaker(engine)
    docs = CodeDocuments(sessions)
    synced = await docs.sync(interview_id, "")
    starter = text_at([base64.b64decode(synced["update"])], MERGE_POSITION)
    assert starter.startswith("def merge_intervals(intervals):")
    update = edit(base64.b64decode(synced["update"]), MERGE_POSITION, 0, "# mine\n")
    await docs.apply(interview_id, update)
    docs.store(interview_id, "candidate", update)
    await docs.flush()
    with pytest.raises(CodeRefused) as caught:
        await docs.apply(interview_id, b"\x01\x02garbage")
    assert caught.value.code == "bad_update"

    restarted = CodeDocuments(sessions)  # a new process: only the database remembers
    await restarted.open(interview_id)
    assert restarted.text(interview_id, MERGE_POSITION) == "# mine\n" + starter
    # A page that has everything gets nothing back but the server's state vector.
    doc: Doc[Any] = Doc()
    doc.apply_update(base64.b64decode(synced["update"]))
    doc.apply_update(update)
    again = await restarted.sync(interview_id, b64(doc.get_state()))
    assert text_at([base64.b64decode(again["update"])], MERGE_POSITION) == ""
    await engine.dispose()


# The code-* messages


@pytest.mark.parametrize(
    ("message", "code", "text"),
    [
        ({"type": "code-update"}, "bad_message", "update: Field required"),
        ({"type": "code-update", "update": "not base64!"}, "bad_message", "update: String"),
        ({"type": "code-update", "update": "A" * 40_000}, "bad_message", "update: String"),
        ({"type": "code-sync", "state": 7}, "bad_message", "state: Input should be a valid"),
        (
            {"type": "code-run", "position": 1, "language": "ruby", "status": "passed"},
            "bad_message",
            "language: Input should be",
        ),
        (
            {"type": "code-run", "position": -1, "language": "python", "status": "passed"},
            "bad_message",
            "position: Input should be greater",
        ),
        (
            {"type": "code-tests", "position": 0, "status": "passed", "passed": 1, "total": 1},
            "bad_message",
            "position: Input should be greater",
        ),
        (
            {"type": "code-tests", "position": 1, "status": "ran", "passed": 1, "total": 1},
            "bad_message",
            "status: Input should be",
        ),
        ({"type": "code-cursor", "awareness": "AAAA", "extra": 1}, "bad_message", "extra"),
    ],
)
def test_bad_code_messages_get_clear_errors(message: dict[str, Any], code: str, text: str) -> None:
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse(json.dumps(message))
    assert caught.value.code == code
    assert text in caught.value.message, caught.value.message


async def _call(recruiter: TestClient, candidate: TestClient, mailbox: Mailbox) -> tuple[Any, ...]:
    await register(recruiter, mailbox, "pair@example.com")
    interview_id, link = await create_interview_now(recruiter)
    assert (await join_consents(candidate, link, ["recording", "ai_analysis"]))[0] == 200
    r_ws = await recruiter.ws_connect("/ws")
    await r_ws.send_json({"type": "join", "role": "recruiter", "interview": interview_id})
    await next_of(r_ws, "joined")
    c_ws = await candidate.ws_connect("/ws")
    await c_ws.send_json({"type": "join", "role": "candidate", "token": link.rsplit("/", 1)[1]})
    await next_of(c_ws, "joined")
    return interview_id, link, r_ws, c_ws


async def test_edits_and_runs_travel_between_the_pages(
    client: TestClient, make_client: Any, mailbox: Mailbox, settings: Any
) -> None:
    candidate = await make_client()
    interview_id, _, r_ws, c_ws = await _call(client, candidate, mailbox)
    await c_ws.send_json({"type": "code-sync", "state": ""})
    synced = await next_of(c_ws, "code-sync")
    base = base64.b64decode(synced["update"])
    update = b64(edit(base, MERGE_POSITION, 0, "# hi\n"))
    await c_ws.send_json({"type": "code-update", "update": update})
    assert (await next_of(r_ws, "code-update"))["update"] == update

    await c_ws.send_json({"type": "code-update", "update": b64(b"\x05garbage")})
    error = await next_of(c_ws, "error")
    assert error == {
        "type": "error",
        "code": "bad_update",
        "message": "The code update is not a Yjs update.",
    }

    run = {
        "type": "code-run",
        "position": MERGE_POSITION,
        "language": "python",
        "status": "failed",
        "output": "merged 1",
        "tests": [{"passed": True, "got": "[[1, 6]]"}, {"passed": False, "error": "boom"}],
        "ms": 12,
    }
    await c_ws.send_json(run)
    relayed = await next_of(r_ws, "code-run")
    assert relayed["output"] == "merged 1" and relayed["tests"][1]["error"] == "boom"
    # Each side may only send its own kind of result.
    await r_ws.send_json(run)
    assert (await next_of(r_ws, "error"))["code"] == "not_allowed"
    verdict = {"type": "code-tests", "position": MERGE_POSITION, "status": "passed"}
    await c_ws.send_json({**verdict, "passed": 3, "total": 3})
    assert (await next_of(c_ws, "error"))["code"] == "not_allowed"
    await r_ws.send_json({**verdict, "passed": 3, "total": 3})
    assert (await next_of(r_ws, "code-tests"))["passed"] == 3
    # The hidden tests' result (their inputs among the failing cases) never reaches the candidate.
    await c_ws.send_json({"type": "ping"})
    while (message := json.loads((await c_ws.receive(timeout=5)).data))["type"] != "pong":
        assert message["type"] != "code-tests"

    result = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    code = next(q for q in result["questions"] if q["position"] == MERGE_POSITION)["code"]
    assert code["final"].startswith("# hi\ndef merge_intervals")
    assert code["hidden"]["passed"] == 3 and code["hidden"]["code"] == code["final"]
    assert code["visible"]["status"] == "failed"
    replay = await (await client.get(f"/api/interviews/{interview_id}/code-replay")).json()
    assert [e["role"] for e in replay["edits"]] == ["candidate"]
    assert str(MERGE_POSITION) in replay["seeds"]
    token = await csrf_of(client, f"/interviews/{interview_id}/results")
    assert token  # the page renders with the code section
    page = await (await client.get(f"/interviews/{interview_id}/results")).text()
    assert "Hidden tests: 3/3 passed" in page and "# hi" in page
    pdf = await client.get(f"/interviews/{interview_id}/report.pdf")
    assert pdf.status == 200 and (await pdf.read()).startswith(b"%PDF-")
    # What an LLM judge reads beside the spoken answer: the code and both results.
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as session:
        judged = await judged_code(session, interview_id, MERGE_POSITION)
        assert await judged_code(session, interview_id, 1) == ""  # a spoken question
    await engine.dispose()
    assert "# hi\ndef merge_intervals" in judged
    assert "visible tests: failed, 1/2 passed" in judged
    assert "hidden tests: passed, 3/3 passed" in judged


async def test_the_code_is_final_once_the_interview_ended(
    client: TestClient, make_client: Any, mailbox: Mailbox
) -> None:
    candidate = await make_client()
    interview_id, _, r_ws, c_ws = await _call(client, candidate, mailbox)
    await c_ws.send_json({"type": "code-sync", "state": ""})
    base = base64.b64decode((await next_of(c_ws, "code-sync"))["update"])
    csrf = await csrf_of(client, f"/interviews/{interview_id}")
    assert (
        await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": csrf})
    ).status == 200
    ended = await client.post(f"/interviews/{interview_id}/end", headers={"X-CSRF-Token": csrf})
    assert ended.status == 200
    while (await next_of(c_ws, "event"))["data"].get("state") != "completed":
        pass
    late = b64(edit(base, MERGE_POSITION, 0, "# after the end\n"))
    await c_ws.send_json({"type": "code-update", "update": late})
    assert await next_of(c_ws, "error") == {
        "type": "error",
        "code": "ended",
        "message": "The interview has ended: the code is final.",
    }
    result = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    code = next(q for q in result["questions"] if q["position"] == MERGE_POSITION)["code"]
    assert "# after the end" not in code["final"]


async def test_an_edit_crosses_nodes_and_a_new_page_there_gets_it(
    make_client: Any, settings: Any, mailbox: Mailbox, redis_url: str
) -> None:
    node_a = await make_client(with_redis(settings))
    node_b = await make_client(with_redis(settings))  # the candidate's node
    _, _, r_ws, c_ws = await _call(node_a, node_b, mailbox)
    await c_ws.send_json({"type": "code-sync", "state": ""})
    await next_of(c_ws, "code-sync")  # node B has the document open
    await r_ws.send_json({"type": "code-sync", "state": ""})
    base = base64.b64decode((await next_of(r_ws, "code-sync"))["update"])
    update = b64(edit(base, MERGE_POSITION, 0, "# from A\n", client_id=77))
    await r_ws.send_json({"type": "code-update", "update": update})
    assert (await next_of(c_ws, "code-update"))["update"] == update
    # Node B's open document took it too: a page syncing there now gets the edit.
    await c_ws.send_json({"type": "code-sync", "state": b64(Doc().get_state())})
    synced = base64.b64decode((await next_of(c_ws, "code-sync"))["update"])
    assert text_at([synced], MERGE_POSITION).startswith("# from A\ndef merge_intervals")


async def test_the_sandbox_workers_get_their_own_policy(client: TestClient) -> None:
    js = await client.get("/static/js/sandbox-js.js")
    assert js.status == 200
    assert (
        js.headers["Content-Security-Policy"]
        == "default-src 'none'; script-src 'self' 'unsafe-eval'"
    )
    python = await client.get("/static/js/sandbox-python.js")
    assert "'wasm-unsafe-eval'" in python.headers["Content-Security-Policy"]
    wasm = await client.get("/static/vendor/pyodide/pyodide.asm.wasm")
    assert wasm.status == 200 and wasm.content_type == "application/wasm"
    page = await client.get("/static/js/code.js")
    assert "'unsafe-eval'" not in page.headers["Content-Security-Policy"]


# The scratch pad


async def test_the_scratch_pad_opens_on_both_pages_and_keeps_its_code(
    client: TestClient, make_client: Any, mailbox: Mailbox
) -> None:
    candidate = await make_client()
    interview_id, link, r_ws, c_ws = await _call(client, candidate, mailbox)
    csrf = await csrf_of(client, f"/interviews/{interview_id}")
    url = f"/api/interviews/{interview_id}/scratch"
    headers = {"X-CSRF-Token": csrf}
    early = await client.post(url, json={"language": "python"}, headers=headers)
    assert early.status == 422
    assert (await early.json())["error"] == "Cannot use the scratch pad in the waiting stage."
    assert (
        await client.post(f"/interviews/{interview_id}/start", data={"csrf_token": csrf})
    ).status == 200
    for body, text in [
        ({"language": "ruby"}, "The scratch pad runs Python or JavaScript."),
        ({"language": 5}, "The scratch pad runs Python or JavaScript."),
        ({}, "Say the language, or null to close the pad."),
    ]:
        refused = await client.post(url, json=body, headers=headers)
        assert refused.status == 422 and (await refused.json())["error"] == text
    assert (await client.post(url, json={"language": "python"})).status == 403  # no CSRF token
    stranger = await make_client()
    await register(stranger, mailbox, "stranger@example.com")
    token = await csrf_of(stranger, "/interviews")
    foreign = await stranger.post(url, json={"language": "python"}, headers={"X-CSRF-Token": token})
    assert foreign.status == 404

    opened = await client.post(url, json={"language": "javascript"}, headers=headers)
    assert opened.status == 200 and (await opened.json())["scratch"] == "javascript"
    while (event := await next_of(c_ws, "event"))["data"].get("scratch") is None:
        pass
    assert event["name"] == "stage" and event["data"]["scratch"] == "javascript"
    stage = await (await candidate.get(f"{link}/stage")).json()
    assert stage["scratch"] == "javascript"  # a reloaded page opens it again

    await c_ws.send_json({"type": "code-sync", "state": ""})
    base = base64.b64decode((await next_of(c_ws, "code-sync"))["update"])
    update = b64(edit(base, 0, 0, 'console.log("hi")'))
    await c_ws.send_json({"type": "code-update", "update": update})
    assert (await next_of(r_ws, "code-update"))["update"] == update
    run = {"type": "code-run", "position": 0, "language": "javascript", "status": "ran"}
    await c_ws.send_json({**run, "output": "hi\n", "ms": 3})
    assert (await next_of(r_ws, "code-run"))["output"] == "hi\n"

    closed = await client.post(url, json={"language": None}, headers=headers)
    assert closed.status == 200 and (await closed.json())["scratch"] is None
    while (event := await next_of(c_ws, "event"))["name"] != "stage":
        pass
    assert event["data"]["scratch"] is None
    result = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    assert result["scratch"]["language"] == "javascript"
    assert result["scratch"]["final"] == 'console.log("hi")'
    assert result["scratch"]["visible"]["status"] == "ran"
    assert all(q["code"] is None or "hi" not in q["code"]["final"] for q in result["questions"])
    page = await (await client.get(f"/interviews/{interview_id}/results")).text()
    assert "Scratch pad (javascript)" in page and "console.log(&#34;hi&#34;)" in page
    pdf = await client.get(f"/interviews/{interview_id}/report.pdf")
    assert pdf.status == 200


async def test_an_interview_without_a_scratch_pad_has_none_in_its_results(
    client: TestClient, mailbox: Mailbox
) -> None:
    await register(client, mailbox, "noscratch@example.com")
    interview_id, _ = await create_interview_now(client)
    result = await (await client.get(f"/api/interviews/{interview_id}/result")).json()
    assert result["scratch"] is None
    page = await (await client.get(f"/interviews/{interview_id}/results")).text()
    assert "scratch-result" not in page


async def test_hidden_tests_run_after_moving_on_score_the_answer_again(
    aiohttp_server: Any, make_client: Any, settings: Any, mailbox: Mailbox
) -> None:
    """The judge read the code before its hidden tests ran; once they have, it reads them."""
    reply = {"score": 7, "rationale": "Merges correctly.", "covered": [], "missing": []}
    chat, seen = chat_server(lambda body: (200, json.dumps(reply)))
    judge = await aiohttp_server(chat)
    node = replace(settings, scorer="llm", openai_base_url=str(judge.make_url("/v1")))
    recruiter, candidate = await make_client(node), await make_client(node)
    interview_id, _, r_ws, c_ws = await _call(recruiter, candidate, mailbox)
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine).begin() as session:
        await save_answer(
            session, interview_id, MERGE_POSITION, "I sort and merge.", [], None, None, "test"
        )
    await engine.dispose()
    tests = {"type": "code-tests", "position": MERGE_POSITION, "status": "failed"}
    failing = [{"args": "[[[1, 3], [2, 4]]]", "expected": "[[1, 4]]", "got": "[[1, 3]]"}]
    await r_ws.send_json({**tests, "passed": 2, "total": 3, "failing": failing})
    while (event := await next_of(r_ws, "event"))["name"] != "score":
        pass
    assert event["data"]["position"] == MERGE_POSITION and event["data"]["score"] == 7
    code = json.loads(seen[-1]["messages"][1]["content"])["candidate_code"]
    assert "hidden tests: failed, 2/3 passed" in code and "[[1, 3]]" in code
    result = await (await recruiter.get(f"/api/interviews/{interview_id}/result")).json()
    question = next(q for q in result["questions"] if q["position"] == MERGE_POSITION)
    assert question["score"]["ai"] == 7 and question["score"]["scorer"] == "llm:gpt-4o-mini"
