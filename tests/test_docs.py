"""Every ```python block of the documentation site runs, so the docs cannot drift from the code.

Each page under ``docs/`` (the course included) is one test: its blocks run in order in one fresh
namespace, in a temporary working folder, as a reader would paste them. A block that needs
what CI does not have (a GPU, the network, several MPI processes) is marked on the line before
its fence with ``<!-- no-run: gpu -->`` (or ``network``, ``mpi``), and a block that quotes a
part of minigrad's source for reading (``...`` for elided lines) with ``<!-- no-run: excerpt
-->``; each becomes a skipped test that names it. Any other reason is an error, so "it is slow"
cannot hide a broken example.
"""

import json
import re
import textwrap
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
NO_RUN_REASONS = {"gpu": "needs a GPU", "network": "needs the network",
                  "mpi": "needs several MPI processes",
                  "excerpt": "quotes a part of minigrad's source, not a program"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<lang>[\w+-]*)")
NO_RUN = re.compile(r"<!--\s*no-run:\s*(?P<reason>[\w-]+)\s*-->")


class Block:
    """One fenced ```python block: where it is, its code, and why it is not run (or None)."""

    def __init__(self, page, line, code, no_run):
        self.page, self.line, self.code, self.no_run = page, line, code, no_run

    def __repr__(self):
        return f"{self.page}:{self.line}"


def python_blocks(text, page="<text>"):
    """The ```python (or ```py) blocks of a Markdown text, in order.

    Args:
        text: the Markdown source.
        page: the name used in messages.

    Returns:
        A list of :class:`Block`; ``no_run`` is the reason from a ``<!-- no-run: REASON -->``
        comment on the last non-blank line before the fence.

    Raises:
        ValueError: a block that is never closed, or a no-run reason that is not allowed.
    """
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, lang = match["indent"], match["fence"], match["lang"].lower()
        start = i
        i += 1
        body = []
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise ValueError(f"{page}:{start + 1}: a ``` block that is never closed")
        i += 1
        if lang not in ("python", "py"):
            continue
        previous = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        marker = NO_RUN.search(previous)
        reason = marker["reason"] if marker else None
        if reason is not None and reason not in NO_RUN_REASONS:
            raise ValueError(f"{page}:{start + 1}: no-run reason {reason!r} is not one of "
                             f"{sorted(NO_RUN_REASONS)}: a block that can run must run")
        code = textwrap.dedent("\n".join(line[len(indent):] if line.startswith(indent) else line
                                         for line in body))
        blocks.append(Block(page, start + 1, code, reason))
    return blocks


def pages():
    """Every Markdown page under docs/ that holds a python block, relative to docs/."""
    return sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")
                  if python_blocks(p.read_text(encoding="utf-8"), str(p)))


def skipped_blocks():
    """The blocks marked no-run, as (page, block) pairs."""
    return [(page, block) for page in pages()
            for block in python_blocks((DOCS / page).read_text(encoding="utf-8"), page)
            if block.no_run]


@pytest.mark.parametrize("page", pages())
def test_page_code_runs(page, tmp_path, monkeypatch):
    import minigrad as mg

    monkeypatch.chdir(tmp_path)  # a block may save files: never into the checkout
    mg.manual_seed(0)
    namespace = {"__name__": "__docs__"}
    for block in python_blocks((DOCS / page).read_text(encoding="utf-8"), page):
        if block.no_run:
            continue
        try:
            exec(compile(block.code, f"docs/{page}:{block.line}", "exec"), namespace)
        except Exception as exc:
            raise AssertionError(f"the code block at docs/{page}:{block.line} failed: "
                                 f"{type(exc).__name__}: {exc}") from exc


@pytest.mark.parametrize("page,block", skipped_blocks() or [pytest.param(None, None, marks=
                         pytest.mark.skip(reason="no block is marked no-run"))])
def test_block_not_run(page, block):
    pytest.skip(f"docs/{page}:{block.line} not run here: {NO_RUN_REASONS[block.no_run]}")


def test_the_docs_have_code():
    assert len(pages()) >= 8, pages()


def test_parser_reads_blocks_and_markers():
    text = "\n".join([
        "# Page", "```python", "x = 1", "```", "", "<!-- no-run: gpu -->", "",
        "```py title=\"a.py\"", "y = x.cuda()", "```", "```bash", "pip install .", "```",
        "!!! note", "    ```python", "    z = 2", "    ```",
    ])
    blocks = python_blocks(text)
    assert [(b.line, b.code, b.no_run) for b in blocks] == [
        (2, "x = 1", None), (8, "y = x.cuda()", "gpu"), (15, "z = 2", None)]


def test_parser_refuses_a_reason_that_is_not_allowed():
    with pytest.raises(ValueError, match="'slow' is not one of"):
        python_blocks("<!-- no-run: slow -->\n```python\npass\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        python_blocks("```python\npass\n")


def _hook(name):
    """A module of docs/hooks/ (MkDocs loads them by path; they are not a package)."""
    import importlib.util

    path = DOCS / "hooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_charts_are_drawn_from_the_results(tmp_path, monkeypatch):
    hook = _hook("bench_charts")
    results = {"device": "cpu",
               "kernels": [{"kernel": "gelu", "speedup": 6.4}, {"kernel": "broken", "error": "x"}],
               "workloads": {"W1": {"ratio": 0.75, "composite_ratio": 0.84}}}
    (tmp_path / "benchmarks_cpu.json").write_text(json.dumps(results))
    (tmp_path / "benchmarks_cuda.md").write_text("# title\n\n| a |\n|---|\n| 1 |\n")
    monkeypatch.setattr(hook, "RESULTS", tmp_path)
    page = hook.on_page_markdown("<!-- bench-chart: benchmarks_cpu.json -->\n"
                                 "<!-- bench-optional: benchmarks_cuda.md -->\n"
                                 "<!-- bench-optional: missing.md -->", None, None, None)
    assert page.count("<svg") == 2 and ">gelu<" in page and "broken" not in page
    assert "6.40x" in page and "0.75x" in page and "0.84x" in page
    assert "| 1 |" in page and "# title" not in page          # the table without its title
    assert "Not measured yet: `benchmarks/results/missing.md`" in page


def test_griffe_extension_renders_examples_roles_and_literal_blocks():
    pytest.importorskip("griffe", reason="the [docs] extra is not installed")
    hook = _hook("griffe_examples")
    text = "See :class:`~minigrad.nn.Linear` and :func:`mg.save`::\n\n    code\n\nExample:\n"
    text = hook.EXAMPLE.sub(r"\1Examples:", text)
    text = hook.LITERAL.sub(r"\1:", hook.ROLE.sub(hook._role_to_code, text))
    assert text == "See ``Linear`` and ``mg.save``:\n\n    code\n\nExamples:\n"
    assert hook._one_line_summary("A ``code\nspan`` ends.\n\nMore.\nText.") == \
        "A ``code span`` ends.\n\nMore.\nText."
    assert hook._one_line_summary("Items:\n- one\n- two") == "Items:\n- one\n- two"
