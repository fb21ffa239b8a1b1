"""Every code block of README.md runs, in README order, as a reader would run it.

Which blocks run: fenced blocks tagged ``bash`` (or ``sh``/``shell``) and ``python``. Blocks
tagged ``text`` (output) and untagged blocks (diagrams, layouts) are not run; any other tag
fails the test, so a new kind of block is not skipped silently.

How they run: in one temporary directory that mirrors the repository root (a symlink to each
top-level entry but ``.git``, ``.venv``, ``runs`` and ``data``), so repository paths such as
``experiments/configs/...`` resolve and everything written (``runs/``, ``data/``,
``agent.zip``) lands in the temporary directory. Each bash command line runs in its own
``bash -c`` with the test's venv first on PATH; the parts of an ``&&`` chain that make or
activate a venv or ``pip install`` are left out (the test runs inside the installed venv).
All python blocks run in ONE Python subprocess, one after the other in one namespace, as if
pasted into one session (a later block may use an earlier block's variables); blocks also see
the files earlier blocks wrote.

Markers, to shrink budgets (what the README shows stays what a user runs):

- A line ending in ``# readme-test: <replacement>`` runs ``<replacement>`` instead of the
  line's code, keeping its indentation; python and bash alike::

      model.learn(100_000)  # readme-test: model.learn(256)

- An HTML comment right before a block (blank lines between allowed), invisible on the
  rendered page, replaces the whole block::

      <!-- readme-test: reprl run name=readme seeds=[0] train.timesteps=512 -->

  It may span several lines: each non-empty line after ``readme-test:`` is then one command
  (bash) or one line of code (python). ``<!-- readme-test: skip -->`` skips the block (say
  why in the comment's text after ``skip``).

The whole file is in the default suite while it stays under about 90 s; mark it slow beyond.
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RUN = {"bash": "bash", "sh": "bash", "shell": "bash", "python": "python", "py": "python"}
NOT_RUN = {"text", ""}
TIMEOUT = 300  # seconds per command or python block
SETUP = re.compile(
    r"^\s*(python3? -m venv\b|\. \S*activate\b|source \S*activate\b|"
    r"(python3? -m )?pip3? install\b)"
)
MARK = re.compile(r"^(?P<code>.*?)\s*#\s*readme-test:\s*(?P<new>.*)$")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    replacement: str | None  # the HTML comment's text after "readme-test:", if any

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.lang or 'untagged'}"


def parse_blocks(text: str) -> list[Block]:
    """The fenced blocks of a markdown text, with the ``readme-test`` comment before each."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = re.match(r"^(\s*)```\s*([\w+-]*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m[2].lower()
        j = i + 1
        while j < len(lines) and not re.match(r"^\s*```\s*$", lines[j]):
            j += 1
        code = "\n".join(ln[len(m[1]) :] if ln.startswith(m[1]) else ln for ln in lines[i + 1 : j])
        before = "\n".join(lines[:start]).rstrip()
        rep = None
        if before.endswith("-->"):
            k = before.rfind("<!--")
            comment = before[k + 4 : -3].strip()
            if comment.startswith("readme-test:"):
                rep = comment[len("readme-test:") :].strip()
        blocks.append(Block(start + 1, lang, code, rep))
        i = j + 1
    return blocks


def apply_line_markers(code: str) -> str:
    """``code  # readme-test: new`` -> ``new`` (same indentation) on every marked line."""
    out = []
    for ln in code.splitlines():
        m = MARK.match(ln)
        if m:
            indent = ln[: len(ln) - len(ln.lstrip())]
            out.append(indent + m["new"].strip())
        else:
            out.append(ln)
    return "\n".join(out)


def bash_commands(block: Block) -> list[str]:
    """The command lines a bash block runs (continuations joined, setup steps dropped)."""
    text = block.replacement if block.replacement is not None else apply_line_markers(block.code)
    text = text.replace("\\\n", " ")
    commands = []
    for ln in text.splitlines():
        if not ln.strip() or ln.lstrip().startswith("#"):
            continue
        parts = [p for p in ln.split("&&") if not SETUP.match(p)]
        if parts:
            commands.append(" && ".join(p.strip() for p in parts))
    return commands


# --- the Python session: one interpreter for every python block ------------------------------
DRIVER = r"""
import json, sys, traceback
ns = {"__name__": "__main__"}
for line in sys.stdin:
    msg = json.loads(line)
    try:
        exec(compile(msg["code"], msg["name"], "exec"), ns)
        reply = {"ok": True}
    except BaseException:
        reply = {"ok": False, "error": traceback.format_exc()}
    sys.stdout.flush()
    sys.stderr.flush()
    print("\x00readme-test " + json.dumps(reply), flush=True)
"""


