"""Griffe extension: minigrad's docstrings as the API pages should render them.

``Example:`` sections are read as ``Examples:``, Sphinx roles become code spans, the ``::``
that opens a literal block becomes ``:``, and the first paragraph is joined into one line (the
summary tables show a docstring's first line).

minigrad's docstrings head their doctests ``Example:`` (Napoleon's spelling); griffe's Google
parser knows only ``Examples:`` and would render the doctest as prose, where an output line
such as ``[(2, 2), (1, 2)]`` followed by ``[1]`` reads as a Markdown reference link. Renaming the
section when the docstring is loaded renders every doctest as highlighted code, with no edit to
the docstrings themselves.
"""

import re

import griffe

EXAMPLE = re.compile(r"^([ \t]*)Example:[ \t]*$", re.MULTILINE)
# :class:`Module`, :func:`~minigrad.save`, :meth:`forward`: Sphinx's roles, which a few
# docstrings use; Markdown would print the role. ``~`` drops the module path, as in Sphinx.
ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):`(~?)([^`]+)`")
# "text::" before an indented literal block reads "text:" in Sphinx; the block itself is already
# a Markdown code block (indented four spaces), so only the doubled colon goes
LITERAL = re.compile(r"(\S)::$", re.MULTILINE)


def _one_line_summary(text):
    """The docstring with its first paragraph on one line.

    The summary tables of the API pages show a docstring's first line; a summary wrapped at 100
    columns would be cut mid-sentence (mid code span, even). Joining the lines of the first
    paragraph changes nothing else: Markdown reads a newline inside a paragraph as a space.
    """
    head, sep, rest = text.partition("\n\n")
    lines = head.split("\n")
    if any(line.startswith((" ", "-", "*", ">>>", "|")) for line in lines[1:]):
        return text  # a list, a table or a doctest: not a plain paragraph
    return " ".join(line.strip() for line in lines) + sep + rest


def _role_to_code(match):
    name = match.group(2)
    return f"``{name.rsplit('.', 1)[-1] if match.group(1) else name}``"


class ExampleSections(griffe.Extension):
    """Adjust each docstring as its object is loaded (see the module's docstring)."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        """Griffe calls this for every object it creates."""
        if obj.docstring is not None:
            text = EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
            text = LITERAL.sub(r"\1:", ROLE.sub(_role_to_code, text))
            obj.docstring.value = _one_line_summary(text)
