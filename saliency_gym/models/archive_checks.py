"""Inspection of model archives from strangers, before torch reads them.

:func:`torch.export.load` and :func:`torch.jit.load` can run code while they load a file (see
"Trust" in :mod:`saliency_gym.models.model_files`). The checks here read the archive's bytes as
data, never unpickling or executing anything, and refuse what torch would unpickle or run:

* :func:`check_export_archive`: a ``torch.export`` ``.pt2`` archive may hold only plain tensors,
  standard operators and size arithmetic (no pickled payloads, custom objects, native libraries,
  legacy-format members or executable guards);
* :func:`check_torchscript_archive`: TorchScript code may not name torch's file operators
  (``aten::save``, ``aten::from_file``).

A refusal is an :class:`UnsafeModelFileError` (a ``ValueError``) naming the file and the entry.
The caller hands torch the very bytes that were inspected (see
:func:`saliency_gym.models.model_files.load_model`).
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


class UnsafeModelFileError(ValueError):
    """A model file holds something torch would unpickle or execute while loading it; it was not loaded."""


#: Members of a ``torch.export.save`` archive that torch reads as plain bytes or text.
_PT2_PLAIN_MEMBERS = frozenset(
    {"archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id"}
)
_PT2_MODEL = re.compile(r"models/(?P<name>[A-Za-z0-9_.\-]+)\.json")
_PT2_WEIGHTS_CONFIG = "data/weights/{}_weights_config.json"
_PT2_CONSTANTS_CONFIG = "data/constants/{}_constants_config.json"
_PT2_SAMPLE_INPUTS = "data/sample_inputs/{}.pt"
#: Operator namespaces a ``.pt2`` graph may call: torch's own tensor operators.
_OP_TARGET = re.compile(r"torch\.ops\.(aten|prims|quantized_decomposed)\.(?!__)\w+\.(?!__)\w+")
#: Operators of those namespaces that touch files by name (aten::save writes one, from_file reads one).
_FILE_OPS = frozenset({"save", "from_file"})
#: Higher-order operators a graph may call (control flow and wrappers over subgraphs of the archive).
_HIGHER_ORDER_OPS = frozenset({
    "cond", "while_loop", "map_impl", "scan", "associative_scan", "wrap_with_set_grad_enabled",
    "wrap_with_autocast", "invoke_subgraph", "auto_functionalized", "auto_functionalized_v2", "with_effects",
})  # fmt: skip
#: Arithmetic on sizes (torch's verifier list and its symbolic operators), as serialized.
_SIZE_OPS = frozenset(
    [f"_operator.{n}" for n in ("getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
                                "abs", "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "not_", "lshift", "rshift")]
    + ["math.ceil", "math.floor", "math.trunc", "builtins.round", "torch._sym_sqrt"]
    + [f"torch.sym_{n}" for n in ("not", "int", "float", "ite", "max", "min", "sqrt")]
)  # fmt: skip
#: Callables and constants a symbolic-shape string may name (sympy's ``srepr`` of a size expression;
#: torch evaluates these strings with ``sympy.sympify``, that is with ``eval``).
_SYMPY_CALLABLES = frozenset({
    "Symbol", "Integer", "Float", "Rational", "Add", "Mul", "Pow", "Max", "Min", "Abs", "Mod", "floor", "ceiling",
    "Equality", "Unequality", "StrictLessThan", "LessThan", "StrictGreaterThan", "GreaterThan",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Piecewise", "ExprCondPair",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv", "IsNonOverlappingAndDenseIndicator",
    "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal", "ToFloat", "Identity",
})  # fmt: skip
_SYMPY_CONSTANTS = frozenset(
    {"oo", "zoo", "nan", "true", "false", "True", "False", "int_oo", "pi", "E", "I"}
)
_SYMBOL_NAME = re.compile(r"[a-z]+\d+")
_PLAIN_STRING = re.compile(r"[A-Za-z0-9_.+\-]*")
#: What a guard (Python source that torch executes) may call: sizes of the inputs and arithmetic.
_GUARD_FUNCTIONS = frozenset({"max", "min", "abs", "int", "float", "round", "bool",
                              "IsNonOverlappingAndDenseIndicator", "cast_symbool_to_symint_guardless"})  # fmt: skip
_GUARD_ATTRIBUTES = {
    "math": frozenset({"trunc", "floor", "ceil", "sqrt", "inf"}),
    "torch": frozenset(
        {
            "sym_float",
            "sym_int",
            "sym_max",
            "sym_min",
            "sym_not",
            "sym_ite",
            "sym_sqrt",
            "_sym_sqrt",
        }
    ),
}
_TENSOR_SIZE_METHODS = frozenset({"size", "stride", "storage_offset", "dim", "numel"})
_ARITHMETIC_NODES = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Load,
                     ast.operator, ast.unaryop, ast.boolop, ast.cmpop)  # fmt: skip
_TORCHSCRIPT_FILE_OPS = re.compile(r"\.\s*(save|from_file)\b")
#: Fields holding names that torch.fx pastes into the Python source it generates and executes.
_NAME_FIELDS = frozenset({"name", "as_name", "user_input_name"})
#: Fields holding module or parameter paths (``net.0.weight``), pasted into that source too.
_PATH_FIELDS = frozenset(
    {"fqn", "parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name"}
)
_PATH = re.compile(r"[\w\-]*(?:\.[\w\-]+)*")
#: Metadata strings holding module paths and types (unflatten builds submodules from them).
_PATH_METADATA = frozenset({"nn_module_stack", "source_fn_stack", "torch_fn"})


def _refuse(path: Path, entry: str, problem: str, consequence: str) -> UnsafeModelFileError:
    return UnsafeModelFileError(
        f"refusing to load {path}: {entry} {problem}; {consequence}. The file was not loaded "
        "(re-save the model with torch.export.save from plain tensors and standard operators, or "
        "give its architecture as 'module:factory' with --weights)"
    )


def _archive_entries(data: bytes, path: Path, kind: str) -> tuple[Any, list[str]]:
    """torch's reader of the zip archive ``data`` and its entry names (without the archive's root
    folder). The names are read both with :mod:`zipfile` and with torch's own reader, and must
    agree, so no entry hides from one of them (torch's fallbacks open the archive with zipfile)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            full = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ValueError(f"{path} is not a readable {kind} (a zip archive): {exc}") from None
    if len(set(full)) != len(full):
        dupes = sorted({n for n in full if full.count(n) > 1})
        raise _refuse(path, f"the entry {dupes[0]!r}", "appears twice in the zip archive",
                      "two readers could see different contents under one name")  # fmt: skip
    root = full[0].split("/", 1)[0] if full else ""
    if not full or any("/" not in name or name.split("/", 1)[0] != root for name in full):
        odd = next((n for n in full if "/" not in n or n.split("/", 1)[0] != root), "(none)")
        raise _refuse(path, f"the entry {odd!r}", f"is outside the archive's folder {root!r}",
                      "torch.export.load would then read the archive in the legacy format, whose "
                      "members it unpickles with weights_only=False, which can run arbitrary code")  # fmt: skip
    names = sorted(name.split("/", 1)[1] for name in full)
    try:
        reader = torch._C.PyTorchFileReader(io.BytesIO(data))
        seen = sorted(reader.get_all_records())
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError for archives it cannot parse
        raise ValueError(f"{path} is not a readable {kind}: {root_cause(exc)}") from None
    if seen != names:
        differ = sorted(set(seen) ^ set(names))
        raise _refuse(path, f"the entry {differ[0] if differ else '?'!r}", "is seen by one zip reader and not the other",
                      "what was inspected need not be what torch loads")  # fmt: skip
    return reader, names


def check_export_archive(data: bytes, path: str | os.PathLike[str]) -> None:
    """Refuse a ``torch.export`` archive that :func:`torch.export.load` would unpickle or run code from.

    Checked, before torch reads anything (``data``: the file's bytes, which the caller then hands
    to torch): every entry is one ``torch.export.save`` writes for a plain model (no AOTInductor
    library, ExecuTorch program or legacy-format member); every weight and constant is a raw tensor
    (not ``"use_pickle": true``, no custom or opaque object); the sample inputs load with
    ``weights_only=True`` (torch retries with ``weights_only=False`` otherwise); the graph calls
    only torch's tensor operators (not ``aten::save``/``aten::from_file``), a few control-flow
    operators and arithmetic on sizes; and the symbolic-shape strings (evaluated by
    :func:`sympy.sympify`) and guards (executed) are made only of sizes, numbers,
    arithmetic and comparisons. Raises :class:`UnsafeModelFileError` (a ``ValueError``) naming the
    file and the offending entry, or ``ValueError`` for an archive that is not one at all.
    """
    path = Path(path)
    reader, names = _archive_entries(data, path, "torch.export archive")

    def text(name: str) -> bytes:
        return bytes(reader.get_record(name))

    def json_entry(name: str) -> Any:
        if name not in names:
            raise ValueError(f"{path} is an incomplete torch.export archive: it lacks {name}")
        try:
            return json.loads(text(name))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise ValueError(f"{path}: the entry {name} is not valid JSON ({exc})") from None

    if "archive_format" not in names or text("archive_format").strip() != b"pt2":
        raise ValueError(
            f"{path} is not a torch.export archive (its archive_format entry is not 'pt2')"
        )
    models = [m.group("name") for name in names if (m := _PT2_MODEL.fullmatch(name))]
    if not models:
        raise ValueError(f"{path} holds no exported program (no models/<name>.json entry)")
    expected = set(_PT2_PLAIN_MEMBERS)
    for model in models:
        expected |= {f"models/{model}.json", _PT2_SAMPLE_INPUTS.format(model)}
        for config_name, folder, what in ((_PT2_WEIGHTS_CONFIG, "data/weights/", "weight"),
                                          (_PT2_CONSTANTS_CONFIG, "data/constants/", "constant")):  # fmt: skip
            config_file = config_name.format(model)
            expected.add(config_file)
            legacy = f"{folder}{model}.pt"
            if legacy in names:
                raise _refuse(path, f"the entry {legacy}", f"holds the {what}s in the legacy format",
                              "torch.export.load unpickles it with weights_only=False, which can run arbitrary code")  # fmt: skip
            expected |= {
                folder + file
                for file in _check_payload_config(json_entry(config_file), path, config_file, what)
            }
        _check_sample_inputs(text, names, path, _PT2_SAMPLE_INPUTS.format(model))
        _check_program(json_entry(f"models/{model}.json"), path, f"models/{model}.json")
    for name in names:
        if name not in expected and not name.startswith("extra/"):
            raise _refuse(path, f"the entry {name!r}", "is not part of a plain torch.export.save archive",
                          "torch loads AOTInductor and ExecuTorch entries as native code, and legacy or "
                          "unknown entries may be unpickled, which can run arbitrary code")  # fmt: skip


def _check_payload_config(config: Any, path: Path, where: str, what: str) -> set[str]:
    """The files a weights or constants config refers to; refuses pickled payloads and objects."""
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise ValueError(
            f"{path}: {where} is not a torch.export payload config (no 'config' object)"
        )
    files: set[str] = set()
    for fqn, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("path_name"), str):
            raise ValueError(f"{path}: {where} describes the {what} {fqn!r} without a file name")
        file = entry["path_name"]
        label = f"the {what} {fqn!r} ({where}, file {file})"
        _check_path(fqn, path, where)
        if entry.get("use_pickle"):
            raise _refuse(path, label, "is stored pickled (\"use_pickle\": true)",
                          "torch.export.load reads it with torch.load(weights_only=False), which can run arbitrary code")  # fmt: skip
        if what == "constant" and not file.startswith("tensor_"):
            kind = (
                "a custom object"
                if file.startswith("custom_obj_")
                else "an opaque object"
                if file.startswith("opaque_obj_")
                else "not a tensor"
            )
            raise _refuse(path, label, f"is {kind}",
                          "torch.export.load unpickles such constants, which can run arbitrary code")  # fmt: skip
        if not isinstance(entry.get("tensor_meta"), dict):
            raise ValueError(f"{path}: {where} gives the {what} {fqn!r} no tensor metadata")
        files.add(file)
    return files


