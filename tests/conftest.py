"""Fixtures every test module may use. Helpers that are not fixtures (workspaces with known
contents, canned fitters, reading the screen) live in tests/helpers.py; test modules never
import each other."""

from __future__ import annotations

import pytest

from changeover.core.model import cache as model_cache
from changeover.core.store import Store


@pytest.fixture
def store():
    """An empty in-memory workspace file."""
    s = Store.memory()
    yield s
    s.close()


@pytest.fixture(autouse=True)
def no_compiled_model_in_the_fast_tier(request, monkeypatch):
    """The fast tier loads and compiles no model: `model_cache.prepare` (from disk, or compiled
    in child processes: minutes on a machine whose cache is cold) is refused outside
    `@pytest.mark.slow`. An app that only shows, browses or rates is handed a canned fitter,
    so its warm-up has nothing to prepare. (Processes a test starts are not watched here.)"""
    if request.node.get_closest_marker("slow") is not None:
        yield
        return
    asked: list[str] = []

    def refuse(requests, *args, **kwargs):
        asked.extend(r.label or repr(r.structure) for r in requests)
        raise AssertionError("the fast tier prepares no compiled model")

    monkeypatch.setattr(model_cache, "prepare", refuse)
    yield
    # raised in an app's worker, the error is swallowed there: fail the test here
    assert not asked, (
        f"the fast tier prepared compiled models ({', '.join(asked)}): mark the test slow, "
        "or hand the workspace a canned fitter (helpers.canned_fitter)"
    )
