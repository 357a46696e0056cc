"""Graph export for teaching: the graph behind a tensor as Graphviz DOT text.

``mg.viz.to_dot(loss)`` returns text that ``dot -Tpng`` renders (no graphviz package is needed
to produce it). Ops are boxes labelled with their name; tensors are ellipses with shape and
dtype; leaves that require grad (parameters) are filled.

Example:
    >>> import minigrad as mg
    >>> x = mg.ones(2, 3, requires_grad=True)
    >>> print(mg.viz.to_dot((x * 2).sum()).splitlines()[0])
    digraph minigrad {
"""

from __future__ import annotations

from minigrad.tensor import Tensor


def _tensor_label(t: Tensor, name=None) -> str:
    shape = "x".join(str(s) for s in t.shape) or "scalar"
    head = f"{name}\\n" if name else ""
    return f"{head}{shape} {t.dtype}"


def to_dot(root: Tensor, params: dict = None) -> str:
    """The graph that produced ``root`` as DOT text.

    Args:
        root: the output tensor (e.g. a loss).
        params: optional ``{name: tensor}`` (e.g. ``dict(model.named_parameters())``) to label
            leaves by name.
    """
    names = {id(t): n for n, t in (params or {}).items()}
    lines = [
        "digraph minigrad {",
        '  rankdir=BT; node [fontname="Helvetica", fontsize=10];',
    ]
    seen = set()
    fn_ids = {}

    def tensor_node(t: Tensor) -> str:
        tid = f"t{id(t)}"
        if tid not in seen:
            seen.add(tid)
            style = ', style=filled, fillcolor="lightblue"' if t.is_leaf and t.requires_grad else ""
            lines.append(f'  {tid} [label="{_tensor_label(t, names.get(id(t)))}", '
                         f"shape=ellipse{style}];")
        return tid

    root_id = tensor_node(root)
    if root.grad_fn is None:
        lines.append("}")
        return "\n".join(lines) + "\n"
    stack = [(root.grad_fn, root_id)]
    while stack:
        fn, out_id = stack.pop()
        key = id(fn)
        first = key not in fn_ids
        if first:
            fn_ids[key] = f"f{key}"
            freed = " (freed)" if fn.inputs is None else ""
            lines.append(f'  {fn_ids[key]} [label="{fn.name}{freed}", shape=box, '
                         'style=filled, fillcolor="lightyellow"];')
        lines.append(f"  {fn_ids[key]} -> {out_id};")
        if not first or fn.inputs is None:
            continue
        for t in fn.inputs:
            if t.grad_fn is not None:
                # an intermediate tensor: draw it, then the op that made it
                tid = tensor_node(t)
                lines.append(f"  {tid} -> {fn_ids[key]};")
                stack.append((t.grad_fn, tid))
            else:
                tid = tensor_node(t)
                lines.append(f"  {tid} -> {fn_ids[key]};")
    lines.append("}")
    return "\n".join(lines) + "\n"
