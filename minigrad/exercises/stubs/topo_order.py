"""Exercise topo_order: the order in which the backward engine visits a graph.

Lesson: docs/course/02-backward-engine.md. minigrad's own answer: ``_topo_order`` in
minigrad/autograd.py.

A node is a ``Function`` object (``y.grad_fn``). Its input Tensors are ``node.inputs``; an
input made by another op has that op as its ``grad_fn`` (None for a leaf such as a parameter).
Return every node reachable from ``root``, each exactly once, each listed *before* every node
that produced one of its inputs: then when the engine reaches a node, all the gradient its
outputs will ever get has arrived.

Do it without recursion: Python stops at about 1,000 nested calls, and an RNN over 10,000 steps
makes a graph far deeper than that. Keep your own stack; a visited set (of ``id(node)``) stops
shared subgraphs from being listed twice.

Check your work with ``minigrad exercises check topo_order``.
"""


def producers(node):
    """The nodes that made ``node``'s inputs (leaves have none)."""
    return [t.grad_fn for t in node.inputs if t.grad_fn is not None]


def topo_order(root):
    """Every node reachable from ``root``, consumers before producers."""
    raise NotImplementedError("write topo_order: return a list of nodes, root first")
