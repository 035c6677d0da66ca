"""Every fenced code block of README.md and docs/*.md, run as a user would run it.

Each block is one test, named by its file and the line of its opening fence
(``README.md:33``). Every document gets a scratch folder (holding a copy of
``sample_data/``, as a checkout does) whose SQLite file ``rjbatch.db`` is the database of
everything the document runs:

* ``python`` blocks run in one Python process per document, in order, sharing one
  namespace (a later block uses what an earlier one defined), with the scratch folder as
  the current directory. Tracebacks name the markdown file and its line.
* ``bash``/``sh``/``shell``/``console`` blocks run line by line through bash in the scratch
  folder, the ``rjbatch`` console script and ``python`` of this virtual environment first on
  ``PATH`` (``console``: only the ``$ `` lines; the others are output). A line may run
  ``rjbatch`` or ``python``; each must exit 0.
  A line ``EXPRESSION  # -> VALUE`` (VALUE a Python literal, perhaps followed by more
  words) asserts that the expression gives that value.
* ``yaml``/``json``/``toml`` blocks must parse; ``text`` blocks are not code.

A block that cannot run as written says so in an HTML comment right above its fence
(several comments may be stacked):

``<!-- docs-test: skip (why) -->``
    not run: it needs a server or an account (PostgreSQL, MongoDB, S3, a package index).
``<!-- docs-test: not code (why) -->``
    an outline, a synopsis with placeholders, output.
``<!-- docs-test: background (why) -->``
    the block's ``rjbatch web`` and ``rjbatch worker`` commands serve until stopped: each is
    started (the web on a free port: ``--port`` is replaced or added), must come up (the web
    must listen, a worker must still run after 2 s), and is then stopped.
``<!-- docs-test: installed (why) -->``
    the ``python3 -m venv``, ``. .venv/bin/activate`` and ``pip install`` steps of a line
    are taken as done (this environment is the installation); the rest of the line runs.
``<!-- docs-test: setup`` *python lines* ``-->``
    Python run first, in the document's namespace and folder: the files and objects the
    block takes as given (an input file, a job with failed records).
``<!-- docs-test: substitute NAME ... -->``
    a shell block's NAME words are replaced by ``str(NAME)`` of the document's namespace.
``<!-- docs-test: ellipsis CODE -->``
    a Python line that is only ``...`` ("time passes") stands for CODE.
``<!-- docs-test: slow (why) -->``
    the test is marked ``slow``.
``<!-- docs-test: known bug "TEXT" (why) -->``
    the code does not do what the document says yet: the block must fail with TEXT in its
    message (an expected failure); any other failure fails, and so does a pass (the bug is
    fixed: remove the marker).

A block without a marker that cannot run fails. The last tests check the command and
option names the documents use against ``rjbatch --help`` and ``rjbatch COMMAND --help``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent

PYTHON = {"python", "py", "python3"}
SHELL = {"bash", "sh", "shell", "console", "zsh"}
DATA = {"yaml", "yml", "json", "toml"}
TEXT = {"text", "txt", "plain", "output"}
MARKERS = {"skip", "not code", "background", "installed", "setup", "substitute", "ellipsis",
           "slow", "known bug"}
# commands a shell line may run; anything else (pip, sudo, docker, export...) needs a marker
COMMANDS = {"rjbatch", "python", "python3"}

if os.environ.get("RJBATCH_TEST_DATABASE", "sqlite").lower() not in ("", "sqlite"):
    pytestmark = pytest.mark.skip(reason="the documents run once, on SQLite, as a user starts")


@dataclass
class Block:
    path: Path
    line: int  # the opening fence, 1-based
    language: str
    code: str
    first_code_line: int
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)[^`]*$")
COMMENT_END = re.compile(r"-->\s*$")


def parse_document(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, language = opening.groups()
        body = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            text = lines[end]
            body.append(text[len(indent):] if text.startswith(indent) else text.lstrip())
            end += 1
        blocks.append(Block(path, index + 1, language.lower(), "\n".join(body) + "\n", index + 2,
                            markers_above(lines, index, path)))
        index = end + 1
    return blocks


def markers_above(lines: list[str], fence_index: int, path: Path) -> dict[str, str]:
    """The ``docs-test`` comments stacked right above the fence at ``fence_index``."""
    markers: dict[str, str] = {}
    end = fence_index - 1
    while end >= 0 and COMMENT_END.search(lines[end]):
        start = end
        while start >= 0 and "<!--" not in lines[start]:
            start -= 1
        if start < 0:
            break
        text = "\n".join(lines[start:end + 1]).strip()
        text = text[text.index("<!--") + 4:text.rindex("-->")]
        found = re.match(r"\s*docs-test:\s*", text)
        if not found:
            break
        text = text[found.end():]
        kind = next((k for k in sorted(MARKERS, key=len, reverse=True) if text.startswith(k)), None)
        if kind is None:
            raise ValueError(f"{path.name}:{start + 1}: unknown docs-test marker {text.split()[0]!r}")
        markers[kind] = text[len(kind):]
        end = start - 1
    return markers


BLOCKS = [block for document in DOCUMENTS for block in parse_document(document)]


# -- one Python process per document ---------------------------------------------------

RUNNER = r'''
import contextlib, io, json, os, sys, traceback, types
protocol = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # what child processes print must not reach the protocol
module = types.ModuleType(sys.argv[1])
sys.modules[module.__name__] = module


def check(got, documented):
    if got != documented:
        raise AssertionError(f"{got!r}, not the documented {documented!r}")


module._docs_check = check
for request in sys.stdin:
    request = json.loads(request)
    out = io.StringIO()
    reply = {"ok": True}
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(request["code"], request["file"], "exec"), module.__dict__)
    except BaseException:
        reply = {"ok": False, "error": traceback.format_exc()}
    reply["output"] = out.getvalue()
    protocol.write(json.dumps(reply) + "\n")
'''


class Document:
    """A document's scratch folder, its environment and its Python process."""

    def __init__(self, path: Path, folder: Path) -> None:
        self.path = path
        self.folder = folder
        shutil.copytree(ROOT / "sample_data", folder / "sample_data")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RJBATCH_")}
        self.env["RJBATCH_DATABASE"] = f"sqlite:///{folder / 'rjbatch.db'}"
        self.env["PATH"] = f"{BIN}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["COLUMNS"] = "100"
        self.env.pop("PYTHONPATH", None)
        self.process: subprocess.Popen | None = None
        self.stderr_path = folder / ".python-stderr"
        self.ran: set[int] = set()  # the Python blocks run, by line

    def python(self, code: str, first_line: int) -> str:
        if self.process is None:
            module = "docs_" + re.sub(r"\W", "_", self.path.stem)
            self.process = subprocess.Popen(
                [sys.executable, "-c", RUNNER, module], cwd=self.folder, env=self.env, text=True,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_path.open("w"))
        assert self.process.stdin and self.process.stdout
        source = "\n" * (first_line - 1) + code  # tracebacks give the markdown line
        self.process.stdin.write(json.dumps({"code": source, "file": str(self.path)}) + "\n")
        self.process.stdin.flush()
        reply = self.process.stdout.readline()
        if not reply:
            pytest.fail(f"the Python process of {self.path.name} died:\n{self.stderr_tail()}")
        reply = json.loads(reply)
        if not reply["ok"]:
            pytest.fail(f"{reply['error']}\nprinted:\n{reply['output']}\nstderr:\n{self.stderr_tail()}",
                        pytrace=False)
        return reply["output"]

    def stderr_tail(self) -> str:
        return self.stderr_path.read_text()[-3000:] if self.stderr_path.exists() else ""

    def close(self) -> None:
        if self.process is not None:
            assert self.process.stdin
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def documents(tmp_path_factory):
    opened: dict[Path, Document] = {}

    def get(path: Path) -> Document:
        if path not in opened:
            opened[path] = Document(path, tmp_path_factory.mktemp("docs-" + path.stem))
        return opened[path]

    yield get
    for document in opened.values():
        document.close()


