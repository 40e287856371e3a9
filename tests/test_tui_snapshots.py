"""Layout guards: the eval sets, browse and rate screens at 80x24 and 120x40 on fixed data."""

import pytest
from helpers import canned_fitter, make_workspace

from changeover.core.store import Store
from changeover.core.workspace import Workspace
from changeover.tui.app import ChangeoverApp

SIZES = [(80, 24), (120, 40)]


def app_with_data() -> ChangeoverApp:
    store = Store.memory()
    make_workspace(
        store,
        n_items=30,
        texts={
            0: "Hold the power button for [b]ten[/b] seconds,\nthen choose \x1b[31mReset\x1b[0m."
        },
    )
    store.add_rating(1, "correct", "carol", 1)
    return ChangeoverApp(Workspace(store, canned_fitter()), rater="ann", seed=11)


async def settle(pilot):
    """Wait until the app is quiet: messages handled, workers done, the screen's data in."""
    for _ in range(500):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        screen = pilot.app.screen
        if not (getattr(screen, "loading", False) or getattr(screen, "counting", False)):
            break
        await pilot.pause(0.01)
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_eval_sets(snap_compare, size):
    assert snap_compare(app_with_data(), terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_browse(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app_with_data(), terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_rate(snap_compare, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        await pilot.press("y")  # one metric answered, the next one asked
        await settle(pilot)

    assert snap_compare(app_with_data(), terminal_size=size, run_before=run_before)
