"""The `changeover` command: its entry point (`entry`, with the Ctrl-C handler in `interrupt`),
the parser and dispatch (`main`) and the commands with more than a few lines (`fit`, `info`,
`export`). A thin layer over core/workspace.py; `open`, `rate` and `demo` start the terminal
app (tui/)."""
