"""Import, as a user meets it a second time: a workspace in a folder that does not exist, a
re-import whose judge changed its mind, the unmappable count against what is stored, and a
CSV saved with Windows line endings."""

from __future__ import annotations

import pytest
from test_cli import SPEC as CLI_SPEC

from changeover.cli.main import main
from changeover.core.importing.responses import ImportFailed, import_file
from changeover.core.store import Store

SPEC = (  # test_cli's spec, with unmappable verdicts stored as missing and a scale
    CLI_SPEC.replace('levels = ["no", "yes"]', 'levels = ["no", "yes"]\nunmapped = "missing"')
    + '[[metrics]]\nname = "style"\nlevels = ["1", "2", "3"]\n'
)
HEADER = "item_id,region,question,model,response,judge_correct,judge_style\n"
ROWS = [
    "q1,EU,How do I pay?,old,Online.,yes,3\n",
    "q1,EU,How do I pay?,new,By card.,no,2\n",
    "q2,US,Cancel?,old,Call us.,yes,1\n",
    "q2,US,Cancel?,new,Use the app.,unsure,2\n",  # unmappable -> missing
]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "spec.toml").write_text(SPEC)
    (tmp_path / "data.csv").write_text(HEADER + "".join(ROWS))
    return tmp_path


def snapshot(store: Store) -> dict:
    es = store.eval_sets()[0]
    return {
        **store.stats(es.id)._asdict(),
        "verdicts": sorted(store.judgment_levels(es.id, ["q1", "q2", "q3"])),
    }


def test_a_workspace_in_a_folder_that_does_not_exist_is_an_error(files, capsys):
    ws = files / "no" / "such" / "folder" / "w.changeover"
    code = main(["import", str(ws), str(files / "data.csv"), "--spec", str(files / "spec.toml")])
    err = capsys.readouterr().err
    assert code == 1 and f"no folder {files / 'no' / 'such' / 'folder'}" in err
    assert not (files / "no").exists()  # no folders made on the way
    assert "Traceback" not in err


def test_a_reimport_with_a_changed_verdict_names_the_rows_and_stores_nothing(files):
    ws = files / "w.changeover"
    with Store.open(ws, create=True) as store:
        import_file(store, files / "data.csv", spec=files / "spec.toml")
        before = snapshot(store)
    changed = files / "changed.csv"
    rows = list(ROWS)
    rows[1] = rows[1].replace(",no,2", ",yes,2")  # the judge changed its mind on q1/new
    rows[2] = rows[2].replace(",yes,1", ",yes,3")  # and on q2/old's style
    rows.append("q3,EU,Roaming?,old,Yes.,yes,3\n")  # a new response, fine on its own
    changed.write_text(HEADER + "".join(rows))
    with Store.open(ws) as store:
        with pytest.raises(ImportFailed) as caught:
            import_file(store, changed, spec=files / "spec.toml")
        assert snapshot(store) == before  # nothing written, not even the new response
    text = str(caught.value)
    assert f"{changed}:3: judge_correct: yes here, but the workspace holds no" in text
    assert "item q1, model new" in text
    assert f"{changed}:4: judge_style: 3 here, but the workspace holds 1" in text
    assert caught.value.total == 2  # the unchanged rows and the new one are not listed


def test_a_reimport_of_the_same_verdicts_adds_only_what_is_new(files):
    ws = files / "w.changeover"
    with Store.open(ws, create=True) as store:
        import_file(store, files / "data.csv", spec=files / "spec.toml")
        grown = files / "grown.csv"
        grown.write_text(HEADER + "".join(ROWS) + "q3,EU,Roaming?,old,Yes.,yes,3\n")
        report = import_file(store, grown, spec=files / "spec.toml")
        assert report.added["responses"] == 1 and report.added["judgments"] == 2


def test_the_unmappable_count_is_what_the_import_stored(files):
    ws = files / "w.changeover"
    with Store.open(ws, create=True) as store:
        first = import_file(store, files / "data.csv", spec=files / "spec.toml")
        es = store.eval_sets()[0]
        stored = store.stats(es.id).judgments_missing
        assert first.missing_judgments == {"correct": 1, "style": 0} and stored == 1
        again = import_file(store, files / "data.csv", spec=files / "spec.toml")
        assert again.missing_judgments == {"correct": 0, "style": 0}  # was 1: nothing stored
        assert "unmappable" not in again.summary()
        more = files / "more.csv"
        more.write_text(HEADER + "".join(ROWS) + "q3,EU,Roaming?,new,Maybe.,n/a,2\n")
        third = import_file(store, more, spec=files / "spec.toml")
        after = store.stats(es.id).judgments_missing
        assert third.missing_judgments["correct"] == after - stored == 1
        assert "1 judge values unmappable" in third.summary()


def test_windows_line_endings_inside_multiline_fields_become_newlines(files):
    crlf = files / "crlf.csv"
    text = (
        HEADER
        + 'q1,EU,How do I pay?,old,"Online.\nThen confirm.\n\nDone.",yes,3\n'
        + 'q1,EU,How do I pay?,new,"By card,\nor in a store.",no,2\n'
        + "q2,US,Cancel?,old,Call us.,yes,1\n"
        + "q2,US,Cancel?,new,Use the app.,yes,9\n"  # a bad level: its line must still be right
    )
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    with Store.open(files / "w.changeover", create=True) as store:
        with pytest.raises(ImportFailed) as caught:
            import_file(store, crlf, spec=files / "spec.toml")
        assert f"{crlf}:9: judge_style:" in str(caught.value)  # header, 4 lines, 2 lines, 1
        crlf.write_bytes(text.replace(",yes,9", ",yes,2").replace("\n", "\r\n").encode())
        import_file(store, crlf, spec=files / "spec.toml")
        es = store.eval_sets()[0]
        texts = [store.response_view(r.response_id).response.text for r in store.browse(es.id)]
    assert "Online.\nThen confirm.\n\nDone." in texts and "By card,\nor in a store." in texts
    assert not any("\r" in t for t in texts)
