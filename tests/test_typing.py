"""A type checker sees job fields and queries with their real types (issue #13).

mypy checks tests/typing_snippet.py: every line marked ``# error: CODE`` there must be
an error with that code, and no other line may be one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rjbatch import Job, field
from rjbatch.job.fields import Field
from rjbatch.job.query import Query

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = Path("tests") / "typing_snippet.py"
EXPECTED = re.compile(r"#\s*error:\s*([\w-]+)\s*$")
REPORTED = re.compile(r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*?)\s+\[(?P<code>[\w-]+)\]$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory) -> dict[int, list[tuple[str, str]]]:
    """line -> [(code, message)] of what mypy reports on the snippet."""
    pytest.importorskip("mypy")
    cache = tmp_path_factory.mktemp("mypy_cache")
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file=", "--no-incremental",
         "--follow-imports=silent", f"--cache-dir={cache}", "--show-error-codes",
         "--no-error-summary", "--no-pretty", str(SNIPPET)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr  # 2: mypy itself failed
    errors: dict[int, list[tuple[str, str]]] = {}
    for line in run.stdout.splitlines():
        found = REPORTED.match(line)
        if found:
            assert Path(found["path"]) == SNIPPET, line  # never an error inside rjbatch
            errors.setdefault(int(found["line"]), []).append((found["code"], found["message"]))
        else:
            assert ": note: " in line, line
    return errors


def expected_errors() -> dict[int, str]:
    lines = (ROOT / SNIPPET).read_text().splitlines()
    return {number: m[1] for number, text in enumerate(lines, 1) if (m := EXPECTED.search(text))}


def line_of(text: str) -> int:
    lines = (ROOT / SNIPPET).read_text().splitlines()
    numbers = [number for number, line in enumerate(lines, 1) if text in line]
    assert len(numbers) == 1, (text, numbers)
    return numbers[0]


def test_every_line_type_checks_except_the_marked_ones(mypy_errors):
    unexpected = {
        line: errors for line, errors in mypy_errors.items() if line not in expected_errors()
    }
    assert not unexpected, f"lines of {SNIPPET} that should type-check: {unexpected}"


def test_every_marked_line_is_an_error_with_its_code(mypy_errors):
    expected = expected_errors()
    assert len(expected) >= 10
    missing = {
        line: code for line, code in expected.items()
        if code not in [reported for reported, _ in mypy_errors.get(line, [])]
    }
    assert not missing, f"lines of {SNIPPET} that mypy should refuse: {missing}"


def test_a_field_reads_as_its_kind(mypy_errors):
    assert line_of("count: int = job.user_count") not in mypy_errors
    assert line_of("assert_type(job.user_count, int)") not in mypy_errors
    [(code, message)] = mypy_errors[line_of("wrong: str = job.user_count")]
    assert code == "assignment"
    assert 'expression has type "int", variable has type "str"' in message


def test_a_field_whose_default_is_none_may_be_none(mypy_errors):
    assert line_of("assert_type(job.report_date, dt.date | None)") not in mypy_errors
    [(code, message)] = mypy_errors[line_of("job.report_date.isoformat()")]
    assert code == "union-attr" and "None" in message
    [(code, _)] = mypy_errors[line_of("job.user_count = None")]
    assert code == "call-overload"  # a field with a default is never None to a checker


def test_a_query_gives_the_class_it_was_made_on(mypy_errors):
    assert line_of("first: ReportJob | None = ReportJob.where(user_count=1).first()") not in mypy_errors
    [(code, message)] = mypy_errors[line_of("other: OtherJob | None = ReportJob.where(")]
    assert code == "assignment"
    assert '"ReportJob | None", variable has type "OtherJob | None"' in message


def test_the_generic_types_exist_at_run_time():
    # annotations such as ``Query[ReportJob]`` work without ``from __future__ import annotations``
    assert Field[int] is not None and Query[Job] is not None
    described = field(int, 0)
    assert type(described) is Field and not hasattr(described, "__dict__")  # still slotted
    assert type(Job.where(priority=5)) is Query
