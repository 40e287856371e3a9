"""Fixtures every test module may use. Helpers that are not fixtures (workspaces with known
contents, canned fitters, reading the screen) live in tests/helpers.py; test modules never
import each other."""

from __future__ import annotations

import pytest

from changeover.core.store import Store


@pytest.fixture
def store():
    """An empty in-memory workspace file."""
    s = Store.memory()
    yield s
    s.close()
