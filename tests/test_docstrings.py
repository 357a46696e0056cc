"""Every public name of minigrad has a docstring: the API reference is built from them.

Public means: every module under ``minigrad`` (and ``minigrad.kernels``) whose dotted name has no
part starting with ``_``; in each, the names of ``__all__``, or where a module has none, the
functions and classes it defines without a leading ``_`` (``minigrad`` itself: the functions
and classes it exports). Of each public class, its own public methods and properties count too;
a method may inherit its docstring (``Linear.forward`` from ``Module.forward``, as in PyTorch),
and ``forward``/``backward`` of an autograd ``Function`` are exempt: the class docstring holds
their formula pair (STYLE.md). ``python tests/test_docstrings.py`` prints the counts.
"""

import importlib
import inspect
import pkgutil

import pytest


def public_modules():
    """The public modules: minigrad, its submodules without a ``_`` part, minigrad.kernels."""
    import minigrad

    names = ["minigrad", "minigrad.kernels"]
    for package in (minigrad, minigrad.kernels):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not any(part.startswith("_") for part in info.name.split(".")[1:]):
                names.append(info.name)
    return [importlib.import_module(name) for name in sorted(set(names))]


def public_objects(module):
    """``(name, object)`` for the functions and classes a module makes public."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name, value in vars(module).items()
                 if not name.startswith("_") and (module.__name__ == "minigrad" or
                                                  getattr(value, "__module__", None) ==
                                                  module.__name__)]
    for name in names:
        value = getattr(module, name)
        if inspect.isclass(value) or inspect.isfunction(value) or inspect.isbuiltin(value):
            yield name, value


def _own_members(cls):
    """A class's own public methods and properties: ``(name, documented)``."""
    from minigrad.autograd import Function

    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if issubclass(cls, Function) and name in ("forward", "backward"):
            continue  # the formula pair is the class docstring
        if isinstance(member, property):
            yield name, bool((member.__doc__ or "").strip())
        elif inspect.isfunction(getattr(member, "__func__", member)):
            yield name, bool(inspect.getdoc(getattr(cls, name)))


def survey():
    """Every public module, object and member with whether it has a docstring.

    Returns:
        A dict: ``"modules"``, ``"objects"`` and ``"members"``, each a list of
        ``(dotted name, documented)``, every name once.
    """
    modules, objects, members, seen = [], [], [], set()
    for module in public_modules():
        modules.append((module.__name__, bool((module.__doc__ or "").strip())))
        for name, value in public_objects(module):
            if id(value) in seen:
                continue
            seen.add(id(value))
            qualified = f"{getattr(value, '__module__', module.__name__)}." \
                        f"{getattr(value, '__qualname__', name)}"
            objects.append((qualified, bool((value.__doc__ or "").strip())))
            if inspect.isclass(value) and value.__module__.startswith("minigrad"):
                members.extend((f"{qualified}.{member}", documented)
                               for member, documented in _own_members(value))
    return {"modules": modules, "objects": objects, "members": sorted(set(members))}


@pytest.fixture(scope="module")
def found():
    return survey()


@pytest.mark.parametrize("kind", ["modules", "objects", "members"])
def test_every_public_name_has_a_docstring(found, kind):
    missing = [name for name, documented in found[kind] if not documented]
    assert not missing, f"{len(missing)} public {kind} without a docstring: {missing}"


def test_the_survey_sees_the_api(found):
    objects = {name for name, _ in found["objects"]}
    assert {"minigrad.tensor.Tensor", "minigrad.nn.layers.Linear", "minigrad.optim.adam.Adam",
            "minigrad.keras.models.Sequential", "minigrad.ops.elementwise.exp"} <= objects
    members = {name for name, _ in found["members"]}
    assert "minigrad.tensor.Tensor.backward" in members
    assert "minigrad.ops.elementwise.ExpFn.forward" not in members   # formula pair exempt
    assert len(found["objects"]) > 500 and len(found["members"]) > 500


def test_a_missing_docstring_is_found():
    class Documented:
        """Has one."""

        def method(self):
            """Has one too."""

        @property
        def bare(self):
            return 1

    assert dict(_own_members(Documented)) == {"method": True, "bare": False}


if __name__ == "__main__":
    for kind, rows in survey().items():
        missing = [name for name, documented in rows if not documented]
        print(f"{kind}: {len(rows)} public, {len(rows) - len(missing)} documented, "
              f"{len(missing)} without a docstring")
        for name in missing:
            print("   ", name)
