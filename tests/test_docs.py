"""The documentation keeps working: its links lead somewhere, and the README's tour runs as written.

The tour is what a newcomer types on a fresh clone after `make demo`, so it is run here exactly as
the README shows it: every line of every `sh` block under `## A ten-minute tour`, in order, in one
shell session whose environment carries from one command to the next (as `. .venv/bin/activate`
and pasted `export` lines do in a terminal). The long-running commands, `esa-scheduler emulator` and
`esa-scheduler serve` ("in the second terminal"), are started in the background; their `export`
lines are then pasted, as the README asks, and they are stopped with Ctrl-C at the end. A `text`
block right after an `sh` block is the output of that block's last command, and must be what the
command prints.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOC_FILES = [README, *sorted((ROOT / "docs").glob("*.md"))]
TOUR_HEADING = "## A ten-minute tour"

FENCE = re.compile(r"^```(\w*)\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)
BACKGROUND_COMMAND = re.compile(r"(^|[\s/])esa-scheduler (emulator|serve)\b")
EXPORTS = {
    "emulator": ("ESA_ENDPOINT", "ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
    "serve": ("INTAKE",),
}
"""What each long-running command's ``export`` lines must name before the tour goes on."""
COMMAND_TIMEOUT_S = 120
EMULATOR_START_TIMEOUT_S = 30


# --------------------------------------------------------------------------- markdown reading