def _check_sample_inputs(
    read: Callable[[str], bytes], names: list[str], path: Path, name: str
) -> None:
    """The sample inputs must load weights-only: torch tries ``weights_only=True`` and, when that
    fails, retries with ``weights_only=False``, which would run a pickled payload."""
    if name not in names:
        raise ValueError(f"{path} is an incomplete torch.export archive: it lacks {name}")
    from saliency_gym.checkpoint import _refusal_detail

    try:
        torch.load(
            io.BytesIO(read(name)), weights_only=True
        )  # as torch's first try: no map_location
    except Exception as exc:  # noqa: BLE001 - torch raises many types for corrupt or unsafe files
        detail = _refusal_detail(exc)
        problem = f"holds objects a weights-only load refuses ({detail or 'not plain tensors'})" if detail is not None \
            else f"does not load weights-only ({root_cause(exc)})"  # fmt: skip
        raise _refuse(path, f"the entry {name}", problem,
                      "torch.export.load would retry with torch.load(weights_only=False), which can run arbitrary code") from None  # fmt: skip


def _check_program(document: Any, path: Path, where: str) -> None:
    """Walk a serialized exported program: operators, symbolic-shape strings and guards."""
    if not isinstance(document, dict):
        raise ValueError(f"{path}: {where} is not a serialized exported program (a JSON object)")
    guards = document.get("guards_code") or []
    if not isinstance(guards, list):
        raise ValueError(
            f"{path}: {where} has guards_code of type {type(guards).__name__}, expected a list"
        )
    for index, guard in enumerate(guards):
        _check_guard(guard, path, f"{where} guards_code[{index}]")
    stack: list[Any] = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            for key, value in item.items():
                if key in ("target", "as_operator") and isinstance(value, str):
                    _check_target(value, path, where)
                elif key == "expr_str":
                    _check_sym_expr(value, path, where)
                elif key in _NAME_FIELDS or key == "forward_arg_names":
                    for name in value if isinstance(value, list) else [value]:
                        if not isinstance(name, str) or not (name == "" or name.isidentifier()):
                            raise _refuse(path, f"the name {name!r} ({key}) in {where}", "is not a Python identifier",
                                          "torch.fx pastes names into Python source it executes")  # fmt: skip
                elif key in _PATH_FIELDS or (key in _PATH_METADATA and isinstance(value, str)):
                    _check_path(value, path, f"{key} in {where}", metadata=key in _PATH_METADATA)
                elif isinstance(value, (dict, list)):
                    stack.append(value)


