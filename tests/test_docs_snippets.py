"""Every snippet of the README and of ``docs/*.md`` runs, or at least parses, as printed.

* Each fenced ``python`` block is executed (in a fresh namespace, in a temporary working directory,
  with ``MPLBACKEND=Agg``), one test per block, named ``file:line``.
* Each command in a ``bash`` / ``sh`` / ``console`` / ``shell`` block that calls ``saliency-gym`` is
  parsed by the CLI's own parser (:func:`saliency_gym.cli.main.build_parser`), without running it,
  so an option or a choice that does not exist fails. ``python -m MODULE`` and ``python FILE.py``
  commands are checked to name a module or file that exists.

Markers, written on the block's first line:

* ``# doc-test: skip <reason>``: the block needs files the reader provides (``my_model.pt2``, a
  run folder); it is reported as skipped with the reason.
* ``# doc-test: slow``: the block takes minutes; it runs only when ``SALIENCY_GYM_DOC_SLOW=1``
  (the project registers no ``slow`` marker, and ``--strict-markers`` is on).

A literal ``...`` in a command stands for "the arguments shown above" and is dropped before parsing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)\s*$")
MARKER = re.compile(r"#\s*doc-test:\s*(?P<kind>skip|slow)\b\s*(?P<reason>.*)")
RUN_SLOW = os.environ.get("SALIENCY_GYM_DOC_SLOW") == "1"


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the block's first code line
    lang: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"

    @property
    def marker(self) -> tuple[str, str] | None:
        first = self.code.lstrip("\n").splitlines()[0] if self.code.strip() else ""
        match = MARKER.search(first)
        return (match["kind"], match["reason"].strip()) if match else None


def fenced_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file (indented ones inside list items included)."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, body, j = len(opening["indent"]), [], i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            body.append(lines[j][indent:] if lines[j][:indent].strip() == "" else lines[j])
            j += 1
        if j == len(lines):
            raise AssertionError(f"{path.name}:{i + 1}: unclosed code fence")
        blocks.append(Block(path, i + 2, opening["lang"].lower(), "\n".join(body) + "\n"))
        i = j + 1
    return blocks


ALL_BLOCKS = [block for path in DOCS for block in fenced_blocks(path)]


def _params(items: list[tuple[Block, str, object]]) -> list[object]:
    """``pytest.param(value, id=name)`` per ``(block, name, value)``, with the block's marker."""
    params = []
    for block, name, value in items:
        marks = []
        if block.marker is not None:
            kind, reason = block.marker
            if kind == "skip":
                marks.append(pytest.mark.skip(reason=f"doc-test: skip {reason}".strip()))
            else:
                marks.append(
                    pytest.mark.skipif(
                        not RUN_SLOW, reason="doc-test: slow (set SALIENCY_GYM_DOC_SLOW=1)"
                    )
                )
        params.append(pytest.param(value, id=name, marks=marks))
    return params


# ---------------------------------------------------------------------------------------------
# python blocks
# ---------------------------------------------------------------------------------------------

PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang in {"python", "py", "python3"}]


@pytest.mark.parametrize("block", _params([(b, b.name, b) for b in PYTHON_BLOCKS]))
def test_python_snippet_runs(block: Block, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    namespace = {"__name__": "__main__", "__file__": str(tmp_path / "snippet.py")}
    code = compile(block.code, block.name, "exec")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, namespace)  # noqa: S102 - the documentation's own snippets


# ---------------------------------------------------------------------------------------------
# shell blocks
# ---------------------------------------------------------------------------------------------


def shell_commands(block: Block) -> list[tuple[int, list[str]]]:
    """``(line, argv)`` of every command of a shell block: continuation lines joined, prompts
    (``$ ``) and comments dropped, ``&&`` / ``||`` / ``;`` / ``|`` chains split."""
    commands: list[tuple[int, list[str]]] = []
    pending, start = "", 0
    for offset, raw in enumerate(block.code.splitlines()):
        line = raw.strip()
        if not pending:
            start = block.line + offset
            if line.startswith("$ "):
                line = line[2:]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text, pending = pending + line, ""
        if not text or text.startswith("#"):
            continue
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        argv: list[str] = []
        for token in lexer:
            if token and set(token) <= set(";&|"):
                if argv:
                    commands.append((start, argv))
                argv = []
            else:
                argv.append(token)
        if argv:
            commands.append((start, argv))
    return commands


SHELL_COMMANDS = [
    (block, f"{block.path.relative_to(ROOT).as_posix()}:{line}", argv)
    for block in ALL_BLOCKS
    if block.lang in SHELL_LANGUAGES
    for line, argv in shell_commands(block)
]


