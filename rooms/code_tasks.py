"""Coding questions: the task a `kind: code` bank question carries, and the check that its
reference solution passes its own tests (Python in a subprocess; JavaScript through Node when
Node is installed). Candidates' code never runs here: it runs in their browser."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

CODE_LANGUAGES = ("python", "javascript")
MAX_CODE_CHARS = 20_000
CHECK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class CodeTest:
    """One call of the task's function: its arguments and the value it must return."""

    args: tuple[Any, ...]
    expected: Any
    hidden: bool = False
    """Hidden tests are never sent to the candidate's page; their result is part of the verdict."""

    def as_dict(self) -> dict[str, Any]:
        return {"args": list(self.args), "expected": self.expected, "hidden": self.hidden}


@dataclass(frozen=True)
class CodeTask:
    """What the candidate writes: `function` in `language`, starting from `starter`."""

    language: str
    function: str
    starter: str
    solution: str
    tests: tuple[CodeTest, ...]

    @property
    def visible(self) -> list[CodeTest]:
        return [t for t in self.tests if not t.hidden]

    @property
    def hidden(self) -> list[CodeTest]:
        return [t for t in self.tests if t.hidden]

    def as_dict(self) -> dict[str, Any]:
        """The form stored in the database and written back to YAML."""
        return {
            "language": self.language,
            "function": self.function,
            "starter": self.starter,
            "solution": self.solution,
            "tests": [t.as_dict() for t in self.tests],
        }

    def for_candidate(self) -> dict[str, Any]:
        """What the candidate's page may hold: no solution, no hidden tests."""
        return {
            "language": self.language,
            "function": self.function,
            "tests": [{"args": list(t.args), "expected": t.expected} for t in self.visible],
        }

    def for_recruiter(self) -> dict[str, Any]:
        return {
            **self.for_candidate(),
            "solution": self.solution,
            "hidden_tests": [{"args": list(t.args), "expected": t.expected} for t in self.hidden],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeTask:
        return cls(
            language=str(data["language"]),
            function=str(data["function"]),
            starter=str(data.get("starter", "")),
            solution=str(data.get("solution", "")),
            tests=tuple(
                CodeTest(tuple(t.get("args", [])), t.get("expected"), bool(t.get("hidden")))
                for t in data.get("tests", [])
            ),
        )


def task_problems(data: Any) -> list[tuple[str, str]]:
    """What is wrong with a question's `code` mapping, as (field, message) pairs."""
    if not isinstance(data, dict):
        return [("code", "must be a mapping with language, function, starter, solution, tests")]
    problems: list[tuple[str, str]] = []
    if data.get("language") not in CODE_LANGUAGES:
        problems.append(("code.language", f"must be one of {', '.join(CODE_LANGUAGES)}"))
    function = data.get("function")
    if not isinstance(function, str) or not function.isidentifier():
        problems.append(("code.function", "must be the name of the function to write"))
    for key in ("starter", "solution"):
        value = data.get(key)
        if not isinstance(value, str) or not value.strip():
            problems.append((f"code.{key}", "is missing or empty"))
        elif len(value) > MAX_CODE_CHARS:
            problems.append((f"code.{key}", f"at most {MAX_CODE_CHARS} characters"))
    tests = data.get("tests")
    if not isinstance(tests, list) or not tests:
        return [*problems, ("code.tests", "must be a list of {args, expected, hidden?}")]
    for index, test in enumerate(tests):
        where = f"code.tests[{index}]"
        if not isinstance(test, dict) or "expected" not in test:
            problems.append((where, "needs args (a list) and expected"))
        elif not isinstance(test.get("args", []), list):
            problems.append((f"{where}.args", "must be a list of arguments"))
        else:
            try:
                json.dumps(test)
            except (TypeError, ValueError):
                problems.append((where, "args and expected must be JSON values"))
    if isinstance(tests, list) and all(isinstance(t, dict) for t in tests):
        if not any(not t.get("hidden") for t in tests):
            problems.append(("code.tests", "needs at least one visible test"))
        if not any(t.get("hidden") for t in tests):
            problems.append(("code.tests", "needs at least one hidden test"))
    return problems


# Reads {"source", "function", "tests"} on stdin; prints one JSON list of {"passed", "got"|"error"}.
_PYTHON_HARNESS = """
import json, sys
job = json.load(sys.stdin)
space = {"__name__": "solution"}
exec(compile(job["source"], "solution.py", "exec"), space)
fn = space[job["function"]]
out = []
for test in job["tests"]:
    try:
        got = json.loads(json.dumps(fn(*test["args"])))
        out.append({"passed": got == test["expected"], "got": got})
    except Exception as exc:
        out.append({"passed": False, "error": f"{type(exc).__name__}: {exc}"})
print(json.dumps(out))
"""

_NODE_HARNESS = """
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const job = JSON.parse(Buffer.concat(chunks).toString());
  const fn = new Function(job.source + "\\nreturn " + job.function + ";")();
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const out = job.tests.map((test) => {
    try {
      const got = JSON.parse(JSON.stringify(fn(...test.args)) ?? "null");
      return { passed: same(got, test.expected), got };
    } catch (e) {
      return { passed: false, error: String(e) };
    }
  });
  console.log(JSON.stringify(out));
});
"""


class CheckSkipped(Exception):
    """The language's runtime is not installed here (Node for JavaScript)."""


def run_reference(task: CodeTask, timeout_s: float = CHECK_TIMEOUT_S) -> list[str]:
    """Run the reference solution against every test; the failures, described (empty: all
    pass). Raises CheckSkipped when the language cannot be run on this machine."""
    if task.language == "python":
        command = [sys.executable, "-I", "-c", _PYTHON_HARNESS]
    else:
        node = shutil.which("node")
        if node is None:
            raise CheckSkipped("node is not installed")
        command = [node, "-e", _NODE_HARNESS]
    job = {
        "source": task.solution,
        "function": task.function,
        "tests": [t.as_dict() for t in task.tests],
    }
    try:
        done = subprocess.run(  # noqa: S603 - our interpreter, the bank's own solution
            command,
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return [f"the reference solution ran longer than {timeout_s:g} s"]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [f"the reference solution failed to run: {last[:300]}"]
    try:
        results = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return ["the reference solution printed something else than the harness' result"]
    failures = []
    for index, (test, result) in enumerate(zip(task.tests, results, strict=False)):
        if not result.get("passed"):
            what = result.get("error") or f"returned {json.dumps(result.get('got'))[:200]}"
            failures.append(
                f"tests[{index}]: {task.function}(*{json.dumps(list(test.args))[:200]}) {what}, "
                f"expected {json.dumps(test.expected)[:200]}"
            )
    return failures