def _check_path(value: Any, path: Path, where: str, *, metadata: bool = False) -> None:
    """A module/parameter path (``net.0.weight``): word characters and hyphens between dots (in
    metadata strings: no quote, backslash or line break), since torch.fx pastes paths into the
    Python source it generates (``getattr(self, "0")``)."""
    if metadata:
        ok = isinstance(value, str) and not any(c in value for c in '"\\\n\r')
    else:
        ok = isinstance(value, str) and _PATH.fullmatch(value) is not None
    if not ok:
        raise _refuse(path, f"the path {str(value)[:80]!r} ({where})", "holds characters a module path cannot",
                      "torch.fx pastes module paths into Python source it executes")  # fmt: skip


def _check_target(target: str, path: Path, where: str) -> None:
    match = _OP_TARGET.fullmatch(target)
    if match is not None and target.split(".")[3] not in _FILE_OPS:
        return
    if target in _SIZE_OPS:
        return
    hop = target.removeprefix("torch.ops.higher_order.")
    if hop != target and hop in _HIGHER_ORDER_OPS:
        return
    why = "reads or writes a file named by the archive" if match is not None else \
        "is not one of torch's tensor operators (aten, prims), control-flow operators or size arithmetic"  # fmt: skip
    raise _refuse(path, f"the operator {target!r} in {where}", why,
                  "the graph calls it when the model runs")  # fmt: skip


