"""The start screen: counts per eval set, and every candidate's verdict of the last fit, at 80
columns as at 160."""

import pytest
from test_queue import make_workspace
from test_tui_rate import run_async, screen_text, settle

from changeover.core.store import Store
from changeover.core.types import FitRecord
from changeover.tui.app import ChangeoverApp
from changeover.tui.screens.eval_sets import fit_verdicts, verdict_summary


@pytest.fixture
def store():
    s = Store.memory()
    yield s
    s.close()


def summary(verdicts: dict, ok: bool = True) -> dict:
    return {"ok": ok, "verdicts": verdicts}


def test_verdicts_are_read_from_the_fit_summary():
    fit = FitRecord(
        1,
        1,
        "2026-01-01T00:00:00+00:00",
        {},
        "h",
        {},
        summary(
            {
                "cand-a": {"verdict": "ready", "joint_probability": 0.971},
                "cand-b": {"verdict": "undecided", "joint_probability": 0.4},
                "cand-c": {"verdict": "undecided"},
            }
        ),
    )
    lines = fit_verdicts(fit)
    assert [(c.model, c.verdict, c.p_all_hold) for c in lines] == [
        ("cand-a", "ready", 0.971),
        ("cand-b", "undecided", 0.4),
        ("cand-c", "undecided", None),
    ]
    assert verdict_summary(fit) == "1 ready, 2 undecided"
    bad = FitRecord(2, 1, "", {}, "h", {}, summary({"c": {"verdict": "not ready"}}, ok=False))
    assert verdict_summary(bad) == "1 not ready (diagnostics failed)"
    assert verdict_summary(None) == "no fit yet"
    assert verdict_summary(FitRecord(3, 1, "", {}, "h", {}, {})) == "no verdicts"
    listed = FitRecord(4, 1, "", {}, "h", {}, {"verdicts": [{"model": "m", "verdict": "ready"}]})
    assert [c.model for c in fit_verdicts(listed)] == ["m"]


CANDIDATES = {
    "newmodel-beta": ("ready", 0.98),
    "newmodel-gamma-with-a-long-name": ("not ready", 0.0),
    "guardian-1": ("undecided", 0.41),
}


@pytest.mark.parametrize("width", [80, 160])
def test_every_candidate_verdict_shows_at_any_width(store, width):
    """The verdict column used to be cut at 80 columns and capped at 60 characters, so the
    last candidates' verdicts never showed."""
    es = make_workspace(store, n_items=3)
    verdicts = {m: {"verdict": v, "joint_probability": p} for m, (v, p) in CANDIDATES.items()}
    store.save_fit(es.id, {}, "hash", {"ok": True}, summary(verdicts), b"")

    @run_async
    async def run():
        app = ChangeoverApp(store, rater="ann", seed=1)
        async with app.run_test(size=(width, 24)) as pilot:
            await settle(pilot)
            return screen_text(app)

    text = run()
    assert "#1" in text and "1 ready, 1 not ready, 1 undecided" in text
    for model, (verdict, p) in CANDIDATES.items():
        line = next((ln for ln in text.splitlines() if f" {model} " in ln), "")
        assert verdict in line and f"P(all hold) {p:.2f}" in line, (model, text)
    assert "last fit #1" in text and "incumbent oldmodel-alpha" in text


@run_async
async def test_the_panel_follows_the_highlighted_set(store):
    make_workspace(store, n_items=3)
    second = make_workspace(store, n_items=3, name="second")
    store.save_fit(
        second.id,
        {},
        "hash",
        {"ok": False},
        summary({"newmodel-beta": {"verdict": "ready"}}, ok=False),
        b"",
    )
    app = ChangeoverApp(store, rater="ann", seed=1)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "support · 3 models" in screen_text(app) and "no fit yet" in screen_text(app)
        await pilot.press("down")
        await settle(pilot)
        text = screen_text(app)
        assert "second · 3 models" in text and "diagnostics FAILED" in text
        assert "✔ ready" in text