@dataclass
class Block:
    """A fenced code block: its info string, its lines and the line number of its opening fence."""

    lang: str
    lines: list[str]
    line: int
    follows_block: bool  # only blank lines between this block and the previous one
    commands: list[str] = field(default_factory=list)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` outside fenced code blocks: where headings and links live."""
    lines, fenced = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line.strip()):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: rendered text, lower-case, punctuation dropped, spaces to ``-``."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, with GitHub's ``-1``, ``-2`` suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> list[tuple[int, str]]:
    """``(line number, target)`` of every link or image to a file of this repository."""
    links = []
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match.group(1)
            if not EXTERNAL.match(target):
                links.append((number, target))
    return links


def broken(source: Path, target: str) -> str | None:
    """Why a link from ``source`` does not resolve, or None when it does."""
    name, _, anchor = target.partition("#")
    path = (source.parent / name).resolve() if name else source
    if not path.exists():
        return f"{name} does not exist"
    if anchor and path.suffix != ".md":
        return f"#{anchor} points into {name}, which is not markdown"
    if anchor and anchor not in anchors(path):
        return f"no heading of {path.relative_to(ROOT)} has the anchor #{anchor}"
    return None


def tour() -> str:
    """The README's tour: from its heading to the next section."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{TOUR_HEADING}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else None]


def blocks(text: str) -> list[Block]:
    """The fenced blocks of ``text``; an ``sh`` block's commands are its lines minus blanks and comments."""
    found: list[Block] = []
    current: Block | None = None
    gap_is_blank = False
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line.strip())
        if current is None and fence:
            current = Block(fence.group(1), [], number, gap_is_blank and bool(found))
        elif current is not None and fence:
            found.append(current)
            current, gap_is_blank = None, True
        elif current is not None:
            current.lines.append(line)
        elif line.strip():
            gap_is_blank = False
    for block in found:
        if block.lang == "sh":
            joined = "\n".join(block.lines).replace("\\\n", "")
            block.commands = [c.strip() for c in joined.splitlines() if c.strip() and not c.strip().startswith("#")]
    return found


# --------------------------------------------------------------------------- a newcomer's shell


class Shell:
    """One terminal: each command runs in ``bash`` and the environment it leaves carries on."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path) -> None:
        self.cwd, self.env, self.env_file = cwd, env, scratch / "environment"

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        script = f'{command}\nstatus=$?\nenv -0 > "{self.env_file}"\nexit $status\n'
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
            check=False,
        )
        if self.env_file.exists():
            pairs = (item.partition("=") for item in self.env_file.read_text().split("\0") if "=" in item)
            self.env = {name: value for name, _, value in pairs}
            self.env_file.unlink()
        return done


class Background:
    """``esa-scheduler emulator`` or ``serve`` in its own terminal: started, read, and stopped with Ctrl-C."""

    def __init__(self, command: str, kind: str, shell: Shell) -> None:
        self.kind = kind
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self.process = subprocess.Popen(
            ["bash", "-c", f"exec {command}"],
            cwd=shell.cwd,
            env=shell.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def export_lines(self) -> list[str]:
        """The ``export`` lines it prints after ``listening on``, once they name all its variables."""
        deadline = time.monotonic() + EMULATOR_START_TIMEOUT_S
        exports: list[str] = []
        expected = EXPORTS[self.kind]
        while not all(any(f"{name}=" in line for line in exports) for name in expected):
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no export lines for {expected} after {self.output}") from None
            if line is None:
                raise AssertionError(f"the {self.kind} command ended: {self.output}")
            self.output.append(line)
            if line.startswith("export "):
                exports.append(line)
        # stdout's first line (stderr is merged here, and the embedded emulator's note may come first)
        listening = [line for line in self.output if line.startswith("listening on ")]
        assert listening and listening[0].startswith("listening on http://127.0.0.1:"), self.output
        return exports

    def stop(self) -> int:
        """Ctrl-C, as the README says; its exit status."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=COMMAND_TIMEOUT_S)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()


def newcomer(tmp_path: Path) -> Shell:
    """A fresh clone's folder after `make demo`: schedule/, events/, .venv; no ESA, no credentials.

    The environment is this process's (LD_PRELOAD and FAKETIME* included, so a suite run under
    faketime keeps one clock in every child) without any ESA_*, ALIBABA_CLOUD_* or FC_* variable,
    and HOME is empty, so nothing can reach a real ESA: everything goes to an emulator.
    """
    clone, home = tmp_path / "clone", tmp_path / "home"
    home.mkdir()
    clone.mkdir()
    for folder in ("schedule", "events"):
        shutil.copytree(ROOT / folder, clone / folder)
    venv = Path(sys.prefix)
    assert (venv / "bin" / "activate").exists(), f"run the suite from the project's venv (make test), not {venv}"
    (clone / ".venv").symlink_to(venv, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESA_", "ALIBABA_CLOUD_", "FC_"))}
    env["HOME"] = str(home)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return Shell(clone, env, tmp_path)


def outcome(command: str, done: subprocess.CompletedProcess[str]) -> str | None:
    """A failed step, in one readable paragraph; None when the command exited 0."""
    if done.returncode == 0:
        return None
    return f"$ {command}\n  exit {done.returncode}\n  stdout: {done.stdout[-600:]}\n  stderr: {done.stderr[-600:]}"


def shown_output_differs(block: Block, following: Block | None, stdout: str) -> str | None:
    """The README's output under an ``sh`` block against what its last command printed."""
    if following is None or following.lang != "text" or not following.follows_block:
        return None
    shown = [line.rstrip() for line in following.lines]
    printed = [line.rstrip() for line in stdout.rstrip("\n").splitlines()]
    if shown == printed:
        return None
    return f"$ {block.commands[-1]}\n  the README shows:\n{chr(10).join(shown)}\n  it prints:\n{chr(10).join(printed)}"


# --------------------------------------------------------------------------- the tests


def test_every_relative_link_resolves() -> None:
    links = [(path, number, target) for path in DOC_FILES for number, target in relative_links(path)]
    assert len(links) > 30, f"too few links found ({len(links)}): is the link pattern still right?"
    problems = [
        f"{path.relative_to(ROOT)}:{number}: ({target}) {why}"
        for path, number, target in links
        if (why := broken(path, target)) is not None
    ]
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_readme_maps_every_docs_page() -> None:
    linked = {(README.parent / target.partition("#")[0]).resolve() for _, target in relative_links(README)}
    unmapped = [path.name for path in DOC_FILES[1:] if path.resolve() not in linked]
    assert not unmapped, f"docs pages the README's map does not link to: {unmapped}"


def test_the_tour_covers_the_first_ten_minutes() -> None:
    commands = [command for block in blocks(tour()) for command in block.commands]
    expected = [
        ". .venv/bin/activate",
        "esa-scheduler validate",
        "esa-scheduler plan --at",
        "esa-scheduler plan --at 2027-03-26T10:00:00Z --html dist/",
        "esa-scheduler hold add",
        "esa-scheduler hold list",
        "esa-scheduler run",
        "esa-scheduler hold release",
        "esa-scheduler invoke --emulator events/hold.json",
        "esa-scheduler notify test",
        "esa-scheduler emulator",
        "esa-scheduler serve",
        'curl -s "$INTAKE/alerts/cloudmonitor?token=',
    ]
    missing = [step for step in expected if not any(command.startswith(step) for command in commands)]
    assert not missing, f"the tour no longer shows {missing}: {commands}"
    allowed = ("esa-scheduler", ".", "mkdir", "echo", "unset", "export", "curl")
    assert all(command.startswith(allowed) for command in commands)


def run_block(block: Block, shell: Shell, background: list[Background], failures: list[str]) -> str | None:
    """Each command of an ``sh`` block in turn; the last one's stdout, if it exited 0."""
    done: subprocess.CompletedProcess[str] | None = None
    for command in block.commands:
        typed = command
        if match := BACKGROUND_COMMAND.search(command):
            background.append(Background(command, match.group(2), shell))
            try:
                typed = "\n".join(background[-1].export_lines())  # pasted into the first terminal
            except AssertionError as exc:
                failures.append(f"$ {command}\n  {exc}")
                continue
        done = shell.run(typed)
        failures.extend(filter(None, [outcome(typed, done)]))
    return done.stdout if done is not None and done.returncode == 0 else None


def test_the_tour_runs_as_written(tmp_path: Path) -> None:
    shell = newcomer(tmp_path)
    background: list[Background] = []
    failures: list[str] = []
    found = blocks(tour())
    try:
        for index, block in enumerate(found):
            stdout = run_block(block, shell, background, failures)
            following = found[index + 1] if index + 1 < len(found) else None
            if stdout is not None:
                failures.extend(filter(None, [shown_output_differs(block, following, stdout)]))
    finally:
        for process in background:
            if (status := process.stop()) != 0:
                failures.append(f"the {process.kind} command exited {status} on Ctrl-C: {process.output}")
    kinds = [process.kind for process in background]
    assert kinds == ["emulator", "serve"], f"the tour should start an emulator, then serve, not {kinds}"
    assert not failures, "\n\n".join(failures)
