"""Import Inspect AI logs that Inspect itself wrote: a tiny task, run on two mock models.

The logs come from `inspect_ai.eval` with the built-in `mockllm` provider (custom outputs per
"model", so the two answer differently) and two scorers: Inspect's `match` and a scorer whose
value is a dict. No network is needed.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest

from changeover.cli.main import main
from changeover.core.importing.inspect_logs import import_logs, is_inspect_log
from changeover.core.importing.responses import ImportFailed
from changeover.core.settings import Settings
from changeover.core.store import Store
from changeover.core.types import UsageError
from changeover.core.workspace import Workspace

pytestmark = [
    # looked up, not imported: Inspect takes 1.5 s to import, on a worker that may run none of these
    pytest.mark.skipif(find_spec("inspect_ai") is None, reason="inspect_ai is not installed"),
    # Inspect's own retry setup warns on every run with this tenacity; nothing of ours
    pytest.mark.filterwarnings("ignore:The 'initial' parameter is deprecated"),
    pytest.mark.xdist_group("import_inspect"),  # one worker runs Inspect for the logs, once
]
REGIONS = ("Europe", "Americas")
N_ITEMS = 24

SPEC = """name = "arith"
incumbent = "acme-1"
judge = "inspect"

regions = { Europe = 2_000, Americas = 1_000 }

[[metrics]]
name = "correct"
levels = ["no", "yes"]
direction = "higher"
margin = 0.05
[metrics.judge_map]
C = "yes"
I = "no"

[[metrics]]
name = "tone"
levels = ["1", "2", "3"]
direction = "higher"
margin = 0.3

