"""A real SSH client: sshd on 127.0.0.1 with throwaway keys, `ssh -t` inside tmux, a labelling
session over it; then the same session dropped by killing the client (sshd hangs up on the
app, as when a laptop lid closes)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers_tmux import (
    LABEL_KEYS,
    PROMPT,
    Tmux,
    build_rate_workspace,
    expected_labels,
    find_anywhere,
    find_process,
    label_responses,
    tmux_missing,
    wait_gone,
)

from changeover.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
RATER = "sshuser"


def _sshd_missing() -> str | None:
    if (why := tmux_missing()) is not None:
        return why
    if shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists():
        return "sshd is not installed (.ci/sshd-setup.sh installs openssh-server)"
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        return "the OpenSSH client is not installed"
    if os.geteuid() != 0:
        return "the throwaway sshd runs as root (privilege separation needs it)"
    return None


pytestmark = pytest.mark.skipif(_sshd_missing() is not None, reason=str(_sshd_missing()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sshd(tmp_path):
    """An sshd on a free port of 127.0.0.1 that lets in only a throwaway key. Yields
    (port, client key path)."""
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host_key", "user_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)],
            check=True,
            timeout=30,
        )
    shutil.copy(keys / "user_key.pub", keys / "authorized_keys")
    os.chmod(keys / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # Debian's privilege separation dir
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"PidFile {keys / 'sshd.pid'}\nAuthorizedKeysFile {keys / 'authorized_keys'}\n"
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPrintMotd no\n"
        "ClientAliveInterval 0\nLogLevel ERROR\n"
    )
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    log = (tmp_path / "sshd.log").open("w")
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"sshd did not start: {(tmp_path / 'sshd.log').read_text()[-500:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.skip("sshd did not listen within 15 s")
    try:
        yield port, keys / "user_key"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def ssh_command(port: int, key: Path, workspace: Path) -> str:
    remote = (
        f"cd {ROOT} && exec env NO_COLOR=1 CHANGEOVER_CONFIG_DIR={workspace.parent / 'config'} "
        f"{sys.executable} -m changeover.cli rate {workspace} --rater {RATER}"
    )
    return (
        f"ssh -t -F /dev/null -p {port} -i {key} -o StrictHostKeyChecking=no "
        f"-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR "
        f"127.0.0.1 '{remote}'"
    )


def test_label_over_a_real_ssh_session(sshd, tmp_path):
    port, key = sshd
    workspace = tmp_path / "ssh.changeover"
    es = build_rate_workspace(workspace)
    term = Tmux(tmp_path, width=100, height=30)
    try:
        term.run(ssh_command(port, key, workspace))
        given = label_responses(term, responses=4)
        # Over SSH the app leaves the mouse alone (so the terminal's own selection works).
        assert term.display("#{mouse_any_flag}") == "0"
        assert term.alternate_on()
        term.keys("C-q")
        term.wait_for(lambda s: s.rstrip().endswith(PROMPT.strip()), timeout=20)
        assert not term.alternate_on()
    finally:
        term.close()
    with Store.open(workspace, read_only=True) as store:
        labels = {
            (r.response_id, r.metric): r.value
            for r in store.ratings(es.id, include_retracted=False)
            if r.rater == RATER
        }
    assert len(labels) == len(given) * len(LABEL_KEYS) == 8
    assert sorted(labels.values()) == sorted(expected_labels(len(given)))


def test_ssh_drop_keeps_labels_and_ends_the_app(sshd, tmp_path):
    """Killing the ssh client makes sshd hang up on the remote app: its labels stay, it
    exits (no orphan left spinning on a dead terminal), and the workspace is intact."""
    port, key = sshd
    workspace = tmp_path / "drop.changeover"
    es = build_rate_workspace(workspace)
    term = Tmux(tmp_path, width=100, height=30)
    try:
        term.run(ssh_command(port, key, workspace))
        given = label_responses(term, responses=3)
        client = find_process(term.shell_pid(), "ssh -t")
        app = find_anywhere(f"-m changeover.cli rate {workspace}")
        os.kill(client, 9)
        assert wait_gone(app, timeout=15), "the app outlived its SSH session"
    finally:
        term.close()
    with Store.open(workspace) as store:
        assert store.con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        labels = [r for r in store.ratings(es.id, include_retracted=False) if r.rater == RATER]
    assert len(labels) == len(given) * len(LABEL_KEYS) == 6
