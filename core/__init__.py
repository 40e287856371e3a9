"""The domain: everything changeover knows, without a screen. Never imports textual.

Along the data path (each package may import only those before it; tests/test_architecture.py
holds the rule):

- values: `types`, `settings`, `shown`, `text`, `paths` — frozen values and the one place text
  is made inert; every package may use them.
- `store/` — the workspace file (SQLite); the only package that knows SQL.
- `importing/` — files, logs and lakes into the store: parse, check, write, all or nothing.
- `model/` — counts from the store, the calibration model (compiled once per machine), the
  instant posterior and the kept fits: posterior draws per metric.
- `decide/` — verdicts from draws: the rule, the cell checks, a candidate's decision.
- `judge/` — the judge against the humans: agreement and the calibration table.
- `labelling/` — which response to label next: the queue, the active rule, the overlap.
- `results` — the one `Results` value every face formats; `render/` — its text, Markdown,
  JSON and CSV faces and the exports.
- `workspace` — the one path from a workspace file to every face (with `summary` and `demo`).
"""