[inspect]
region = "metadata.market.region"
[inspect.scorers]
correct = "match"
tone = "grader.tone"
[inspect.models]
"mockllm/acme-1" = "acme-1"
"mockllm/acme-2" = "acme-2"
"""


def _wrong(i: int) -> bool:
    return i % 3 == 0


def _run(log_dir: Path, model: str, fmt: str, epochs: int = 1, fail: int | None = None) -> Path:
    """One Inspect run of the arithmetic task on a mock model; returns its log file."""
    from inspect_ai import Task, eval
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage
    from inspect_ai.scorer import Score, Target, accuracy, match, mean, scorer
    from inspect_ai.solver import TaskState, generate

    @scorer(metrics={"tone": [mean()]})
    def grader():
        async def score(state: TaskState, target: Target) -> Score:
            polite = state.output.completion.startswith("Sure")
            return Score(
                value={"tone": 3 if polite else 1, "length": len(state.output.completion)},
                explanation="polite opening" if polite else "curt",
            )

        return score

    samples = [
        Sample(
            id=f"q{i}",
            input=f"What is {i} plus {i}?",
            target=str(2 * i),
            metadata={"market": {"region": REGIONS[i % 2]}},
        )
        for i in range(N_ITEMS)
    ]
    second = model.endswith("2")

    def answer(messages, tools, tool_choice, config):
        i = int(messages[-1].text.split()[2])
        if fail is not None and i == fail:
            raise RuntimeError("the mock model broke down")
        value = 2 * i + 1 if second and _wrong(i) else 2 * i
        text = f"Sure! {value}" if not second else f"{value}"
        out = ModelOutput.from_content(model="mockllm", content=text)
        out.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)  # no tokenizer
        return out

    task = Task(
        dataset=samples,
        solver=generate(),
        scorer=[match(location="end"), grader()],
        metrics=[accuracy()],
    )
    logs = eval(
        task,
        model=model,
        model_args={"custom_outputs": answer},
        log_dir=str(log_dir),
        log_format=fmt,
        display="none",
        epochs=epochs,
        fail_on_error=False,
    )
    assert logs[0].status == "success", logs[0].error
    return Path(logs[0].location)


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> dict[str, Path]:
    """Logs of acme-1 (.eval), acme-2 (.json), a two-epoch run and a run with a failed sample."""
    root = tmp_path_factory.mktemp("inspect")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_DATA_HOME", str(root / "data"))  # Inspect's traces stay in the test
        mp.setenv("INSPECT_LOG_DIR", str(root / "logs"))
        return {
            "a": _run(root / "a", "mockllm/acme-1", "eval"),
            "b": _run(root / "b", "mockllm/acme-2", "json"),
            "epochs": _run(root / "e", "mockllm/acme-2", "eval", epochs=2),
            "failed": _run(root / "f", "mockllm/acme-2", "eval", fail=5),
        }


@pytest.fixture
def spec(tmp_path) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(SPEC)
    return path


def _rows(ws: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(ws) as con:
        return con.execute(sql).fetchall()


def _judged(ws: Path) -> dict[tuple[str, str, str], tuple]:
    rows = _rows(
        ws,
        "SELECT i.external_id, r.model, j.metric, j.value, j.raw, j.score, j.rationale "
        "FROM judgments j JOIN responses r ON r.id = j.response_id JOIN items i ON i.id = r.item_id",
    )
    return {(r[0], r[1], r[2]): r[3:] for r in rows}


def test_two_logs_import_as_one_eval_set(logs, spec, tmp_path):
    ws = tmp_path / "ws.changeover"
    with Store.open(ws, create=True) as store:
        report = import_logs(store, [logs["a"], logs["b"]], spec)
    assert report.models == ("acme-1", "acme-2")
    assert (report.items, report.responses) == (N_ITEMS, 2 * N_ITEMS)
    assert report.added["judgments"] == 2 * 2 * N_ITEMS
    items = _rows(ws, "SELECT external_id, region, question, reference FROM items")
    assert sorted(items)[:2] == [
        ("q0", "Europe", "What is 0 plus 0?", "0"),
        ("q1", "Americas", "What is 1 plus 1?", "2"),
    ]
    judged = _judged(ws)
    for i in range(N_ITEMS):
        # acme-1 is always right and polite; acme-2 is wrong on every third item and curt
        assert judged[(f"q{i}", "acme-1", "correct")][:2] == (1, "C")
        right = 0 if _wrong(i) else 1
        assert judged[(f"q{i}", "acme-2", "correct")][:2] == (right, "CI"[1 - right])
        assert judged[(f"q{i}", "acme-1", "tone")] == (2, "3", 3.0, "polite opening")
        assert judged[(f"q{i}", "acme-2", "tone")] == (0, "1", 1.0, "curt")
    texts = dict(
        _rows(
            ws,
            "SELECT r.model || ':' || i.external_id, r.text "
            "FROM responses r JOIN items i ON i.id = r.item_id",
        )
    )
    assert (texts["acme-1:q3"], texts["acme-2:q3"], texts["acme-2:q4"]) == ("Sure! 6", "7", "8")


def test_the_format_is_told_by_the_file(logs, spec, tmp_path):
    assert is_inspect_log(logs["a"]) and is_inspect_log(logs["b"])
    jsonl = tmp_path / "rows.json"
    jsonl.write_text('{"version": 2, "status": "success", "item_id": "x"}\n')
    assert not is_inspect_log(jsonl)  # a JSONL file named .json is read as rows
    with Workspace.open(tmp_path / "ws.changeover", create=True) as ws:
        first = ws.import_file(logs["a"], spec)  # no format given: told by the file
        second = ws.import_file([logs["b"]], spec)
        with pytest.raises(UsageError, match="several files import together only as Inspect"):
            ws.import_file([logs["a"], jsonl], spec)
    assert (first.models, second.models) == (("acme-1",), ("acme-2",))
    assert second.added["responses"] == N_ITEMS


def test_cli_imports_logs_together_and_twice_adds_nothing(logs, spec, tmp_path, capsys):
    ws = tmp_path / "ws.changeover"
    args = ["import", str(ws), str(logs["a"]), str(logs["b"]), "--spec", str(spec)]
    assert main(args) == 0
    assert f"imported {2 * N_ITEMS} responses" in capsys.readouterr().out
    assert main([*args, "--from", "inspect"]) == 0
    assert "nothing new" in capsys.readouterr().out
    assert _rows(ws, "SELECT count(*) FROM responses") == [(2 * N_ITEMS,)]


def test_a_broken_log_imports_nothing(logs, spec, tmp_path, capsys):
    ws = tmp_path / "ws.changeover"
    with Store.open(ws, create=True) as store:
        import_logs(store, [logs["a"]], spec)
    before = (
        _rows(ws, "SELECT count(*) FROM responses"),
        _rows(ws, "SELECT count(*) FROM judgments"),
    )
    broken = tmp_path / "broken.eval"
    broken.write_bytes(logs["b"].read_bytes()[:200])  # a cut-off download
    json_b = tmp_path / "acme-2.json"
    shutil.copy(logs["b"], json_b)
    code = main(["import", str(ws), str(json_b), str(broken), "--spec", str(spec)])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{broken}: cannot read as an Inspect log" in err
    assert "nothing imported" in err and "Traceback" not in err
    after = _rows(ws, "SELECT count(*) FROM responses"), _rows(ws, "SELECT count(*) FROM judgments")
    assert after == before  # acme-2's good log was not written either


def test_problems_name_the_log_and_the_sample(logs, spec, tmp_path):
    spec.write_text(SPEC.replace('I = "no"\n', ""))  # acme-2's wrong answers ("I") map nowhere
    ws = tmp_path / "ws.changeover"
    with Store.open(ws, create=True) as store, pytest.raises(ImportFailed) as exc:
        import_logs(store, [logs["a"], logs["b"]], spec)
    wrong = [i for i in range(N_ITEMS) if _wrong(i)]
    assert exc.value.total == len(wrong)
    for i, problem in zip(wrong, exc.value.problems):
        assert str(problem).startswith(
            f"{logs['b']}: sample q{i}: judge_correct: 'I' is not a level"
        )
    assert not ws.exists() or _rows(ws, "SELECT count(*) FROM responses") == [(0,)]


def test_a_sample_that_failed_in_inspect(logs, spec, tmp_path):
    ws = tmp_path / "ws.changeover"
    with Store.open(ws, create=True) as store, pytest.raises(ImportFailed) as exc:
        import_logs(store, [logs["a"], logs["failed"]], spec)
    assert [str(p) for p in exc.value.problems] == [
        f"{logs['failed']}: sample q5: response: the sample failed in Inspect: "
        "\"RuntimeError('the mock model broke down')\""
    ]


def test_several_epochs_need_one_chosen(logs, spec, tmp_path):
    ws = tmp_path / "ws.changeover"
    with Store.open(ws, create=True) as store:
        with pytest.raises(ImportFailed, match="the log has 2 epochs"):
            import_logs(store, [logs["a"], logs["epochs"]], spec)
        spec.write_text(SPEC.replace("[inspect]\n", "[inspect]\nepoch = 2\n"))
        report = import_logs(store, [logs["a"], logs["epochs"]], spec)
    assert report.responses == 2 * N_ITEMS


def test_spec_problems_name_their_line(logs, spec, tmp_path):
    spec.write_text(SPEC.replace('tone = "grader.tone"', 'tone = "grader.tone"\nstyle = "x"'))
    ws = tmp_path / "ws.changeover"
    with Store.open(ws, create=True) as store, pytest.raises(ImportFailed) as exc:
        import_logs(store, [logs["a"]], spec)
    line = SPEC.splitlines().index('tone = "grader.tone"') + 2
    assert str(exc.value.problems[0]) == (
        f"{spec}:{line}: inspect.scorers.style: not a metric of the spec (correct, tone)"
    )


def test_a_dict_score_needs_a_key(logs, spec, tmp_path):
    spec.write_text(SPEC.replace('tone = "grader.tone"', 'tone = "grader"'))
    ws = tmp_path / "ws.changeover"
    with Store.open(ws, create=True) as store, pytest.raises(ImportFailed) as exc:
        import_logs(store, [logs["a"]], spec)
    assert exc.value.total == N_ITEMS
    assert 'name one of its values under [inspect.scorers], e.g. tone = "grader.KEY"' in str(
        exc.value
    )


def test_without_the_extra_the_command_says_how_to_install_it(
    logs, spec, tmp_path, capsys, monkeypatch
):
    monkeypatch.setitem(sys.modules, "inspect_ai", None)  # import inspect_ai raises ImportError
    monkeypatch.setitem(sys.modules, "inspect_ai.log", None)
    ws = tmp_path / "ws.changeover"
    code = main(["import", str(ws), str(logs["a"]), "--spec", str(spec)])
    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "changeover: reading Inspect AI logs needs the inspect extra: "
        "pip install 'changeover[inspect]'\n"
    )
    assert not ws.exists()


@pytest.mark.slow
def test_imported_logs_fit(logs, spec, tmp_path):
    """Inspect's logs, then human labels for some responses, then a real (quick) fit."""
    one_metric = SPEC.split('[[metrics]]\nname = "tone"')[0] + SPEC.split("margin = 0.3\n")[1]
    spec.write_text(one_metric.replace('tone = "grader.tone"\n', ""))  # the fit costs per metric
    labels = tmp_path / "labels.csv"
    rows = ["item_id,model,metric,rater,value"]
    for i in range(0, N_ITEMS, 2):  # half the responses of each model and region
        rows.append(f"q{i},acme-1,correct,ana,yes")
        rows.append(f"q{i},acme-2,correct,ana,{'no' if _wrong(i) else 'yes'}")
    labels.write_text("\n".join(rows) + "\n")
    with Workspace.open(tmp_path / "ws.changeover", create=True) as ws:
        ws.import_file([logs["a"], logs["b"]], spec)
        es = ws.eval_set("arith")
        assert ws.import_labels(labels, es).added["ratings"] == N_ITEMS
        fit = ws.fit(es, Settings.quick(seed=3, draws=200, tune=200))
        results = ws.results(es, fit_id=fit.id)
    [correct] = results.metrics
    assert results.models == ("acme-1", "acme-2") and results.source == "full"
    assert {r.region for r in correct.rows} == {*REGIONS, "overall"}
    overall = correct.rows[-1]
    # acme-1 is always right, acme-2 wrong on a third of the items (judge and humans agree)
    assert overall.cell("acme-1").value.mean > 0.85
    assert 0.5 < overall.cell("acme-2").value.mean < 0.8
    assert [c.candidate for c in results.candidates] == ["acme-2"]


def test_the_readme_example_spec_reads(tmp_path):
    from changeover.core.importing.inspect_logs import load_options
    from changeover.core.importing.spec import load_spec

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Inspect AI logs", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    spec = tmp_path / "spec.toml"
    spec.write_text('name = "acme"\nincumbent = "gpt-4o"\n[regions]\nEU = 1\nUS = 1\n' + example)
    options = load_options(spec, load_spec(spec))
    assert options.region == ("metadata", "region") and options.epoch == 1
    assert options.scorers == {"correct": "match"}
    assert options.models == {"openai/gpt-4o": "gpt-4o"}
