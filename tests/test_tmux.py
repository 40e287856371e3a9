"""A real terminal: `python -m changeover.cli rate` inside tmux, keys sent as a user types them, the
pane captured, and the labels found in the workspace."""

import sys
from pathlib import Path

import pytest
from helpers import MODELS, RATIONALE, make_workspace
from helpers_tmux import Tmux, tmux_missing

from changeover.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
PYTHON = ROOT / ".venv" / "bin" / "python"

pytestmark = pytest.mark.skipif(tmux_missing() is not None, reason=str(tmux_missing()))


def labels(path: Path) -> list[tuple[int, str, str, int]]:
    with Store.open(path, read_only=True) as store:
        return [
            (r.response_id, r.metric, r.rater, r.value)
            for r in store.ratings(1, include_retracted=False)
        ]


def test_rating_in_tmux_reaches_the_workspace(tmp_path):
    workspace = tmp_path / "w.changeover"
    with Store.open(workspace, create=True) as store:
        make_workspace(store, n_items=12)
    python = PYTHON if PYTHON.exists() else Path(sys.executable)
    term = Tmux(
        tmp_path, width=100, height=30, env={"CHANGEOVER_CONFIG_DIR": str(tmp_path / "cfg")}
    )
    try:
        term.run(f"cd {ROOT} && {python} -m changeover.cli rate {workspace} --rater tmuxer")
        screen = term.wait_for("this session: 0 responses", timeout=60)
        assert "Question" in screen and "[n] no" in screen
        assert not any(m in screen for m in MODELS) and RATIONALE not in screen
        for k in range(3):
            term.keys("y", "n", str(1 + k))
            term.wait_for(f"this session: {k + 1} response", timeout=20)
        term.keys("y", "u")  # a label, then its undo
        term.wait_for(lambda s: "▶ correct" in s, timeout=20)
        term.keys("q", "q")  # back to the eval sets, then quit
        term.wait_for(lambda s: not term.alternate_on(), timeout=20)
    finally:
        term.close()
    got = labels(workspace)
    assert len(got) == 9 and {r[2] for r in got} == {"tmuxer"}
    assert sorted(v for _, m, _, v in got if m == "style") == [0, 1, 2]
    with Store.open(workspace, read_only=True) as store:
        assert sum(r.retracts is not None for r in store.ratings(1)) == 1


@pytest.mark.parametrize("last", ["missing", "empty", "text"])
def test_plain_changeover_opens_the_last_workspace_only_if_it_is_one(tmp_path, last):
    """On a shared account the remembered workspace may be gone, emptied or something else by
    now: plain `changeover` then opens the demo, and writes nothing to that file."""
    remembered = tmp_path / "z.changeover"
    if last != "missing":
        remembered.write_text("" if last == "empty" else "notes, not a workspace\n")
    before = remembered.read_bytes() if remembered.exists() else None
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "last_workspace").write_text(f"{remembered}\n")
    python = PYTHON if PYTHON.exists() else Path(sys.executable)
    term = Tmux(
        tmp_path,
        width=100,
        height=30,
        env={"CHANGEOVER_CONFIG_DIR": str(config), "CHANGEOVER_DATA_DIR": str(tmp_path / "data")},
    )
    try:
        term.run(f"cd {ROOT} && {python} -m changeover.cli")
        # the title line can be painted a frame after the table: wait for both
        screen = term.wait_for(lambda s: "kestrel-support" in s and "demo.changeover" in s, 90)
        assert "z.changeover" not in screen
        term.keys("q")
        term.wait_for(lambda s: not term.alternate_on(), timeout=20)
    finally:
        term.close()
    after = remembered.read_bytes() if remembered.exists() else None
    assert after == before  # untouched (main wrote a 120 KB schema into the empty file)
    assert not Path(f"{remembered}-wal").exists()
