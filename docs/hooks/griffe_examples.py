"""Griffe extension: minigrad's docstrings as the API pages should render them.

``Example:`` sections are read as ``Examples:``, Sphinx roles become code spans, and the ``::``
that opens a literal block becomes ``:``.

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


def _role_to_code(match):
    name = match.group(2)
    return f"``{name.rsplit('.', 1)[-1] if match.group(1) else name}``"


class ExampleSections(griffe.Extension):
    """Rename ``Example:`` headers to ``Examples:`` and roles to code, as objects are loaded."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        """Griffe calls this for every object it creates."""
        if obj.docstring is not None:
            text = EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = LITERAL.sub(r"\1:", ROLE.sub(_role_to_code, text))
