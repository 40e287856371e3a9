"""Drive a real terminal: a private tmux server running a plain shell, for the tests that
send keys to the app as a user would and look at what the terminal shows afterwards."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from changeover.core.store import Store
from changeover.core.types import EvalSet, Metric, Region

LABEL_KEYS = ("correct", "style")  # the metrics of the rate workspace, in prompt order
PROMPT = "READY$ "  # the shell's prompt: when it is back on screen, the shell has the terminal


def tmux_missing() -> str | None:
    """Why tmux tests cannot run here, or None."""
    if shutil.which("tmux") is None:
        return "tmux is not installed"
    return None


class Tmux:
    """One tmux server on its own socket with one pane running `bash --norc`."""

    def __init__(
        self, directory: Path, width: int = 100, height: int = 30, env: dict[str, str] | None = None
    ):
        self.socket = str(directory / "tmux.sock")
        self.session = "t"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("TMUX")}
        full_env.update(
            {
                "TERM": "xterm-256color",
                "PS1": PROMPT,
                "HISTFILE": "/dev/null",
                "LANG": "C.UTF-8",
                "LC_ALL": "C.UTF-8",
                # the app remembers its last workspace: not in the real config
                "CHANGEOVER_CONFIG_DIR": str(directory / "config"),
            }
        )
        full_env.update(env or {})
        self.env = full_env
        self._tmux(
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            str(width),
            "-y",
            str(height),
            f"env PS1='{PROMPT}' bash --norc --noprofile",
        )
        try:
            self._tmux("set-option", "-t", self.session, "remain-on-exit", "on")
            self.wait_for(lambda s: PROMPT.strip() in s, timeout=10)
        except BaseException:
            self.close()  # never leave a tmux server behind
            raise

    def _tmux(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(
            ["tmux", "-S", self.socket, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=20,
        )
        if check and out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def run(self, command: str) -> None:
        """Type a command line into the shell and press Enter."""
        self._tmux("send-keys", "-t", self.session, "-l", command)
        self._tmux("send-keys", "-t", self.session, "Enter")

    def keys(self, *keys: str) -> None:
        """Send tmux key names ("y", "Enter", "C-c"...) one by one."""
        for key in keys:
            self._tmux("send-keys", "-t", self.session, key)

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", self.session)

    def wait_for(self, what: str | Callable[[str], bool], timeout: float = 20.0) -> str:
        test = (lambda s: what in s) if isinstance(what, str) else what
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if test(screen):
                return self._settled(screen, test)
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what!r}; screen:\n{screen}")

    def _settled(self, screen: str, test: Callable[[str], bool]) -> str:
        """A capture can catch a frame half drawn (the table painted, the title line not yet):
        look again until two captures agree (at most 0.3 s; a progress bar never does) and
        return the last one that still passes the test."""
        for _ in range(6):
            time.sleep(0.05)
            again = self.screen()
            if not test(again):
                return screen
            if again == screen:
                return again
            screen = again
        return screen

    def display(self, fmt: str) -> str:
        return self._tmux("display-message", "-p", "-t", self.session, fmt).strip()

    def alternate_on(self) -> bool:
        """Is the pane showing the alternate screen (a full-screen app still holds it)?"""
        return self.display("#{alternate_on}") == "1"

    def shell_pid(self) -> int:
        return int(self.display("#{pane_pid}"))

    def tty(self) -> str:
        return self.display("#{pane_tty}")

    def close(self) -> None:
        self._tmux("kill-server", check=False)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, read from /proc/<pid>/stat."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out[int(entry.name)] = int(
                    (entry / "stat").read_text().rsplit(")", 1)[1].split()[1]
                )
            except (OSError, IndexError, ValueError):
                continue
    return out


def descendants(pid: int) -> list[int]:
    """Every process below `pid`."""
    parents = _parents()
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, pp in parents.items() if pp == parent]
        found += kids
        frontier += kids
    return found


def find_process(root: int, needle: str, timeout: float = 20.0) -> int:
    """The pid of the first process below `root` whose command line contains `needle`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in descendants(root):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if needle in cmdline:
                return pid
        time.sleep(0.1)
    raise AssertionError(f"no process running {needle!r} below {root}")


def find_anywhere(needle: str, timeout: float = 20.0) -> int:
    """The pid of any process whose command line contains `needle` (one that sshd started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            # The python process itself, not a shell or sshd wrapper that mentions it.
            if "python" in argv[0].decode(errors="replace") and needle in b" ".join(argv).decode(
                errors="replace"
            ):
                return int(entry.name)
        time.sleep(0.1)
    raise AssertionError(f"no process running {needle!r}")


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Wait until `pid` has exited (or is a zombie); True if it did within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


# ---- a labelling session ------------------------------------------------------------------


def build_rate_workspace(path: Path, responses: int = 40) -> EvalSet:
    """A small eval set for a labelling session: two metrics, two models, two regions."""
    es = EvalSet(
        id=0,
        name="rate",
        incumbent="old",
        regions=(Region("EU", 3.0), Region("US", 1.0)),
        metrics=(
            Metric("correct", ("no", "yes"), "higher", 0.03, "Is it right?", ("n", "y")),
            Metric(
                "style", ("1", "2", "3", "4", "5"), "higher", 0.2, "Tone", ("1", "2", "3", "4", "5")
            ),
        ),
    )
    with Store.open(path, create=True) as store:
        es = store.save_eval_set(es)
        with store.importing(es.id) as batch:
            batch.add_responses(
                [
                    (
                        f"q{i // 2}",
                        "EU" if (i // 2) % 2 else "US",
                        f"How do I do thing {i // 2}?",
                        None,
                        "old" if i % 2 else "new",
                        f"Response {i}: open the settings and pick option {i}.",
                    )
                    for i in range(responses)
                ]
            )
            batch.add_judgments(
                [
                    (
                        f"q{i // 2}",
                        "old" if i % 2 else "new",
                        m,
                        "judge",
                        i % (2 if m == "correct" else 5),
                        None,
                        None,
                        None,
                    )
                    for i in range(responses)
                    for m in LABEL_KEYS
                ]
            )
    return es


def keys_for(k: int) -> tuple[str, str]:
    """The keys pressed for the k-th response: correct y/n, style 1-5."""
    return ("y" if k % 2 == 0 else "n", str(1 + k % 5))


def expected_labels(n: int) -> list[int]:
    """The levels those keys give, for n responses."""
    return [v for k in range(n) for v in ((1 if k % 2 == 0 else 0), k % 5)]


def label_responses(term: Tmux, responses: int) -> list[tuple[str, str]]:
    """Label `responses` responses, waiting after each for the app to count it."""
    given = []
    term.wait_for("this session: 0 responses", timeout=60)
    for k in range(responses):
        term.wait_for("Response", timeout=20)
        keys = keys_for(k)
        term.keys(*keys)
        given.append(keys)
        term.wait_for(f"this session: {k + 1} response", timeout=20)
    return given
