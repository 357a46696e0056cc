"""Griffe extension: reads minigrad's ``Example:`` docstring sections as ``Examples:``.

minigrad's docstrings head their doctests ``Example:`` (Napoleon's spelling); griffe's Google
parser knows only ``Examples:`` and would render the doctest as prose, where an output line
such as ``[(2, 2), (1, 2)]`` followed by ``[1]`` reads as a Markdown reference link. Renaming the
section when the docstring is loaded renders every doctest as highlighted code, with no edit to
the docstrings themselves.
"""

import re

import griffe

EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    """Rename each ``Example:`` section header to ``Examples:`` as objects are loaded."""

    def on_instance(self, *, node, obj, agent, **kwargs):
        """Griffe calls this for every object it creates."""
        if obj.docstring is not None:
            obj.docstring.value = EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
