"""Every documented command runs (issue 21 item 1): README.md, docs/quickstart.md, docs/cli.md.

A shell block whose info string is ``sh test`` is executed as written, by bash, in a fresh
home directory (no configuration, no store, no XDG variables), from a directory where
``build/`` and ``.venv/`` are the tree's, as a reader in a clone runs them. The blocks of a
page run in order in one shell (a later block may use an earlier one's files and variables),
README's first, then the quickstart's, then cli.md's; the shell (``set -eu``) stops at the
first failing command.

Prompts are answered as a person would: the script runs on a pseudo-terminal, and a line
ending in ``SO PIN...:``, ``user PIN...:`` (pkcs11-tool's ``User PIN:`` too) or
``passphrase...:`` gets the PIN or passphrase typed. So the interactive path is the one
tested (issue 21: init-token at a terminal asked only for the SO PIN).

A ``sh`` block must say ``sh test`` or ``sh no-test`` (needs what a test cannot have: a TPM,
root, the network): a new example cannot silently escape the test.
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", ROOT / "docs" / "quickstart.md", ROOT / "docs" / "cli.md")
FENCE = re.compile(r"^```(\S*)(?:[ \t]+(.*))?$")
SO_PIN, USER_PIN, PASSPHRASE = "so-Pin-5531", "user-Pin-8842", "backup words 73"
#: (prompt at the end of the output, answer): the first that matches is typed
ANSWERS = ((re.compile(r"SO PIN[^\n]*: ?\Z"), SO_PIN),
           (re.compile(r"(?:user|User) PIN[^\n]*: ?\Z"), USER_PIN),
           (re.compile(r"passphrase[^\n]*: ?\Z"), PASSPHRASE))
TIMEOUT = 240


def shell_blocks(page: Path) -> list[tuple[int, str, str]]:
    """``(line, marker, text)`` of every ``sh`` block of ``page`` (marker: test / no-test / '')."""
    out, lines = [], page.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m and m.group(1) in ("sh", "bash", "shell"):
            start, body = i + 1, []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append((start, (m.group(2) or "").split()[0] if m.group(2) else "", "\n".join(body)))
        elif m and m.group(1):  # another language's block: skip to its end
            i += 1
            while not lines[i].startswith("```"):
                i += 1
        i += 1
    return out


def test_every_shell_block_is_marked() -> None:
    unmarked = [f"{page.name}:{line}" for page in PAGES for line, marker, _ in shell_blocks(page)
                if marker not in ("test", "no-test")]
    assert not unmarked, f"mark these blocks `sh test` (run by this test) or `sh no-test`: {unmarked}"
    assert all(any(m == "test" for _, m, _ in shell_blocks(page)) for page in PAGES)


def script() -> str:
    # -e and -u, not pipefail: a reader's shell has none, and `list | head` may end list with
    # 141 (SIGPIPE, documented) whenever head leaves first; a pipeline is judged by its last
    # command (grep), as the reader's shell judges it
    parts = ["set -eu"]
    for page in PAGES:
        for line, marker, text in shell_blocks(page):
            if marker == "test":
                parts.append(f"echo '### {page.name}:{line}'")
                parts.append(text)
    parts.append("echo '### all blocks done'")
    return "\n".join(parts) + "\n"


def run_on_pty(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal, answering the PIN prompts; (exit status, output)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: its stdin/stdout/stderr are the terminal
        os.chdir(cwd)
        os.execvpe(argv[0], argv, env)
    out, answered_at = b"", -1
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
            tail = out.decode(errors="replace").replace("\r", "")
            if len(out) != answered_at:
                for prompt, answer in ANSWERS:
                    if prompt.search(tail):
                        time.sleep(0.05)  # let the reader switch echo off and wait for input
                        os.write(fd, answer.encode() + b"\n")
                        answered_at = len(out)
                        break
        else:
            os.kill(pid, signal.SIGKILL)
            pytest.fail(f"no end within {TIMEOUT} s:\n{out.decode(errors='replace')[-3000:]}")
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode(errors="replace").replace("\r", "")


def test_documented_commands_run(tmp_path: Path) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    for name in ("build", ".venv"):  # `$PWD/build/...` and `$PWD/.venv/bin` of the pages
        (work / name).symlink_to(ROOT / name)
    (work / "docs.sh").write_text(script())
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CRYPTOKI_SHIM_", "XDG_", "P11_KIT_", "SOFTHSM2_"))}
    env.update(HOME=str(home), TERM="dumb", LC_ALL="C.UTF-8")
    code, out = run_on_pty(["bash", str(work / "docs.sh")], work, env)
    markers = re.findall(r"^### (.+)$", out, re.M)
    assert code == 0 and markers and markers[-1] == "all blocks done", (
        f"exit {code} in the block at {markers[-1] if markers else '?'}:\n{out[-4000:]}")
    # what the pages promise, seen in the output
    assert "PINs now: SO PIN and user PIN" in out
    assert "all good" in out
    assert "restored with" in out