ARROW = re.compile(r"^(\s*)(\S.*?)\s+#\s*->\s*(.+)$")


def with_checks(code: str) -> str:
    """``EXPR  # -> VALUE ...`` lines become assertions that EXPR == VALUE."""
    out = []
    for line in code.splitlines():
        found = ARROW.match(line)
        value = found and next((text for text in literal_prefixes(found.group(3))), None)
        if found and value is not None:
            indent, expression = found.group(1), found.group(2)
            line = f"{indent}_docs_check(({expression}), {value})"
        out.append(line)
    return "\n".join(out) + "\n"


def literal_prefixes(text: str):
    """The longest start of ``text`` that is a Python literal."""
    import ast

    for end in range(len(text), 0, -1):
        with contextlib.suppress(ValueError, SyntaxError, TypeError):
            ast.literal_eval(text[:end])
            yield text[:end]
            return


# -- shell lines -----------------------------------------------------------------------

INSTALL = re.compile(r"^(python3? -m venv \S+|\. \S*activate|source \S*activate|pip3? install .*)$")


def shell_commands(block: Block) -> list[str]:
    """The command lines of a shell block: continuations joined, comments and output dropped."""
    lines = block.code.splitlines()
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip() and not line.strip().startswith("#"):
            commands.append(line.strip())
    if "installed" in block.markers:
        kept = []
        for command in commands:
            steps = [step.strip() for step in command.split("&&")]
            steps = [step for step in steps if not INSTALL.match(step)]
            if steps:
                kept.append(" && ".join(steps))
        commands = kept
    return commands


