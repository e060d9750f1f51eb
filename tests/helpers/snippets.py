"""The code snippets of README.md, docs/*.md and the console's pages, and a reader who runs them against a real server.

A Markdown page's fenced blocks are read in order; a runnable one (bash, sh, shell, console, python) that cannot run
in a test says so in an HTML comment on the line just before its fence: ``<!-- not-run: why -->``. The reader runs a
page's other runnable blocks as one shell script, in order, in one folder, as someone typing them into one terminal
would: the variables a block exports reach the next block and the next page. The one change made to the text is the
server's address, as the pages say ``http://127.0.0.1:8000`` and the test server listens on a free port; the CLI's
default address is moved the same way through FLASHML_URL, which the CLI reads ("or FLASHML_URL" in docs/cli.md).
"""

from __future__ import annotations

import fcntl
import html
import os
import re
import select
import signal
import subprocess
import sys
import termios
import time
from dataclasses import dataclass
from pathlib import Path

RUN_LANGUAGES = frozenset({"bash", "sh", "shell", "console", "python", "py"})
# Not programs: command output and usage (text), and the manifests and bodies tests/project/test_docs.py parses.
DATA_LANGUAGES = frozenset({"text", "toml", "json"})
DOCUMENTED_ADDRESS = "127.0.0.1:8000"
_FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(.*?)\s*-->\s*$")
_PYTHON_END = "FLASHML_PYTHON_SNIPPET"


@dataclass(frozen=True)
class Snippet:
    where: str  # "docs/jobs.md:6", the fence's line
    language: str
    code: str
    not_run: str | None  # the reason the page gives, when it is marked


def page_snippets(path: Path, root: Path) -> list[Snippet]:
    """Every fenced block of the page, in order, with the reason of its not-run marker if it has one."""
    text = path.read_text()
    lines = text.splitlines()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = lines[line - 2] if line >= 2 else ""
        marker = _NOT_RUN.match(before)
        found.append(Snippet(f"{path.relative_to(root)}:{line}", match.group(1).lower(), match.group(2),
                             marker.group(1) if marker else None))
    return found


def stray_markers(path: Path) -> list[int]:
    """Lines of not-run markers that are not right before a fence (a marker that marks nothing)."""
    lines = path.read_text().splitlines()
    return [i + 1 for i, line in enumerate(lines) if line.lstrip().startswith("<!-- not-run")
            and (not _NOT_RUN.match(line) or i + 1 >= len(lines) or not lines[i + 1].startswith("```"))]


def console_block(code: str) -> str:
    """A ``console`` block's commands: its ``$ `` lines (the rest is what they print)."""
    return "\n".join(line[2:] for line in code.splitlines() if line.startswith("$ "))


def page_script(snippets: list[Snippet], address: str, env_out: Path) -> str:
    """One bash script of the runnable, unmarked snippets: each announces itself on stderr, python ones run through
    ``python -``, and the script's exported variables are written to ``env_out`` at the end."""
    parts = []
    for s in snippets:
        if s.language not in RUN_LANGUAGES or s.not_run is not None:
            continue
        code = s.code.replace(DOCUMENTED_ADDRESS, address).rstrip("\n") + "\n"  # a page's <pre> may end without one
        if s.language in ("python", "py"):
            code = f"python - <<'{_PYTHON_END}'\n{code}{_PYTHON_END}\n"
        elif s.language == "console":
            code = console_block(code) + "\n"
        parts.append(f"echo '>>> {s.where}' >&2\n{code}")
    return "".join(parts) + f"env -0 > '{env_out}'\n"


def html_snippets(page: str) -> list[tuple[str, str]]:
    """(language, code) of every ``<pre>`` of a console page but the secrets it shows once (class "secret")."""
    found = []
    for attrs, body in re.findall(r"<pre([^>]*)>(.*?)</pre>", page, re.S):
        if "secret" in attrs:
            continue
        code = html.unescape(re.sub(r"</?code>", "", body))
        found.append(("python" if re.search(r"^import ", code, re.M) else "bash", code))
    return found