def _parse_expression(text: Any, path: Path, where: str, what: str) -> ast.Expression:
    if not isinstance(text, str) or len(text) > 100_000:
        raise _refuse(
            path,
            f"a {what} in {where}",
            "is not a string of reasonable length",
            "torch evaluates it",
        )
    try:
        return ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise _refuse(path, f"the {what} {text[:80]!r} in {where}", "is not an expression",
                      "torch evaluates it as Python, which can run arbitrary code") from None  # fmt: skip


def _check_sym_expr(text: Any, path: Path, where: str) -> None:
    """A symbolic size (sympy ``srepr``): only known sympy/torch functions, symbols named like
    ``s0``, numbers, plain strings and arithmetic, since :func:`sympy.sympify` evaluates it."""
    tree = _parse_expression(text, path, where, "symbolic shape")
    for node in ast.walk(tree):
        if isinstance(node, (*_ARITHMETIC_NODES, ast.keyword)):
            continue
        if isinstance(node, ast.Constant) and _plain_constant(node.value):
            continue
        if isinstance(node, ast.Name) and (node.id in _SYMPY_CALLABLES or node.id in _SYMPY_CONSTANTS
                                           or _SYMBOL_NAME.fullmatch(node.id)):  # fmt: skip
            continue
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _SYMPY_CALLABLES
                and all(k.arg is not None and k.arg.isalpha() and isinstance(k.value, ast.Constant) for k in node.keywords)):  # fmt: skip
            continue
        raise _refuse(path, f"the symbolic shape {text[:80]!r} in {where}",
                      f"contains {ast.unparse(node)[:60]!r}, which is not size arithmetic",
                      "torch evaluates it with sympy.sympify (eval), which can run arbitrary code")  # fmt: skip