def check_runnable(command: str, block: Block) -> None:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    first = True
    for word in lexer:
        if first and word not in COMMANDS:
            pytest.fail(f"{block.name}: `{command}` runs {word!r}, which this test does not run: "
                        "mark the block (<!-- docs-test: skip (why) -->, or installed, ...)",
                        pytrace=False)
        first = word in ("&&", "||", ";", "|", "&")


def substitute(command: str, block: Block, document: Document) -> str:
    for name in block.markers.get("substitute", "").split():
        value = document.python(f"print({name}, end='')\n", 1)
        command = re.sub(rf"\b{re.escape(name)}\b", value, command)
    return command


def run_shell(command: str, document: Document) -> None:
    result = subprocess.run(["bash", "-c", command], cwd=document.folder, env=document.env,
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        pytest.fail(f"`{command}` exited {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
                    f"stderr:\n{result.stderr[-3000:]}", pytrace=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_in_background(command: str, document: Document) -> None:
    """Start a command that serves until stopped; it must come up (and listen, if it is the
    web), then it is stopped."""
    words = shlex.split(command, comments=True)
    port = None
    if words[:2] == ["rjbatch", "web"]:
        port = free_port()
        if "--port" in words:
            words[words.index("--port") + 1] = str(port)
        else:
            words += ["--port", str(port)]
    log = document.folder / ".background.log"
    with log.open("w") as out:
        process = subprocess.Popen(words, cwd=document.folder, env=document.env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"`{shlex.join(words)}` exited {process.returncode} instead of serving:\n"
                            f"{log.read_text()[-3000:]}", pytrace=False)
            if port is None:
                if time.monotonic() > deadline - 28:  # a worker: up for 2 s
                    return
            else:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                    return
            time.sleep(0.1)
        pytest.fail(f"`{shlex.join(words)}` did not come up in 30 s:\n{log.read_text()[-3000:]}",
                    pytrace=False)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# -- the tests -------------------------------------------------------------------------

def block_param(block: Block):
    marks = [pytest.mark.slow] if "slow" in block.markers else []
    return pytest.param(block, id=block.name, marks=marks)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("block", [block_param(block) for block in BLOCKS])
def test_doc_block(block: Block, documents) -> None:
    if "known bug" not in block.markers:
        run_block(block, documents)
        return
    found = re.match(r'\s*"([^"]+)"\s*\((.+)\)\s*$', block.markers["known bug"], re.S)
    assert found, f'{block.name}: known bug "TEXT" (why)'
    try:
        run_block(block, documents)
    except pytest.fail.Exception as failure:
        if found.group(1) not in str(failure):
            raise
        pytest.xfail(f"known bug: {found.group(2)}")
    pytest.fail(f"{block.name} runs now: remove its known bug marker ({found.group(2)})", pytrace=False)


def run_setup(block: Block, document: Document) -> None:
    if "setup" in block.markers:
        document.python(textwrap.dedent(block.markers["setup"]).strip("\n") + "\n", 1)


def run_python(block: Block, document: Document) -> None:
    document.ran.add(block.line)
    run_setup(block, document)
    code = block.code
    if "ellipsis" in block.markers:
        code = re.sub(r"(?m)^(\s*)\.\.\.\s*$", lambda m: m.group(1) + block.markers["ellipsis"].strip(), code)
    document.python(with_checks(code), block.first_code_line)


def run_block(block: Block, documents) -> None:
    for kind in ("skip", "not code"):
        if kind in block.markers:
            reason = block.markers[kind].strip()
            assert re.fullmatch(r"\(.+\)", reason, re.S), f"{block.name}: say why: {kind} (why)"
            pytest.skip(f"{kind} {reason}")
    if block.language in TEXT:
        pytest.skip(f"not code (```{block.language})")
    document = documents(block.path)
    for earlier in BLOCKS:  # when -k picked this block alone: what it builds on first
        if earlier.path == block.path and earlier.line < block.line and earlier.line not in document.ran \
                and earlier.language in PYTHON and not {"skip", "not code"} & earlier.markers.keys():
            run_python(earlier, document)
    if block.language in PYTHON:
        run_python(block, document)
    elif block.language in SHELL:
        run_setup(block, document)
        commands = shell_commands(block)
        assert commands, f"{block.name}: no command to run"
        for command in commands:
            check_runnable(command, block)
            command = substitute(command, block, document)
            if "background" in block.markers and re.match(r"rjbatch (web|worker)\b", command):
                run_in_background(command, document)
            else:
                run_shell(command, document)
    elif block.language in DATA:
        text = block.code
        if block.language in ("yaml", "yml"):
            import yaml

            yaml.safe_load(text)
        elif block.language == "json":
            json.loads(text)
        else:
            import tomllib

            tomllib.loads(text)
    else:
        pytest.fail(f"{block.name}: a ```{block.language or ''} block that this test cannot run: "
                    "give it a language (python, bash, text, ...) or a docs-test marker", pytrace=False)


# -- command and option names against --help ------------------------------------------

def help_text(*words: str) -> str:
    from rjbatch.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*words, "--help"])
    return out.getvalue()


