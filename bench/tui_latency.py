"""How the terminal app feels on a million responses, beside the small sample workspace.

Measures, on each workspace: time to first paint of the app (a fresh process: interpreter,
imports, opening the workspace, first frame), time until the eval sets screen has its counts,
time to first paint of the browse screen (first page on screen) and until its row count is in,
and the time from a rating key to the screen showing its effect (200 keys; the last key of a
response brings the next response). Prints the figures and the ratio big / small.

    .venv/bin/python bench/tui_latency.py [--responses 1000000] [--keys 200] [--dir DIR]

The big workspace is generated once (through store.importing) and kept in DIR for reruns.
Targets: first paint < 1.5 s, rating latency median < 50 ms, big/small ratio < 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from changeover.core.store import Store  # noqa: E402
from changeover.core.types import EvalSet, Metric, Region  # noqa: E402
from changeover.core.workspace import Workspace  # noqa: E402

MODELS = ("incumbent", "cand-a", "cand-b", "cand-c", "cand-d")
REGIONS = (("NA", 30.0), ("EU", 25.0), ("LATAM", 10.0), ("APAC", 20.0), ("MEA", 5.0), ("UK", 10.0))
WORDS = (
    "account",
    "password",
    "refund",
    "order",
    "invoice",
    "device",
    "reset",
    "shipping",
    "plan",
    "upgrade",
    "cancel",
    "login",
    "settings",
    "support",
    "payment",
    "address",
)


def spec() -> EvalSet:
    return EvalSet(
        id=0,
        name="big",
        incumbent=MODELS[0],
        regions=tuple(Region(n, t) for n, t in REGIONS),
        metrics=(
            Metric("correct", ("no", "yes"), "higher", 0.03, "Is the answer right?", ("n", "y")),
            Metric("refused", ("no", "yes"), "match", 0.02, "Did it decline?", ("n", "y")),
            Metric(
                "style",
                ("1", "2", "3", "4", "5"),
                "higher",
                0.2,
                "Tone and clarity.",
                ("1", "2", "3", "4", "5"),
                pass_level=3,
            ),
        ),
    )


def generate(path: Path, responses: int, seed: int = 0) -> Path:
    """A workspace with `responses` responses (5 models), each judged on 3 metrics."""
    rng = random.Random(seed)
    items = responses // len(MODELS)
    with Store.open(path, create=True) as store:
        es = store.save_eval_set(spec())
        chunk = 20_000
        with store.importing(es.id) as batch:
            for start in range(0, items, chunk):
                rows, judged = [], []
                for k in range(start, min(items, start + chunk)):
                    ext = f"i{k:07d}"
                    region = REGIONS[k % len(REGIONS)][0]
                    q = f"How do I {rng.choice(WORDS)} my {rng.choice(WORDS)} ({k})?"
                    for model in MODELS:
                        text = " ".join(rng.choice(WORDS) for _ in range(12))
                        rows.append((ext, region, q, None, model, text))
                        judged.append(
                            (
                                ext,
                                model,
                                "correct",
                                "judge",
                                int(rng.random() < 0.8),
                                None,
                                None,
                                None,
                            )
                        )
                        judged.append(
                            (
                                ext,
                                model,
                                "refused",
                                "judge",
                                int(rng.random() < 0.05),
                                None,
                                None,
                                None,
                            )
                        )
                        judged.append(
                            (ext, model, "style", "judge", rng.randrange(5), None, None, "fine")
                        )
                batch.add_responses(rows)
                batch.add_judgments(judged)
    return path


def small_workspace(directory: Path) -> Path:
    """The sample workspace (sample_data/support.csv via core.demo), or a 3k generated one."""
    path = directory / "small.changeover"
    if path.exists():
        return path
    try:
        from changeover.core.demo import build_demo

        return build_demo(path)
    except Exception as exc:  # the demo is someone else's and may be mid-change
        print(f"(core.demo unavailable: {exc}; using a generated 3,000-response set)")
        return generate(path, 3_000)


# ---- measurements -----------------------------------------------------------------------

CHILD = r"""
import asyncio, sys, time, json
t_spawn = float(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from changeover.core.store import Store
from changeover.tui.app import ChangeoverApp
from changeover.tui.screens.eval_sets import EvalSetsScreen
from changeover.core.workspace import Workspace  # noqa: E402

async def main():
    store = Store.open(sys.argv[1])
    app = ChangeoverApp(Workspace(store), rater="bench", seed=1)
    frames = []
    real = app._display
    def spy(screen, update):
        real(screen, update)
        frames.append((time.time(), screen))
    app._display = spy
    async with app.run_test(size=(100, 30)) as pilot:
        while not any(isinstance(s, EvalSetsScreen) for _, s in frames):
            await asyncio.sleep(0.001)
        first = next(t for t, s in frames if isinstance(s, EvalSetsScreen)) - t_spawn
        await app.workers.wait_for_complete()
        await pilot.pause()
        counts = frames[-1][0] - t_spawn
    print(json.dumps({"first_paint": first, "counts": counts}))

asyncio.run(main())
"""


def first_paint(path: Path, runs: int = 3) -> dict:
    """Fresh-process time to the first frame written (best of `runs`), and to the counts."""
    best = None
    for _ in range(runs):
        t = time.time()
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), repr(t), str(ROOT)],
            capture_output=True,
            text=True,
            check=True,
        )
        got = json.loads(out.stdout.strip().splitlines()[-1])
        best = got if best is None or got["first_paint"] < best["first_paint"] else best
    return best


class Frames:
    """Times at which the app wrote a frame, and at which watched methods last ran."""

    def __init__(self, app):
        self.frames: list[float] = []
        self.marks: dict[str, float] = {}
        real = app._display

        def spy(screen, update):
            real(screen, update)
            self.frames.append(time.perf_counter())

        app._display = spy

    def watch(self, cls, name: str) -> None:
        """Note the time whenever `cls.name` (a method that changes what is on screen) ran."""
        real = getattr(cls, name)
        frames = self

        def spy(self, *args, **kwargs):
            out = real(self, *args, **kwargs)
            frames.marks[name] = time.perf_counter()
            return out

        setattr(cls, name, spy)

    async def frame_after(self, ready, t0: float, mark: str, timeout: float = 60.0) -> float:
        """Seconds from t0 to the first frame written after the change `ready()` waits for."""
        while not ready():
            await asyncio.sleep(0.0005)
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("nothing happened")
        changed = max(self.marks.get(mark, 0.0), t0)
        while not (self.frames and self.frames[-1] >= changed):
            await asyncio.sleep(0.0005)
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError("no frame")
        return next(t for t in self.frames if t >= changed) - t0


async def in_app(path: Path, keys: int) -> dict:
    from textual import events

    from changeover.tui.app import ChangeoverApp
    from changeover.tui.screens.browse import BrowseScreen
    from changeover.tui.screens.rate import RateScreen
    from changeover.tui.widgets.metric_prompt import metric_keys

    store = Store.open(path)
    app = ChangeoverApp(Workspace(store), rater=f"bench-{time.time_ns()}", seed=1)
    frames = Frames(app)
    frames.watch(BrowseScreen, "_fill")
    frames.watch(BrowseScreen, "_set_total")
    frames.watch(RateScreen, "refresh_panes")
    out: dict = {}
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()

        def send(key: str) -> float:
            t = time.perf_counter()
            app._driver.send_message(events.Key(key, key if len(key) == 1 else None))
            return t

        t = send("enter")
        out["browse_first_page"] = await frames.frame_after(
            lambda: isinstance(app.screen, BrowseScreen) and bool(app.screen.rows), t, "_fill"
        )
        browse = app.screen
        out["browse_count"] = await frames.frame_after(
            lambda: browse.total is not None, t, "_set_total"
        )
        await pilot.press("escape")
        await pilot.pause()

        t = send("r")
        out["rate_first_response"] = await frames.frame_after(
            lambda: isinstance(app.screen, RateScreen) and app.screen.view is not None,
            t,
            "refresh_panes",
        )
        rate = app.screen
        await pilot.pause()
        rng = random.Random(0)
        every, next_response = [], []
        for _ in range(keys):
            key = rng.choice(metric_keys(rate.metrics[rate.current]))
            before = (rate.view.response.id, len(rate.history))
            last = rate.current == len(rate.metrics) - 1
            if last:
                ready = lambda before=before: (  # noqa: E731
                    rate.view is not None and rate.view.response.id != before[0]
                )
            else:
                ready = lambda before=before: len(rate.history) > before[1]  # noqa: E731
            dt = await frames.frame_after(ready, send(key), "refresh_panes")
            every.append(dt)
            if last:
                next_response.append(dt)
            await pilot.pause()  # quiet before the next key, as a person's pace gives
        out["key_median"] = statistics.median(every)
        out["key_p95"] = statistics.quantiles(every, n=20)[-1]
        out["next_median"] = statistics.median(next_response)
        out["next_p95"] = statistics.quantiles(next_response, n=20)[-1]
        out["labels"] = len(rate.history)
    store.close()
    return out


def measure(path: Path, keys: int) -> dict:
    with Store.open(path, read_only=True) as s:
        es = s.eval_sets()[0]
        n = s.response_total(es.id)
    fig = {"responses": n, **first_paint(path)}
    fig.update(asyncio.run(in_app(path, keys)))
    return fig


ROWS = [
    ("first_paint", "app first paint (fresh process)", "s"),
    ("counts", "eval sets counts in", "s"),
    ("browse_first_page", "browse first page on screen", "s"),
    ("browse_count", "browse row count in", "s"),
    ("rate_first_response", "rate: first response shown", "s"),
    ("key_median", "rating key -> screen updated, median", "ms"),
    ("key_p95", "rating key -> screen updated, p95", "ms"),
    ("next_median", "last key -> next response, median", "ms"),
    ("next_p95", "last key -> next response, p95", "ms"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--responses", type=int, default=1_000_000)
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "changeover-bench")
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    big = args.dir / f"big-{args.responses}.changeover"
    if not big.exists():
        t = time.perf_counter()
        tmp = big.with_suffix(".partial")
        tmp.unlink(missing_ok=True)
        generate(tmp, args.responses)
        tmp.rename(big)
        print(f"generated {big} in {time.perf_counter() - t:.1f} s")
    small = small_workspace(args.dir)
    figures = {"small": measure(small, args.keys), "big": measure(big, args.keys)}
    s, b = figures["small"], figures["big"]
    print(f"\n{'':42} {'small':>10} {'big':>10} {'big/small':>10}")
    print(f"{'responses':42} {s['responses']:>10,} {b['responses']:>10,}")
    for key, label, unit in ROWS:
        scale = 1000 if unit == "ms" else 1
        print(
            f"{label:42} {s[key] * scale:>9.3f}{unit[0]} {b[key] * scale:>9.3f}{unit[0]} "
            f"{b[key] / s[key]:>10.2f}"
        )
    print(
        f"\ntargets: first paint < 1.5 s (big: {b['first_paint']:.2f} s); rating median < 50 ms "
        f"(big: {b['next_median'] * 1000:.1f} ms to the next response); "
        f"ratio < 1.5 (next response: {b['next_median'] / s['next_median']:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