def _strip_env(argv: list[str]) -> list[str]:
    """Drop leading ``VAR=value`` assignments and ``nice``-style wrappers."""
    while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):
        argv = argv[1:]
    return argv


CLI_COMMANDS = [(b, n, a) for b, n, a in SHELL_COMMANDS if _strip_env(a)[:1] == ["saliency-gym"]]
PYTHON_COMMANDS = [
    (b, n, a) for b, n, a in SHELL_COMMANDS if _strip_env(a)[:1] in (["python"], ["python3"])
]


def test_the_docs_have_snippets() -> None:
    assert len(PYTHON_BLOCKS) >= 5 and len(CLI_COMMANDS) >= 20


@pytest.mark.parametrize("argv", _params(CLI_COMMANDS))
def test_cli_command_parses(argv: list[str], capsys) -> None:
    from saliency_gym.cli.main import _invoked_command, build_parser

    name = " ".join(argv)
    args = [a for a in _strip_env(argv)[1:] if a != "..."]
    if "--help" in args or "-h" in args or "--version" in args:
        args = [a for a in args if a not in ("--help", "-h", "--version")]
    parser = build_parser(_invoked_command(args))
    try:
        parsed = parser.parse_args(args)
    except SystemExit as exc:
        pytest.fail(
            f"{name}: `saliency-gym {' '.join(args)}` does not parse (exit {exc.code}):\n{capsys.readouterr().err}"
        )
    assert args == [] or getattr(parsed, "command", None), (
        f"{name}: no command in `saliency-gym {' '.join(args)}`"
    )


@pytest.mark.parametrize("argv", _params(PYTHON_COMMANDS))
def test_python_command_names_something_that_exists(argv: list[str]) -> None:
    name = " ".join(argv)
    argv = _strip_env(argv)[1:]
    if argv[:1] == ["-m"]:
        module = argv[1]
        if module.startswith(("rl_zoo3", "pip", "pytest", "mypy")):
            pytest.importorskip(module.split(".")[0])
            return
        assert importlib.util.find_spec(module) is not None, f"{name}: no module {module}"
    elif argv and argv[0].endswith(".py"):
        assert (ROOT / argv[0]).is_file(), f"{name}: no file {argv[0]}"


def inline_commands(path: Path) -> list[tuple[str, list[str]]]:
    """``(file:line, argv)`` of every inline code span of prose that starts with ``saliency-gym``
    (spans broken over two lines joined; fenced blocks excluded)."""
    text = path.read_text(encoding="utf-8")
    prose = re.sub(
        r"^\s*```.*?^\s*```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M
    )
    found = []
    for match in re.finditer(r"`(saliency-gym [^`]+)`", prose):
        line = prose[: match.start()].count("\n") + 1
        found.append(
            (f"{path.relative_to(ROOT).as_posix()}:{line}", shlex.split(" ".join(match[1].split())))
        )
    return found


INLINE_COMMANDS = [item for path in DOCS for item in inline_commands(path)]


@pytest.mark.parametrize("argv", [pytest.param(argv, id=name) for name, argv in INLINE_COMMANDS])
def test_inline_cli_mention_parses(argv: list[str], capsys) -> None:
    """A command named in the prose (`saliency-gym train --resume`) uses options that exist; a
    mention may leave out required arguments (`saliency-gym distill`)."""
    from saliency_gym.cli.main import _invoked_command, build_parser

    args = [a for a in argv[1:] if a not in ("...", "--help", "-h", "--version")]
    try:
        build_parser(_invoked_command(args)).parse_args(args)
    except SystemExit as exc:
        err = capsys.readouterr().err
        if "the following arguments are required" not in err:
            pytest.fail(f"`{' '.join(argv)}` does not parse (exit {exc.code}):\n{err}")


def test_relative_links_resolve() -> None:
    """Every relative link (and its #anchor, where it names a heading) of the README and the
    pages points at a file and heading that exist."""
    link = re.compile(r"\]\((?!https?://|mailto:)([^)\s]+)\)")
    problems = []
    for path in DOCS:
        text = path.read_text(encoding="utf-8")
        for target in link.findall(text):
            file_part, _, anchor = target.partition("#")
            dest = (path.parent / file_part).resolve() if file_part else path
            if not dest.exists():
                problems.append(f"{path.name}: {target} (no file)")
            elif anchor and dest.suffix == ".md" and anchor not in _anchors(dest):
                problems.append(f"{path.name}: {target} (no heading)")
    assert not problems, "\n".join(problems)


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    anchors = set()
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code or not line.startswith("#"):
            continue
        title = line.lstrip("#").strip().lower()
        title = re.sub(r"[^\w\- ]", "", title)
        anchors.add(title.replace(" ", "-"))
    return anchors