def commands_of(text: str) -> list[str]:
    """The sub-commands a help text lists (``{a,b,c}`` or a COMMAND table)."""
    found = re.search(r"^positional arguments:\n  \{([\w,-]+)\}", text, re.M)
    if found:
        return found.group(1).split(",")
    table = re.search(r"^positional arguments:\n  COMMAND\n((?:    .*\n|                .*\n)+)", text, re.M)
    return re.findall(r"^    ([\w-]+)", table.group(1), re.M) if table else []


def options_of(text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--[a-z][\w-]*)", text))


@pytest.fixture(scope="module")
def cli():
    top = help_text()
    commands = {}
    for command in commands_of(top):
        text = help_text(command)
        options = options_of(text)
        for sub in commands_of(text):
            options |= options_of(help_text(command, sub))
        commands[command] = (options, commands_of(text))
    return options_of(top), commands


def mentions() -> list[tuple[str, str]]:
    """(document:line, text) of each inline code span, and of each line of a code block."""
    found = []
    for path in DOCUMENTS:
        fenced = False
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FENCE.match(line):
                fenced = not fenced
                continue
            spans = [line.strip().removeprefix("$ ")] if fenced else re.findall(r"`([^`]+)`", line)
            found.extend((f"{path.relative_to(ROOT)}:{number}", span) for span in spans)
    return found


# options the documents name that belong to other programs
FOREIGN_OPTIONS = {"--forwarded-allow-ips"}  # uvicorn's


def test_docs_name_only_commands_and_options_that_exist(cli) -> None:
    top, commands = cli
    every_option = set(top).union(*(options for options, _ in commands.values()))
    wrong = []
    for where, span in mentions():
        for used in re.finditer(r"(?:^|[|;&]\s*|\$ )rjbatch ((?:[\w-]+)(?:\|[\w-]+)*)(.*?)(?=$|[|;&]\s*rjbatch)", span):
            names, rest = used.group(1), used.group(2)
            for name in names.split("|"):
                if name.upper() == name or name.startswith("-"):
                    continue  # COMMAND, or an option
                if name not in commands:
                    wrong.append(f"{where}: `rjbatch {name}` is not a command")
                    continue
                options, _ = commands[name]
                for option in options_of(rest):
                    if option not in options | top:
                        wrong.append(f"{where}: `rjbatch {name}` has no option {option}")
        for option in re.findall(r"^(--[a-z][\w-]*)", span):
            if option not in every_option | FOREIGN_OPTIONS:
                wrong.append(f"{where}: no rjbatch command has the option {option}")
    assert not wrong, "\n".join(wrong)


def test_every_command_and_option_of_the_help_is_in_the_docs(cli) -> None:
    text = "\n".join(path.read_text() for path in DOCUMENTS)
    top, commands = cli
    missing = [f"rjbatch {name}" for name in commands if f"rjbatch {name}" not in text
               and f"|{name}" not in text and f"{name}|" not in text]
    missing += [f"rjbatch {name} {option}" for name, (options, _) in commands.items()
                for option in sorted(options | top) if option != "--help" and option not in text]
    assert not missing, "undocumented: " + ", ".join(missing)


def test_every_block_is_run_or_marked() -> None:
    """The collector sees every fence: none is silently left out."""
    fences = sum(len(re.findall(r"(?m)^\s*(?:```|~~~)", p.read_text())) for p in DOCUMENTS)
    assert fences == 2 * len(BLOCKS)
