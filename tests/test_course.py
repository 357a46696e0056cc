"""The course (docs/course/) cites minigrad's source as ``path:start-end`` followed by the name
found there, e.g. `` `kernels/bptt.py:67-87` (`lstm_backward`) ``. Code changes move lines; these
tests fail when a cited range no longer holds its name, so a lesson never sends a student to the
wrong lines.

The rule, for a name that is a function or class (``Name`` or ``Class.method``) of a ``.py``
file: its ``def``/``class`` line lies in the cited range. Any other name (a C function in a
``.cu`` file, say) must appear in the cited lines.

``python tests/test_course.py --fix`` moves every range of a Python definition to where the
definition is now, exactly (from its decorators; a range under half the definition's length
cites its first lines and keeps its length, any other becomes the whole definition), and prints
what it changed: run it after editing cited code, before the test fails.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COURSE = ROOT / "docs" / "course"
# `path:start-end` (`name`)  -- the name right after the range, in backticks and parentheses
CITATION = re.compile(
    r"`(?P<path>[\w./-]+\.\w+):(?P<start>\d+)-(?P<end>\d+)`\s*\(`(?P<name>[^`]+)`")
RANGE = re.compile(r"`[\w./-]+\.(?:py|cu|cuh|md):\d+(?:-\d+)?`")
LESSONS = sorted(p.name for p in COURSE.glob("[0-9][0-9]-*.md"))


def citations(text: str):
    """Every ``(path, start, end, name, match)`` cited in a lesson's Markdown text."""
    return [(m["path"], int(m["start"]), int(m["end"]), m["name"], m)
            for m in CITATION.finditer(text)]


def definition_span(path: Path, name: str):
    """``(first line incl. decorators, the def/class line, last line)`` of the function or
    class ``name`` (``Class.method`` for a method) in the Python file ``path``, or None."""
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name):
        return None
    body = ast.parse(path.read_text(encoding="utf-8")).body
    node = None
    for part in name.split("."):
        node = next((n for n in body if isinstance(
            n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return (min([node.lineno] + [d.lineno for d in node.decorator_list]), node.lineno,
            node.end_lineno)


def problem(path: str, start: int, end: int, name: str):
    """What is wrong with one citation, in words, or None."""
    file = ROOT / path
    if not file.is_file():
        return f"{path} does not exist"
    lines = file.read_text(encoding="utf-8").splitlines()
    if not 1 <= start <= end <= len(lines):
        return f"{path}:{start}-{end} is not a range of its {len(lines)} lines"
    span = definition_span(file, name) if file.suffix == ".py" else None
    if span is not None:
        first, line, last = span
        if not start <= line <= end:
            return (f"{path}:{start}-{end} does not hold `{name}` any more: it is at "
                    f"{first}-{last}; run `python tests/test_course.py --fix`")
        return None
    if file.suffix == ".py" and re.fullmatch(r"[\w.]+", name):
        return f"{path} defines no function or class `{name}`"
    if name not in "\n".join(lines[start - 1:end]):
        return f"{path}:{start}-{end} does not contain `{name}`"
    return None


def test_there_are_thirteen_lessons_and_an_index():
    assert (COURSE / "index.md").is_file()
    assert len(LESSONS) == 13, LESSONS
    index = (COURSE / "index.md").read_text(encoding="utf-8")
    for lesson in LESSONS:
        assert f"({lesson})" in index, f"index.md does not link {lesson}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_cited_range_holds_its_name(lesson):
    text = (COURSE / lesson).read_text(encoding="utf-8")
    found = citations(text)
    assert found, f"{lesson} cites no source lines"
    bad = [f"{lesson}: {p}" for path, start, end, name, _ in found
           if (p := problem(path, start, end, name))]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_range_names_what_it_cites(lesson):
    """A bare `path:start-end` without the name beside it could drift unnoticed."""
    text = (COURSE / lesson).read_text(encoding="utf-8")
    cited = {m.start() for *_, m in citations(text)}
    bare = [m.group() for m in RANGE.finditer(text) if m.start() not in cited]
    assert not bare, f"{lesson}: ranges without a (`name`) after them: {bare}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_every_lesson_has_the_four_parts(lesson):
    text = (COURSE / lesson).read_text(encoding="utf-8")
    for heading in ("## What to read", "## The maths", "## Example", "## Exercises"):
        assert heading in text, f"{lesson} has no '{heading}' section"


def test_the_checker_catches_a_moved_definition():
    first, line, last = definition_span(ROOT / "kernels/bptt.py", "lstm_backward")
    assert problem("kernels/bptt.py", first, last, "lstm_backward") is None
    assert "does not hold" in problem("kernels/bptt.py", line + 1, last, "lstm_backward")
    assert "does not hold" in problem("kernels/bptt.py", first - 9, line - 1, "lstm_backward")
    assert "defines no" in problem("kernels/bptt.py", first, last, "lstm_backwards")
    assert "does not exist" in problem("kernels/nope.py", 1, 2, "x")


def fix() -> int:
    """Move every Python definition's range to where the definition is now; print changes."""
    changed = 0
    for lesson in LESSONS:
        path = COURSE / lesson
        text = path.read_text(encoding="utf-8")

        def move(m, lesson=lesson):
            nonlocal changed
            file, start, end, name = ROOT / m["path"], int(m["start"]), int(m["end"]), m["name"]
            span = definition_span(file, name) if file.suffix == ".py" and file.is_file() else None
            if span is None:
                return m.group()
            first, _, last = span
            # a range under half the definition cites its first lines: keep its length
            partial = 2 * (end - start + 1) < last - first + 1
            new_end = min(last, first + (end - start)) if partial else last
            if (start, end) == (first, new_end):
                return m.group()
            changed += 1
            print(f"{lesson}: {m['path']}:{start}-{end} -> {first}-{new_end} ({name})")
            return m.group().replace(f":{start}-{end}`", f":{first}-{new_end}`", 1)

        new = CITATION.sub(move, text)
        if new != text:
            path.write_text(new, encoding="utf-8")
    print(f"{changed} citation(s) moved")
    return 0


if __name__ == "__main__":
    sys.exit(fix() if "--fix" in sys.argv[1:] else pytest.main([__file__, "-q"]))
