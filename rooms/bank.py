"""The question bank: readable YAML files, validated with line numbers, loaded into the database."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rooms.code_tasks import CheckSkipped, CodeTask, run_reference, task_problems
from rooms.models import Question, Specialization, Topic

BUNDLED_DIR = Path(__file__).parent / "bank"
DIFFICULTIES = ("easy", "medium", "hard")
LANGUAGES = ("en", "ru")
KINDS = ("talk", "code")
MIN_TOPICS = 8
MIN_QUESTIONS = 12
KEY_POINTS_RANGE = (3, 6)
MAX_MISCONCEPTIONS = 5


@dataclass(frozen=True)
class BankProblem:
    """One thing wrong in a bank file, pointing at the line and field."""

    path: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.field}: {self.message}"


class BankInvalid(Exception):
    """A bank file (or set of files) has problems; `problems` lists each one."""

    def __init__(self, problems: list[BankProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass(frozen=True)
class BankTopic:
    slug: str
    title: str
    prompt: str


@dataclass(frozen=True)
class BankQuestion:
    slug: str
    difficulty: str
    text: str
    alternative: str
    expected_answer: str
    key_points: tuple[str, ...]
    misconceptions: tuple[str, ...] = ()
    """Common wrong beliefs; an answer asserting one is marked and scored down."""
    code: CodeTask | None = None
    """For a `kind: code` question: the function to write, its starter, solution and tests."""

    @property
    def kind(self) -> str:
        return "code" if self.code else "talk"


@dataclass(frozen=True)
class Bank:
    """One specialization's topics and questions, in the file's order."""

    id: str
    name: str
    description: str
    topics: tuple[BankTopic, ...]
    questions: tuple[BankQuestion, ...]
    source: str = ""
    language: str = "en"
    """The language of its texts (and of an interview that uses it)."""


class _Lines(dict[str, Any]):
    """A mapping that remembers the line of each key (1-based) and of itself."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:  # type: ignore[override]
        mapping = _Lines(super().construct_mapping(node, deep=True))
        mapping.line = node.start_mark.line + 1
        mapping.key_lines = {
            str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
        }
        return mapping


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _LineLoader.construct_mapping
)


@dataclass
class _Checker:
    path: str
    problems: list[BankProblem] = field(default_factory=list)

    def fail(self, line: int, name: str, message: str) -> None:
        self.problems.append(BankProblem(self.path, line, name, message))

    def text(self, mapping: _Lines, key: str, where: str, required: bool = True) -> str:
        value = mapping.get(key)
        line = mapping.key_lines.get(key, mapping.line)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail(line, f"{where}{key}", "is missing or empty")
            return ""
        if not isinstance(value, str | int | float):
            self.fail(line, f"{where}{key}", "must be text")
            return ""
        return " ".join(str(value).split())

    def items(self, mapping: _Lines, key: str) -> list[Any]:
        value = mapping.get(key)
        if not isinstance(value, list):
            self.fail(mapping.key_lines.get(key, mapping.line), key, "must be a list")
            return []
        return value


