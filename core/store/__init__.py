"""The workspace file: one SQLite database. The only package that knows table and column names.

`Store` is assembled from one part per concern: the connection, schema and transactions
(`base`), eval sets (`sets`), kept fits (`fits`), imports (`imports`), labels (`labels`),
browsing and the queue's picks (`browse`), the tables statistics and export read (`tables`),
and the judge-level counts of eval sets whose responses live elsewhere (`aggregates`).
Rows leave it as the named tuples of `rows` or the dataclasses of core/types.py.
"""

from __future__ import annotations

from changeover.core.store.aggregates import Aggregates
from changeover.core.store.base import SCHEMA_VERSION, is_workspace, now
from changeover.core.store.browse import Browse
from changeover.core.store.fits import Fits
from changeover.core.store.imports import ImportBatch, Imports
from changeover.core.store.labels import Labels
from changeover.core.store.tables import Tables

__all__ = ["SCHEMA_VERSION", "ImportBatch", "Store", "is_workspace", "now"]


class Store(Imports, Fits, Labels, Browse, Tables, Aggregates):
    """A changeover workspace (see the parts for what each method does)."""
