"""The README stays true: its two commands, its import example, its CLI table."""

import re
from pathlib import Path

from changeover.cli.main import build_parser
from changeover.core.importing.responses import import_file, import_labels
from changeover.core.store import Store

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second():
    first_block = re.search(r"```sh\n(.*?)```", README, re.S).group(1).strip().splitlines()
    assert len(first_block) == 2
    assert first_block[0].endswith("changeover demo")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert first_block[1] in ci  # a whole line, verbatim: nothing added after it


def test_the_import_example_imports(tmp_path):
    spec = re.search(r"`spec.toml`:\n\n```toml\n(.*?)```", README, re.S).group(1)
    data = re.search(r"```csv\n(.*?)```", README, re.S).group(1)
    (tmp_path / "spec.toml").write_text(spec)
    (tmp_path / "responses.csv").write_text(data)
    with Store.open(tmp_path / "acme.changeover", create=True) as store:
        report = import_file(store, tmp_path / "responses.csv", spec=tmp_path / "spec.toml")
        es = store.eval_set("acme-support")
        assert [m.name for m in es.metrics] == ["correct", "refused", "style"]
        assert store.stats(es.id)._asdict() == {
            "items": 2,
            "responses": 5,
            "judgments": 15,
            "judgments_missing": 1,
            "ratings": 6,
            "labelled_responses": 1,
            "open_ratings": 0,
        }
    assert report.missing_judgments == {"correct": 0, "refused": 1, "style": 0}
    labels = re.search(r"`labels.csv` for the responses above:\n\n```csv\n(.*?)```", README, re.S)
    (tmp_path / "labels.csv").write_text(labels.group(1))
    with Store.open(tmp_path / "acme.changeover") as store:
        report = import_labels(store, tmp_path / "labels.csv")
        assert report.labels == 2 and report.open_labels == 1
        assert store.stats(store.eval_set("acme-support").id).open_ratings == 1


def test_every_command_is_in_the_readme_table():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"`changeover {name}" in README, name