class Reader:
    """Someone following the docs in one folder and one terminal, in the project's virtual environment: the server they
    started listens on ``url`` (FLASHML_URL says so to the CLI); the environment is a bare shell's (PATH, HOME, LANG)
    plus what the pages had them export, and nothing else."""

    def __init__(self, folder: Path, url: str) -> None:
        self.folder = folder
        self.url = url
        home = folder.parent / "home"
        home.mkdir(exist_ok=True)
        # Make an HTTP error a failed command (curl's exit 22, the body still printed), as a reader would see it.
        (home / ".curlrc").write_text("fail-with-body\n")
        self.env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
                    "HOME": str(home), "LANG": "C.UTF-8", "FLASHML_URL": url}
        self._env_out = folder.parent / "reader.env"

    def run(self, language: str, code: str, *, what: str, extra_env: dict[str, str] | None = None,
            timeout: float = 180) -> str:
        """Run one snippet as written in the reader's folder; its stdout, or an AssertionError saying what failed."""
        script = page_script([Snippet(what, language, code, None)], self.url.split("://", 1)[1], self._env_out)
        return self._bash(script, what, None, {**self.env, **(extra_env or {})}, timeout, keep_env=False)

    def run_page(self, snippets: list[Snippet], *, what: str, typed: str | None = None, timeout: float = 300) -> str:
        """Run a page's snippets in order as one script; the variables it exports stay for the next pages. ``typed``
        is what the reader types at every prompt on the terminal (a password)."""
        script = page_script(snippets, self.url.split("://", 1)[1], self._env_out)
        return self._bash(script, what, typed, self.env, timeout, keep_env=True)

    def _bash(self, script: str, what: str, typed: str | None, env: dict[str, str], timeout: float, *,
              keep_env: bool) -> str:
        out = at_a_terminal(["bash", "-euo", "pipefail", "-c", script], self.folder, env, typed, timeout)
        if out.returncode != 0:
            started = re.findall(r"^>>> (\S+)$", out.stderr, re.M)
            raise AssertionError(f"{what}: the snippet at {started[-1] if started else '?'} failed "
                                 f"(exit {out.returncode})\n--- stdout (its end)\n{out.stdout[-3000:]}"
                                 f"\n--- stderr (its end)\n{out.stderr[-6000:]}")
        if keep_env:
            pairs = (item.split("=", 1) for item in self._env_out.read_text().split("\0") if "=" in item)
            self.env = {k: v for k, v in pairs if k not in {"PWD", "OLDPWD", "SHLVL", "_"}}
        return out.stdout


def at_a_terminal(args: list[str], cwd: Path, env: dict[str, str], typed: str | None,
                  timeout: float) -> subprocess.CompletedProcess:
    """Run ``args`` in a session whose terminal is a pseudo-terminal, answering each prompt written there (one that
    ends in ": ", as a password prompt does) with ``typed``. A prompt reads the terminal (/dev/tty), not a pipe, and
    throws away what was typed before it asked, so the answer waits for the question."""
    master, slave = os.openpty()

    def own_terminal() -> None:  # in the child: a new session whose controlling terminal is the pty
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    with open(cwd.parent / "reader.stdout", "w+") as stdout, open(cwd.parent / "reader.stderr", "w+") as stderr:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdin=slave, stdout=stdout, stderr=stderr,
                                preexec_fn=own_terminal, text=True)
        os.close(slave)
        deadline, asked = time.monotonic() + timeout, ""
        try:
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    os.killpg(proc.pid, signal.SIGKILL)  # the session: bash and what it started
                    raise AssertionError(f"{args[:2]} ran past {timeout} s")
                ready, _, _ = select.select([master], [], [], 0.1)
                if not ready:
                    continue
                try:
                    asked += os.read(master, 4096).decode(errors="replace")
                except OSError:  # the terminal closed: everyone who had it open has exited
                    time.sleep(0.05)
                    continue
                if asked.rstrip(" ").endswith(":"):
                    if typed is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                        raise AssertionError(f"a command asked at the terminal, and nothing is typed: {asked!r}")
                    os.write(master, typed.encode() + b"\n")
                    asked = ""
        finally:
            os.close(master)
            proc.wait()
        stdout.seek(0)
        stderr.seek(0)
        return subprocess.CompletedProcess(args, proc.returncode, stdout.read(), stderr.read())