class PythonSession:
    """A Python subprocess that runs blocks in one namespace (started on first use)."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env, self.proc = cwd, env, None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log = cwd / ".readme-test-python.log"

    def _start(self) -> None:
        self.err = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-c", DRIVER],
            cwd=self.cwd,
            env=self.env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.err,
        )

        def pump() -> None:
            for ln in self.proc.stdout:
                self.lines.put(ln)
            self.lines.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def run(self, code: str, name: str) -> tuple[bool, str]:
        if self.proc is None:
            self._start()
        self.proc.stdin.write(json.dumps({"code": code, "name": name}) + "\n")
        self.proc.stdin.flush()
        out = []
        while True:
            ln = self.lines.get(timeout=TIMEOUT)
            if ln is None:
                return False, "".join(out) + "\n(the Python session died)\n" + self.stderr()
            if ln.startswith("\x00readme-test "):
                reply = json.loads(ln[len("\x00readme-test ") :])
                return reply["ok"], "".join(out) + reply.get("error", "") + self.stderr()
            out.append(ln)

    def stderr(self) -> str:
        self.err.flush()
        return self.log.read_text()[-4000:]

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.err.close()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory):
    """The mirror of the repository root, its environment and the Python session."""
    d = tmp_path_factory.mktemp("readme")
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv", "runs", "data") and not entry.name.startswith(
            ".pytest"
        ):
            (d / entry.name).symlink_to(entry)
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    py = PythonSession(d, env)
    yield d, env, py
    py.close()


BLOCKS = parse_blocks(README.read_text())


def test_readme_has_blocks_of_known_kinds() -> None:
    assert any(b.lang in RUN for b in BLOCKS)
    for b in BLOCKS:
        assert b.lang in RUN or b.lang in NOT_RUN, f"{b.id}: unknown block tag {b.lang!r}"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.lang in RUN], ids=lambda b: b.id)
def test_readme_block_runs(block: Block, session) -> None:
    cwd, env, py = session
    if block.replacement is not None and block.replacement.split()[:1] == ["skip"]:
        pytest.skip(f"{block.id}: {block.replacement}")
    if RUN[block.lang] == "python":
        code = block.replacement if block.replacement is not None else block.code
        code = apply_line_markers(code)
        ok, output = py.run(code, block.id)
        assert ok, f"{block.id} failed:\n{code}\n---\n{output}"
        return
    for command in bash_commands(block):
        res = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", command],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert res.returncode == 0, (
            f"{block.id}: `{command}` exited {res.returncode}\n"
            f"stdout:\n{res.stdout[-3000:]}\nstderr:\n{res.stderr[-3000:]}"
        )


def documented_commands(blocks: list[Block]) -> list[str]:
    """The ``reprl run`` / ``reprl sweep`` command lines shown (not run) in ``text`` blocks,
    each cut at its trailing description (two or more spaces, or ``#``); lines with a
    placeholder (an upper-case file name or address) are left out."""
    out = []
    for b in blocks:
        if b.lang != "text":
            continue
        for ln in b.code.splitlines():
            if not re.match(r"reprl (run|sweep)\b", ln):
                continue
            cmd = re.split(r"\s{2,}|\s#", ln.strip(), maxsplit=1)[0]
            if not re.search(r"[A-Z_]{4,}\.yaml|HEAD_IP", cmd):
                out.append(cmd)
    return out


@pytest.mark.parametrize("command", documented_commands(BLOCKS))
def test_readme_documented_commands_are_valid(command: str, monkeypatch, capsys) -> None:
    """Every measurement command the README names still parses and validates (``--dry-run``:
    the whole config checked, nothing written), so its figures can be reproduced."""
    import shlex

    from experiments.cli import main

    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)[1:]
    if "--dry-run" not in argv:
        argv.append("--dry-run")
    assert main(argv) == 0, capsys.readouterr().err


# --- the marker machinery itself ---------------------------------------------------------------
def test_markers_are_parsed_as_documented() -> None:
    text = "\n".join(
        [
            "<!-- readme-test: reprl run seeds=[0] -->",
            "",
            "```bash",
            "reprl run",
            "```",
            "<!--",
            "readme-test:",
            "echo a",
            "echo b",
            "-->",
            "```bash",
            "reprl train",
            "```",
            "```bash",
            'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && reprl run',
            "```",
            "```bash",
            "reprl collect --frames 60000  # readme-test: reprl collect --frames 6",
            "pip install -e .",
            "```",
            "```python",
            "x = 1",
            "m.learn(100)  # readme-test: m.learn(2)",
            "```",
            "```text",
            "out",
            "```",
            "```",
            "a -> b",
            "```",
        ]
    )
    b = parse_blocks(text)
    assert [x.lang for x in b] == ["bash", "bash", "bash", "bash", "python", "text", ""]
    assert bash_commands(b[0]) == ["reprl run seeds=[0]"]
    assert bash_commands(b[1]) == ["echo a", "echo b"]
    assert bash_commands(b[2]) == ["reprl run"]
    assert b[2].replacement is None
    assert bash_commands(b[3]) == ["reprl collect --frames 6"]
    assert apply_line_markers(b[4].code) == "x = 1\nm.learn(2)"
    assert b[5].code == "out" and b[6].code == "a -> b"
