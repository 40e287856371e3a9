"""Hypothesis strategies for hostile input files (a module the hostile-CLI tests share, not a test
file): CSV, JSONL and Parquet responses files, specs and label files made of bytes, encodings,
huge numbers, lone surrogates, control characters, colliding names and truncations.

Each strategy draws an `Input`: the files to write and the command line that imports them."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import strategies as st

SPEC = """name = "hx"
incumbent = "old"
[regions]
EU = 3000000
US = 1000000
[[metrics]]
name = "correct"
levels = ["no", "yes"]
[[metrics]]
name = "style"
levels = ["1", "2", "3"]
"""
COLUMNS = [
    "item_id",
    "region",
    "question",
    "model",
    "response",
    "judge_correct",
    "judge_style",
    "judge_style_score",
    "judge_correct_rationale",
    "rater",
    "human_correct",
    "reference",
]
ESCAPES = [
    "\x1b]52;c;cm0gLXJmIH4vKg==\x07",  # OSC 52: write the clipboard
    "\x1b]0;PWNED\x07",  # OSC 0: retitle the window
    "\x1b[2J\x1b[H",
    "\x9b31m",  # an 8-bit CSI
    "\u202eevil",
    "\x00",
    "\x7f",
    "\r",
]
NUMBERS = [
    "9" * 400,
    "9" * 4301,
    "-" + "1" * 5000,
    "1e400",
    "-1e-400",
    "NaN",
    "inf",
    "0x1F",
    "3.0",
    "1_000",
]
HOSTILE = st.one_of(
    st.sampled_from(ESCAPES),
    st.sampled_from(NUMBERS),
    st.sampled_from(["", " ", "yes", "no", "y", "2", "EU", "US", "old", "new", "q1", "p1"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12),
    st.builds(
        lambda a, b: a + b, st.sampled_from(ESCAPES), st.sampled_from(["x", "judge_", "[b]"])
    ),
)
NAMES = st.one_of(
    st.sampled_from(COLUMNS),
    st.builds(lambda e, c: c + e, st.sampled_from(ESCAPES), st.sampled_from(COLUMNS)),
    st.sampled_from(["judge_\x1b[2J", "human_\u202eevil", "", " ", "a,b", '"q"', "x" * 300]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
)


@dataclass
class Input:
    """Files to write (name -> bytes, or a pyarrow table for Parquet) and the command's
    arguments after the workspace ({dir} stands for the folder they are written to)."""

    files: dict[str, bytes | pa.Table] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)
    command: str = "import"

    def write(self, folder) -> list[str]:
        for name, data in self.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, pa.Table):
                pq.write_table(data, folder / name)
            else:
                (folder / name).write_bytes(data)
        return [a.replace("{dir}", str(folder)) for a in self.args]


@st.composite
def mangled(draw, data: bytes) -> bytes:
    """The bytes as they are, or cut short, or with bytes that are not UTF-8, a NUL, a BOM,
    or the whole file in UTF-16."""
    how = draw(st.sampled_from(["as is"] * 4 + ["cut", "bad byte", "nul", "bom", "utf-16"]))
    if how == "cut" and data:
        return data[: draw(st.integers(0, len(data) - 1))]
    if how in ("bad byte", "nul"):
        at = draw(st.integers(0, len(data)))
        return data[:at] + (b"\xff\xfe" if how == "bad byte" else b"\x00") + data[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" + data
    if how == "utf-16":
        return data.decode("utf-8", "replace").encode("utf-16")
    return data


def _valid_rows(draw) -> list[dict[str, str]]:
    rows = []
    for k in range(draw(st.integers(1, 3))):
        for model in ("old", "new"):
            rows.append(
                {
                    "item_id": f"q{k}",
                    "region": "EU",
                    "question": f"Question {k}?",
                    "model": model,
                    "response": f"Answer {k} of {model}.",
                    "judge_correct": "yes",
                    "judge_style": "2",
                }
            )
    return rows


@st.composite
def table_rows(draw) -> tuple[list[str], list[dict[str, str]]]:
    """Columns and rows: valid ones with hostile values and names mixed in."""
    rows = _valid_rows(draw)
    columns = list(rows[0])
    for _ in range(draw(st.integers(0, 3))):
        columns.append(draw(NAMES))
    if draw(st.booleans()):
        columns.remove(draw(st.sampled_from(columns)))
    for _ in range(draw(st.integers(0, 4))):
        row = draw(st.sampled_from(rows))
        row[draw(st.sampled_from(columns))] = draw(HOSTILE)
    return columns, rows


@st.composite
def csv_input(draw) -> Input:
    columns, rows = draw(table_rows())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    data = draw(mangled(out.getvalue().encode("utf-8", "surrogatepass")))
    return Input(
        {"in.csv": data, "spec.toml": SPEC.encode()}, ["{dir}/in.csv", "--spec", "{dir}/spec.toml"]
    )


JSON_VALUES = st.one_of(
    HOSTILE.map(json.dumps),
    st.sampled_from(NUMBERS[:3] + ["1e400", "-0", "true", "null", "[1, 2]", '{"a": 1}']),
    st.sampled_from(['"\\ud800"', '"a\\udfffb"', '"\\ud83d\\ude00"', '"\\u001b]0;x\\u0007"']),
)


@st.composite
def jsonl_input(draw) -> Input:
    columns, rows = draw(table_rows())
    lines = []
    for row in rows:
        pairs = [f"{json.dumps(c)}: {json.dumps(row.get(c, ''))}" for c in columns]
        for _ in range(draw(st.integers(0, 1))):
            pairs.append(f"{json.dumps(draw(st.sampled_from(columns)))}: {draw(JSON_VALUES)}")
        lines.append("{" + ", ".join(pairs) + "}")
    for _ in range(draw(st.integers(0, 2))):
        odd = draw(st.sampled_from(["[1, 2]", "3", "null", "garbage", "", '{"a": ', '"\\ud800"']))
        lines.insert(draw(st.integers(0, len(lines))), odd)
    data = draw(mangled(("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")))
    return Input(
        {"in.jsonl": data, "spec.toml": SPEC.encode()},
        ["{dir}/in.jsonl", "--spec", "{dir}/spec.toml"],
    )


@st.composite
def parquet_input(draw) -> Input:
    columns, rows = draw(table_rows())
    arrays = {}
    for c in dict.fromkeys(columns):
        values = [row.get(c, "") for row in rows]
        kind = draw(
            st.sampled_from(["text"] * 4 + ["bytes", "int", "float", "list", "struct", "null"])
        )
        if kind == "bytes":
            raw = [v.encode("utf-8", "surrogatepass") for v in values]
            if draw(st.booleans()):
                raw[draw(st.integers(0, len(raw) - 1))] = draw(st.binary(min_size=1, max_size=6))
            arrays[c] = pa.array(raw, pa.binary())
        elif kind == "int":
            arrays[c] = pa.array(
                [draw(st.integers(-(2**63), 2**63 - 1)) for _ in values], pa.int64()
            )
        elif kind == "float":
            arrays[c] = pa.array([draw(st.floats(allow_nan=True)) for _ in values], pa.float64())
        elif kind == "list":
            arrays[c] = pa.array([[v] for v in values], pa.list_(pa.string()))
        elif kind == "struct":
            arrays[c] = pa.array([{"v": v} for v in values])
        elif kind == "null":
            arrays[c] = pa.nulls(len(values))
        else:
            arrays[c] = pa.array(
                [v.encode("utf-8", "replace").decode() for v in values], pa.string()
            )
    table = pa.table(arrays)
    return Input(
        {"in.parquet": table, "spec.toml": SPEC.encode()},
        ["{dir}/in.parquet", "--spec", "{dir}/spec.toml"],
    )


def _toml(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, a lone surrogate aside)."""
    return json.dumps(text)