def _plain_constant(value: object) -> bool:
    if isinstance(value, str):
        return bool(_PLAIN_STRING.fullmatch(value)) and "__" not in value
    return isinstance(value, (bool, int, float))


def _check_guard(text: Any, path: Path, where: str) -> None:
    """A guard (Python source torch executes when it builds the module): only sizes of the
    inputs (``L['x'].size()[2]``), numbers, arithmetic, comparisons and size functions."""
    tree = _parse_expression(text, path, where, "guard")
    if any(c in text for c in '#\\"\n\r'):
        raise _refuse(path, f"the guard {text[:80]!r} in {where}", "contains a comment, quote or line break",
                      "torch pastes it into Python source it executes")  # fmt: skip
    for node in ast.walk(tree):
        if isinstance(node, _ARITHMETIC_NODES):
            continue
        if isinstance(node, ast.Constant) and _plain_constant(node.value):
            continue
        if isinstance(node, ast.Name) and (
            node.id in ("L", *_GUARD_ATTRIBUTES) or node.id in _GUARD_FUNCTIONS
        ):
            continue
        if isinstance(node, ast.Attribute) and (
            (
                isinstance(node.value, ast.Name)
                and node.attr in _GUARD_ATTRIBUTES.get(node.value.id, ())
            )
            or (node.attr in _TENSOR_SIZE_METHODS and isinstance(node.value, ast.Subscript))
        ):
            continue
        if isinstance(node, ast.Subscript) and isinstance(node.value, (ast.Name, ast.Subscript, ast.Call)) and \
                isinstance(node.slice, ast.Constant) and (not isinstance(node.value, ast.Name) or node.value.id == "L"):  # fmt: skip
            continue
        if isinstance(node, ast.Call) and not node.keywords and not any(isinstance(a, ast.Starred) for a in node.args) and (
            isinstance(node.func, ast.Attribute) or (isinstance(node.func, ast.Name) and node.func.id in _GUARD_FUNCTIONS)
        ):  # fmt: skip
            continue
        raise _refuse(path, f"the guard {text[:80]!r} in {where}",
                      f"contains {ast.unparse(node)[:60]!r}, which is not size arithmetic",
                      "torch executes guards as Python, which can run arbitrary code")  # fmt: skip


def check_torchscript_archive(data: bytes, path: str | os.PathLike[str]) -> None:
    """Refuse a TorchScript archive whose code calls torch's file operators.

    :func:`torch.jit.load` unpickles no Python objects, but a TorchScript module's code runs at load
    (``__setstate__``) and at every call with every registered operator; ``aten::save`` writes a
    file and ``aten::from_file`` reads one, both named by the archive. Code that names either
    (``torch.save(...)``, ``ops.aten.from_file``, a method called ``save``) is refused with
    :class:`UnsafeModelFileError`. This narrows, but does not close, what a crafted file can do:
    open TorchScript files you trust (see the module docstring).
    """
    path = Path(path)
    reader, names = _archive_entries(data, path, "TorchScript file")
    for name in names:
        if not (name.startswith("code/") and name.endswith(".py")):
            continue
        code = bytes(reader.get_record(name)).decode("utf-8", errors="replace")
        found = _TORCHSCRIPT_FILE_OPS.search(code)
        if found is not None:
            raise _refuse(path, f"the code entry {name}", f"calls {found.group(1)!r}",
                          "TorchScript's save and from_file operators write and read files the archive names")  # fmt: skip


def root_cause(exc: BaseException) -> str:
    """The first line of the innermost cause of ``exc`` (torch wraps its errors several times)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


__all__ = ["UnsafeModelFileError", "check_export_archive", "check_torchscript_archive", "root_cause"]