def parse_bank(text: str, path: str = "<bank>") -> Bank:
    """Parse and validate one bank file; BankInvalid lists every problem found."""
    checker = _Checker(path)
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise BankInvalid([BankProblem(path, line, "yaml", str(exc).splitlines()[0])]) from exc
    if not isinstance(data, _Lines):
        raise BankInvalid([BankProblem(path, 1, "file", "must be a mapping with id, name, ...")])
    bank_id = checker.text(data, "id", "")
    name = checker.text(data, "name", "")
    description = checker.text(data, "description", "", required=False)
    language = checker.text(data, "language", "", required=False) or "en"
    if language not in LANGUAGES:
        checker.fail(
            data.key_lines.get("language", 1), "language", f"must be one of {', '.join(LANGUAGES)}"
        )

    topics: list[BankTopic] = []
    seen_topics: set[str] = set()
    for index, item in enumerate(checker.items(data, "topics")):
        where = f"topics[{index}]."
        if not isinstance(item, _Lines):
            checker.fail(data.key_lines.get("topics", 1), where.rstrip("."), "must be a mapping")
            continue
        slug = checker.text(item, "id", where)
        if slug in seen_topics:
            checker.fail(
                item.key_lines.get("id", item.line), f"{where}id", f"duplicate id {slug!r}"
            )
        seen_topics.add(slug)
        topics.append(
            BankTopic(
                slug, checker.text(item, "title", where), checker.text(item, "prompt", where, False)
            )
        )
    if len(topics) < MIN_TOPICS:
        checker.fail(data.key_lines.get("topics", 1), "topics", f"needs at least {MIN_TOPICS}")

    questions: list[BankQuestion] = []
    seen_questions: set[str] = set()
    for index, item in enumerate(checker.items(data, "questions")):
        where = f"questions[{index}]."
        if not isinstance(item, _Lines):
            checker.fail(data.key_lines.get("questions", 1), where.rstrip("."), "must be a mapping")
            continue
        slug = checker.text(item, "id", where)
        if slug in seen_questions:
            checker.fail(
                item.key_lines.get("id", item.line), f"{where}id", f"duplicate id {slug!r}"
            )
        seen_questions.add(slug)
        difficulty = checker.text(item, "difficulty", where)
        if difficulty and difficulty not in DIFFICULTIES:
            checker.fail(
                item.key_lines.get("difficulty", item.line),
                f"{where}difficulty",
                f"must be one of {', '.join(DIFFICULTIES)}",
            )
        raw_points = item.get("key_points")
        points_line = item.key_lines.get("key_points", item.line)
        points: list[str] = []
        if not isinstance(raw_points, list):
            checker.fail(points_line, f"{where}key_points", "must be a list")
        else:
            points = [" ".join(str(p).split()) for p in raw_points if str(p or "").strip()]
            low, high = KEY_POINTS_RANGE
            if not low <= len(points) <= high:
                checker.fail(points_line, f"{where}key_points", f"needs {low} to {high} points")
        raw_wrong = item.get("misconceptions", [])
        wrong: list[str] = []
        if not isinstance(raw_wrong, list):
            checker.fail(
                item.key_lines.get("misconceptions", item.line),
                f"{where}misconceptions",
                "must be a list",
            )
        else:
            wrong = [" ".join(str(m).split()) for m in raw_wrong if str(m or "").strip()]
            if len(wrong) > MAX_MISCONCEPTIONS:
                checker.fail(
                    item.key_lines.get("misconceptions", item.line),
                    f"{where}misconceptions",
                    f"at most {MAX_MISCONCEPTIONS}",
                )
        kind = checker.text(item, "kind", where, required=False) or "talk"
        code: CodeTask | None = None
        if kind not in KINDS:
            checker.fail(
                item.key_lines.get("kind", item.line), f"{where}kind", "must be talk or code"
            )
        elif kind == "code" or "code" in item:
            code_line = item.key_lines.get("code", item.line)
            if kind != "code":
                checker.fail(code_line, f"{where}code", "only a `kind: code` question has code")
            found = task_problems(item.get("code"))
            for name, message in found:
                checker.fail(code_line, f"{where}{name}", message)
            if not found:
                # Plain JSON values: the loader's mappings remember their lines.
                code = CodeTask.from_dict(json.loads(json.dumps(item["code"])))
        questions.append(
            BankQuestion(
                slug=slug,
                difficulty=difficulty,
                text=checker.text(item, "text", where),
                alternative=checker.text(item, "alternative", where),
                expected_answer=checker.text(item, "expected_answer", where),
                key_points=tuple(points),
                misconceptions=tuple(wrong),
                code=code,
            )
        )
    if len(questions) < MIN_QUESTIONS:
        checker.fail(
            data.key_lines.get("questions", 1), "questions", f"needs at least {MIN_QUESTIONS}"
        )
    if checker.problems:
        raise BankInvalid(checker.problems)
    return Bank(bank_id, name, description, tuple(topics), tuple(questions), path, language)


def load_banks(paths: list[Path]) -> list[Bank]:
    """Parse several files, also checking that ids are unique across them."""
    problems: list[BankProblem] = []
    banks: list[Bank] = []
    for path in paths:
        try:
            banks.append(parse_bank(path.read_text(encoding="utf-8"), str(path)))
        except BankInvalid as exc:
            problems.extend(exc.problems)
    seen_banks: dict[str, str] = {}
    seen_questions: dict[str, str] = {}
    for bank in banks:
        if bank.id in seen_banks:
            problems.append(
                BankProblem(
                    bank.source, 1, "id", f"{bank.id!r} is also used by {seen_banks[bank.id]}"
                )
            )
        seen_banks[bank.id] = bank.source
        for question in bank.questions:
            if question.slug in seen_questions and seen_questions[question.slug] != bank.source:
                problems.append(
                    BankProblem(
                        bank.source,
                        1,
                        "questions.id",
                        f"{question.slug!r} is also used by {seen_questions[question.slug]}",
                    )
                )
            seen_questions[question.slug] = bank.source
    if problems:
        raise BankInvalid(problems)
    return banks


