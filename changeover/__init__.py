"""changeover: retire a production LLM and pick its successor with statistical confidence.

The code lives in the top-level folders `core/` (the domain), `cli/` (the command line), `tui/`
(the terminal app) and `sample_data/`; the links in this folder install them as
`changeover.core`, `changeover.cli`, `changeover.tui` and `changeover.sample_data`, so nothing of
this project is importable as `core`, `cli` or `tui`.
"""