@st.composite
def spec_input(draw) -> Input:
    """A responses file that is fine, with a spec that is not: hostile names, huge numbers,
    colliding metric columns, escapes, truncation."""
    name = draw(st.one_of(st.just("hx"), HOSTILE))
    region = draw(st.one_of(st.just("EU"), HOSTILE))
    traffic = draw(
        st.sampled_from(["3000000", "9" * 400, "9" * 4400, "1e400", "inf", "-1", '"x"', "0"])
    )
    metric = draw(
        st.sampled_from(["correct", "style_score", "correct_rationale", "x\x1b[2J", "1bad"])
    )
    levels = draw(
        st.sampled_from(
            ['["no", "yes"]', '["1", "2", "3"]', '["a"]', '["\\u001b]0;t\\u0007", "b"]']
        )
    )
    extra = draw(
        st.sampled_from(
            [
                "",
                "margin = 1e999\n",
                'keys = ["\\u001b", "y"]\n',
                "pass_level = 99999999999999999999999\n",
                '[metrics.judge_map]\n"\\u001b]52;c;x\\u0007" = "yes"\n',
            ]
        )
    )
    text = (
        f'name = {_toml(name)}\nincumbent = "old"\n[regions]\n{_toml(region)} = {traffic}\n'
        f'US = 1\n[[metrics]]\nname = "correct"\nlevels = ["no", "yes"]\n'
        f"[[metrics]]\nname = {_toml(metric)}\nlevels = {levels}\n{extra}"
    )
    data = draw(mangled(text.encode("utf-8", "surrogatepass")))
    body = "item_id,region,question,model,response,judge_correct\nq1,EU,Q?,old,A.,yes\nq1,EU,Q?,new,B.,no\n"
    return Input(
        {"in.csv": body.encode(), "spec.toml": data}, ["{dir}/in.csv", "--spec", "{dir}/spec.toml"]
    )


@st.composite
def labels_input(draw) -> Input:
    """Labels for the workspace's eval set 'prior' (items p0..p2, models old and new)."""
    columns = ["item_id", "model", "metric", "rater", "value"]
    if draw(st.booleans()):
        columns.append("created_at")
    for _ in range(draw(st.integers(0, 2))):
        columns.append(draw(NAMES))
    rows = []
    for k in range(draw(st.integers(1, 4))):
        row = {
            "item_id": f"p{k % 3}",
            "model": "new",
            "metric": "correct",
            "rater": "bob",
            "value": "yes",
            "created_at": "2026-01-02T03:04:05",
        }
        for _ in range(draw(st.integers(0, 2))):
            row[draw(st.sampled_from(columns))] = draw(HOSTILE)
        rows.append(row)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(c, "") for c in columns])
    data = draw(mangled(out.getvalue().encode("utf-8", "surrogatepass")))
    return Input({"labels.csv": data}, ["{dir}/labels.csv"], command="import-labels")


ANY_INPUT = st.one_of(csv_input(), jsonl_input(), parquet_input(), spec_input(), labels_input())