def bundled_banks() -> list[Bank]:
    """The banks the service loads, in file-name order (English)."""
    return load_banks(sorted(BUNDLED_DIR.glob("*.yaml")))


def bundled_banks_in(language: str) -> list[Bank]:
    """The shipped banks written in another language (`bank/<language>/`), validated like the
    English ones; the service offers them once the interview language is chosen at setup."""
    return load_banks(sorted((BUNDLED_DIR / language).glob("*.yaml")))


def all_bundled_banks() -> list[Bank]:
    """Every shipped bank: the English ones, then each other language's (`bank/<language>/`)."""
    languages = sorted(p.name for p in BUNDLED_DIR.iterdir() if p.is_dir())
    return bundled_banks() + [b for language in languages for b in bundled_banks_in(language)]


def dump_bank(bank: Bank) -> str:
    """The bank as YAML in the same shape the loader reads."""
    data = {
        "id": bank.id,
        "name": bank.name,
        "description": bank.description,
        **({"language": bank.language} if bank.language != "en" else {}),
        "topics": [{"id": t.slug, "title": t.title, "prompt": t.prompt} for t in bank.topics],
        "questions": [
            {
                "id": q.slug,
                "difficulty": q.difficulty,
                "text": q.text,
                "alternative": q.alternative,
                "expected_answer": q.expected_answer,
                "key_points": list(q.key_points),
                "misconceptions": list(q.misconceptions),
                **({"kind": "code", "code": q.code.as_dict()} if q.code else {}),
            }
            for q in bank.questions
        ],
    }
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


async def import_banks(session: AsyncSession, banks: list[Bank]) -> None:
    """Insert or update specializations, topics and questions; order follows the files.

    Nothing is deleted: past interviews keep pointing at the questions they used.
    """
    for position, bank in enumerate(banks):
        spec = await session.get(Specialization, bank.id)
        if spec is None:
            spec = Specialization(id=bank.id)
            session.add(spec)
        spec.name, spec.description, spec.position = bank.name, bank.description, position
        existing_topics = {
            t.slug: t
            for t in await session.scalars(select(Topic).where(Topic.specialization_id == bank.id))
        }
        for index, topic in enumerate(bank.topics):
            topic_row = existing_topics.get(topic.slug) or Topic(
                specialization_id=bank.id, slug=topic.slug
            )
            topic_row.title, topic_row.prompt = topic.title, topic.prompt
            topic_row.position = index
            session.add(topic_row)
        slugs = [q.slug for q in bank.questions]
        existing_questions = {
            q.slug: q
            for q in await session.scalars(select(Question).where(Question.slug.in_(slugs)))
        }
        for index, question in enumerate(bank.questions):
            row = existing_questions.get(question.slug) or Question(slug=question.slug)
            row.specialization_id = bank.id
            row.position = index
            row.difficulty = question.difficulty
            row.text = question.text
            row.alternative = question.alternative
            row.expected_answer = question.expected_answer
            row.key_points = list(question.key_points)
            row.misconceptions = list(question.misconceptions)
            row.kind = question.kind
            row.code = question.code.as_dict() if question.code else None
            session.add(row)
    await session.flush()


@dataclass(frozen=True)
class SolutionCheck:
    """What `check_solutions` found: problems, and the coding questions it could not run."""

    problems: list[BankProblem]
    checked: int
    skipped: list[str]
    """`slug (language): why` for each question whose language cannot run here."""


def check_solutions(banks: list[Bank]) -> SolutionCheck:
    """Run every coding question's reference solution against its tests."""
    problems: list[BankProblem] = []
    skipped: list[str] = []
    checked = 0
    for bank in banks:
        for index, question in enumerate(bank.questions):
            if question.code is None:
                continue
            try:
                failures = run_reference(question.code)
            except CheckSkipped as exc:
                skipped.append(f"{question.slug} ({question.code.language}): {exc}")
                continue
            checked += 1
            where = f"questions[{index}].code.solution"
            problems.extend(
                BankProblem(bank.source, 1, where, f"{question.slug}: {failure}")
                for failure in failures
            )
    return SolutionCheck(problems, checked, skipped)
