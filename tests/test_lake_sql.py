"""The README's SQL for the counts and the sample, run as written on DuckDB and on Apache Spark
over the same Parquet files: both must give exactly the counts polars stores for a dataset
import, and `import-counts` of their output must store the same counts."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import polars as pl
import pytest
from helpers_lake import small_lake

from changeover.core.workspace import Workspace

README = Path(__file__).resolve().parents[1] / "README.md"
PER_LEVEL = 10  # the README's sample takes 100 per level; the tests' lake is small


def readme_sql(name: str) -> str:
    """The ```sql block of the README whose first line is `-- NAME: ...`."""
    for block in re.findall(r"```sql\n(.*?)```", README.read_text(), re.S):
        if block.startswith(f"-- {name}:"):
            return block
    raise AssertionError(f"the README has no {name} block")


def sample_sql() -> str:
    sql = readme_sql("sample.sql")
    assert "pick <= 100" in sql
    return sql.replace("pick <= 100", f"pick <= {PER_LEVEL}")


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> tuple[Path, Path, set[tuple]]:
    """A lake, and the counts polars stores for it: (metric, model, region, level, n)."""
    folder = tmp_path_factory.mktemp("sql-lake")
    spec = small_lake(folder, rows=4_000)
    ws = Workspace.memory()
    es = ws.import_dataset(folder, spec, sample_per_cell=6).eval_set
    stored = {(c.metric, c.model, c.region, c.level, c.n) for c in ws.store.aggregate_counts(es.id)}
    return folder, spec, stored


def raw_polars_counts(folder: Path) -> set[tuple]:
    """(model, region, metric, raw judge value, count) straight from polars."""
    df = pl.scan_parquet(folder / "**" / "*.parquet", hive_partitioning=True)
    out: set[tuple] = set()
    for metric in ("correct", "refused", "style"):
        grouped = (
            df.group_by("model", pl.col("region").cast(pl.String), f"judge_{metric}")
            .len()
            .collect()
        )
        out |= {(m, r, metric, str(v), n) for m, r, v, n in grouped.iter_rows()}
    return out


def import_engine_output(tmp: Path, spec: Path, counts: list[tuple], sample: pl.DataFrame):
    """Write an engine's counts and sample as files and import them: the stored counts."""
    counts_file, sample_file = tmp / "counts.csv", tmp / "sample.csv"
    pl.DataFrame(
        counts, schema=["model", "region", "metric", "judge_level", "count"], orient="row"
    ).write_csv(counts_file)
    sample.write_csv(sample_file)
    ws = Workspace.memory()
    report = ws.import_counts(counts_file, spec, sample=sample_file, period="2026-11")
    es = report.eval_set
    assert es.name == "lake@2026-11" and report.source.kind == "counts"
    assert ws.summary(es, with_results=False).stats.responses == sample.height
    return {(c.metric, c.model, c.region, c.level, c.n) for c in ws.store.aggregate_counts(es.id)}


def check_sample(sample: pl.DataFrame) -> None:
    per = sample.group_by("model", "region", "judge_correct").len()
    assert per.height == 5 * 6 * 2 and set(per["len"]) == {PER_LEVEL}


def test_duckdb_runs_the_readmes_sql_and_counts_as_polars(lake, tmp_path):
    duckdb = pytest.importorskip("duckdb", reason="duckdb is in the test extra")
    folder, spec, stored = lake
    con = duckdb.connect()
    glob = str(folder / "**" / "*.parquet").replace("'", "''")
    con.execute(
        "CREATE VIEW judged_responses AS SELECT * FROM "
        f"read_parquet('{glob}', hive_partitioning = true)"
    )
    counts = con.execute(readme_sql("counts.sql")).fetchall()
    assert set(counts) == raw_polars_counts(folder)
    cur = con.execute(sample_sql())
    names = [d[0] for d in cur.description]
    sample = pl.DataFrame(cur.fetchall(), schema=names, orient="row")
    check_sample(sample)
    assert import_engine_output(tmp_path, spec, counts, sample) == stored


@pytest.fixture(scope="module")
def spark():
    pyspark = pytest.importorskip("pyspark", reason="pyspark is in the test extra")
    if shutil.which("java") is None:
        pytest.skip("no Java runtime: Spark cannot start (.ci/run installs one)")
    try:
        from pyspark.sql import SparkSession

        session = (
            SparkSession.builder.master("local[1]")
            .appName("changeover-test")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.driver.memory", "512m")
            .getOrCreate()
        )
    except Exception as exc:  # a JVM that will not start: say why
        pytest.skip(f"Spark (pyspark {pyspark.__version__}) cannot start here: {exc}")
    yield session
    session.stop()


@pytest.mark.slow  # a JVM start: 30-80 s on the shared 2-core machine
@pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")
def test_spark_runs_the_readmes_sql_and_counts_as_polars(lake, spark, tmp_path):
    folder, spec, stored = lake
    spark.read.parquet(str(folder)).createOrReplaceTempView("judged_responses")
    counts = [tuple(row) for row in spark.sql(readme_sql("counts.sql")).collect()]
    assert set(counts) == raw_polars_counts(folder)
    result = spark.sql(sample_sql())
    rows = [tuple(r) for r in result.collect()]
    sample = pl.DataFrame(rows, schema=result.columns, orient="row")
    check_sample(sample)
    assert import_engine_output(tmp_path, spec, counts, sample) == stored
