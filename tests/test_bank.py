"""The question bank: the shipped files are valid, broken ones are reported by line and field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rooms.bank import BankInvalid, bundled_banks, dump_bank, load_banks, parse_bank

GOOD_QUESTION = """
  - id: q{n}
    difficulty: easy
    text: What is {n}?
    alternative: Say what {n} is.
    expected_answer: It is {n}.
    key_points:
      - one
      - two
      - three
"""


def bank_text(questions: int = 12, topics: int = 8, extra: str = "") -> str:
    lines = ["id: demo", "name: Demo", "description: A demo bank.", "topics:"]
    lines += [
        f"  - id: t{i}\n    title: Topic {i}\n    prompt: Ask about {i}." for i in range(topics)
    ]
    lines.append("questions:")
    text = "\n".join(lines) + "".join(GOOD_QUESTION.format(n=i) for i in range(questions))
    return text + extra


def test_shipped_banks_are_valid_and_big_enough() -> None:
    banks = bundled_banks()
    assert len(banks) >= 6
    for bank in banks:
        assert len(bank.topics) >= 8, bank.id
        assert len(bank.questions) >= 12, bank.id
        for q in bank.questions:
            assert q.expected_answer and q.alternative and 3 <= len(q.key_points) <= 6


def test_a_valid_bank_round_trips_through_export() -> None:
    bank = parse_bank(bank_text(), "demo.yaml")
    again = parse_bank(dump_bank(bank), "demo.yaml")
    assert again == bank
    assert [q.slug for q in bank.questions] == [f"q{i}" for i in range(12)]  # order kept


def test_broken_yaml_names_the_line() -> None:
    with pytest.raises(BankInvalid) as caught:
        parse_bank("id: x\nname: [unclosed\ntopics: []\n", "broken.yaml")
    problem = caught.value.problems[0]
    assert problem.path == "broken.yaml" and problem.field == "yaml" and problem.line >= 2


def test_question_without_expected_answer_is_reported_with_line_and_field() -> None:
    text = bank_text().replace("    expected_answer: It is 3.\n", "")
    with pytest.raises(BankInvalid) as caught:
        parse_bank(text, "demo.yaml")
    [problem] = caught.value.problems
    assert problem.field == "questions[3].expected_answer"
    assert problem.message == "is missing or empty"
    assert text.splitlines()[problem.line - 1].strip() == "- id: q3"


def test_duplicate_question_ids_in_one_file() -> None:
    text = bank_text(extra=GOOD_QUESTION.format(n=5))
    with pytest.raises(BankInvalid) as caught:
        parse_bank(text, "demo.yaml")
    [problem] = caught.value.problems
    assert problem.field == "questions[12].id" and "duplicate id 'q5'" in problem.message
    assert text.splitlines()[problem.line - 1].strip() == "- id: q5"


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    first = tmp_path / "a.yaml"
    second = tmp_path / "b.yaml"
    first.write_text(bank_text())
    second.write_text(bank_text().replace("id: demo", "id: other", 1))
    with pytest.raises(BankInvalid) as caught:
        load_banks([first, second])
    assert any("also used by" in p.message and p.path == str(second) for p in caught.value.problems)


def test_too_few_items_bad_difficulty_and_key_points() -> None:
    text = bank_text(questions=11, topics=7).replace("difficulty: easy", "difficulty: trivial", 1)
    text = text.replace("      - three\n", "", 1)
    with pytest.raises(BankInvalid) as caught:
        parse_bank(text, "demo.yaml")
    fields = {p.field for p in caught.value.problems}
    assert {"topics", "questions", "questions[0].difficulty", "questions[0].key_points"} <= fields


def test_the_russian_banks_validate_with_misconceptions_and_their_language() -> None:
    from rooms.bank import bundled_banks_in

    banks = bundled_banks_in("ru")
    assert {b.id for b in banks} == {"ru-python-backend", "ru-frontend", "ru-data-science"}
    for bank in banks:
        assert bank.language == "ru"
        assert all(2 <= len(q.misconceptions) <= 3 for q in bank.questions)
        assert parse_bank(dump_bank(bank)) == replace(bank, source="<bank>")
    english = {q.slug for b in bundled_banks() for q in b.questions}
    assert not english & {q.slug for b in banks for q in b.questions}


def test_every_shipped_question_lists_its_common_misconceptions() -> None:
    for bank in bundled_banks():
        for question in bank.questions:
            assert 2 <= len(question.misconceptions) <= 5, question.slug
