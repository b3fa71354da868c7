"""python/mlpot/_core.pyi, kept by hand, describes the extension mlpot._core as built: the same
public functions, classes, methods, properties and static methods, of the same kind, with
the same parameter names, kinds and defaults wherever the runtime has a __text_signature__.
Generic on purpose: the names come from the stub and from the module, so a binding added,
renamed or removed on either side fails here until the other side follows."""

import ast
import builtins
import inspect
from pathlib import Path

import pytest

from mlpot import _core

STUB = Path(_core.__file__).with_name("_core.pyi")

#: what every pyo3 class carries in its __dict__ without a declaration in the stub
IMPLICIT_CLASS_NAMES = {"__doc__", "__module__", "__new__", "__dict__", "__weakref__", "__init__"}


def stub_tree():
    return ast.parse(STUB.read_text(), filename=str(STUB))


def stub_module_names(tree):
    """{name: node} of the functions, classes and annotated variables the stub declares."""
    out = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def stub_member_kind(node):
    """'property', 'staticmethod', 'method' or 'attribute' of a class body node."""
    if isinstance(node, ast.AnnAssign):
        return "attribute"
    decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
    if "property" in decorators:
        return "property"
    if "staticmethod" in decorators:
        return "staticmethod"
    return "method"


def stub_class_members(cls_node):
    out = {}
    for node in cls_node.body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = node
    return out


def runtime_member_kind(value):
    """The stub's word for a class attribute of the extension: pyo3 getters are getset
    descriptors, #[staticmethod] stays a staticmethod in the class __dict__."""
    if isinstance(value, staticmethod):
        return "staticmethod"
    if inspect.isgetsetdescriptor(value) or inspect.ismemberdescriptor(value) or isinstance(value, property):
        return "property"
    if callable(value):
        return "method"
    return "attribute"


def runtime_module_public():
    """Public names of the module: its __all__ plus any name without a leading underscore."""
    names = {n for n in dir(_core) if not n.startswith("_")}
    return names | set(getattr(_core, "__all__", ()))


def runtime_class_public(cls):
    """Names the class itself defines (not inherited from object), dunder slots included,
    except the ones every pyo3 class has."""
    return {n for n in vars(cls) if n not in IMPLICIT_CLASS_NAMES}


def parameters(args: ast.arguments, drop_first: bool):
    """[(name, kind, default)] of an ast signature; default is the literal value, ... when the
    stub elides it, or the marker 'required'."""
    positional = [*args.posonlyargs, *args.args]
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    out = []
    for i, (arg, default) in enumerate(zip(positional, defaults)):
        kind = "positional-only" if i < len(args.posonlyargs) else "positional"
        out.append((arg.arg, kind, default))
    if args.vararg:
        out.append((args.vararg.arg, "*args", None))
    for arg, default in zip(args.kwonlyargs, args.kw_defaults):
        out.append((arg.arg, "keyword-only", default))
    if args.kwarg:
        out.append((args.kwarg.arg, "**kwargs", None))
    if drop_first:
        out = out[1:]
    return [
        (name, kind, "required" if default is None else ast.literal_eval(default))
        for name, kind, default in out
    ]


def runtime_parameters(text_signature: str, drop_first: bool):
    """The runtime's __text_signature__, parsed by the same rules as the stub. '$self' and
    '$type' mark the bound first argument."""
    bound = text_signature.startswith("($")
    tree = ast.parse(f"def f{text_signature.replace('$', '')}: pass")
    return parameters(tree.body[0].args, drop_first=bound or drop_first)


def comparable(params):
    """Positional-only vs positional is a pyo3 detail of slots like __len__($self, /); the
    stub writes them as ordinary parameters, so the two kinds compare equal."""
    return [(n, "positional" if k == "positional-only" else k, d) for n, k, d in params]


def assert_same_signature(where, stub_args, runtime_obj, drop_first):
    text = getattr(runtime_obj, "__text_signature__", None)
    if text is None:
        return
    stub = comparable(parameters(stub_args, drop_first=drop_first))
    runtime = comparable(runtime_parameters(text, drop_first=False))
    # the stub may elide a default as `...`; then the runtime only has to have one
    for i, (n, k, d) in enumerate(stub):
        if d is Ellipsis and i < len(runtime) and runtime[i][2] != "required":
            stub[i] = (n, k, runtime[i][2])
    assert stub == runtime, f"{where}: stub {stub} != runtime {text}"


def module_cases():
    tree = stub_tree()
    return sorted(stub_module_names(tree).items())


def test_stub_and_runtime_declare_the_same_module_names():
    stub = set(stub_module_names(stub_tree()))
    runtime = runtime_module_public()
    assert stub - runtime == set(), f"in the stub but not public in mlpot._core: {sorted(stub - runtime)}"
    assert runtime - stub == set(), f"in mlpot._core but not in the stub: {sorted(runtime - stub)}"


@pytest.mark.parametrize("name,node", module_cases(), ids=[n for n, _ in module_cases()])
def test_module_level_declaration_matches_runtime(name, node):
    assert hasattr(_core, name), f"{name} is in the stub but not in mlpot._core"
    value = getattr(_core, name)
    if isinstance(node, ast.AnnAssign):
        annotation = node.annotation
        if isinstance(annotation, ast.Name) and isinstance(getattr(builtins, annotation.id, None), type):
            assert isinstance(value, getattr(builtins, annotation.id)), f"{name}: {type(value)} vs {annotation.id}"
        return
    if isinstance(node, ast.FunctionDef):
        assert callable(value) and not isinstance(value, type), f"{name}: the stub says function, runtime {value!r}"
        assert_same_signature(name, node.args, value, drop_first=False)
        return
    assert isinstance(value, type), f"{name}: the stub says class, runtime {value!r}"
    check_class(name, node, value)


def check_class(name, node, cls):
    members = stub_class_members(node)
    declared = {n for n in members if n != "__init__"}
    runtime = runtime_class_public(cls)
    assert declared - runtime == set(), f"{name}: in the stub, not at runtime: {sorted(declared - runtime)}"
    assert runtime - declared == set(), f"{name}: at runtime, not in the stub: {sorted(runtime - declared)}"

    # a class is constructible from Python exactly when pyo3 gave it a #[new]
    constructible = "__new__" in vars(cls)
    assert ("__init__" in members) == constructible, (
        f"{name}: the stub {'declares' if '__init__' in members else 'lacks'} __init__ but the "
        f"runtime class {'has' if constructible else 'has no'} constructor"
    )
    if "__init__" in members:
        assert_same_signature(f"{name}.__init__", members["__init__"].args, cls, drop_first=True)

    for member, member_node in members.items():
        if member == "__init__":
            continue
        value = vars(cls)[member]
        kind = stub_member_kind(member_node)
        assert kind == runtime_member_kind(value), (
            f"{name}.{member}: the stub says {kind}, runtime {runtime_member_kind(value)} ({value!r})"
        )
        if kind == "method":
            assert_same_signature(f"{name}.{member}", member_node.args, value, drop_first=True)
        elif kind == "staticmethod":
            assert_same_signature(f"{name}.{member}", member_node.args, getattr(cls, member), drop_first=False)
