"""The results screen's status line: what is under way (reading the results, and whatever else
a screen reports with `StatusLine.working`), where the numbers come from, whether the fit is
stale or failed with the key that refits, and the last thing that happened (a fit finished).

At most two lines; the parts a user acts on come first and are kept short enough that at 80
columns the source, the staleness and its key fit on the first."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from changeover.core.results import Results
from changeover.core.types import Source


class StatusLine(Static):
    """One status line; `working(key, text)` shows or (text None) clears an activity."""

    DEFAULT_CSS = "StatusLine { height: auto; max-height: 2; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.activities: dict[str, str] = {}  # key -> what is under way, in order of arrival
        self.data: Results | None = None
        self.status = ""

    def working(self, key: str, text: str | None) -> None:
        """Show `text` as under way (e.g. "loading the results..."), or stop showing `key`."""
        if text is None:
            self.activities.pop(key, None)
        else:
            self.activities[key] = text
        self.redraw()

    def show(self, data: Results | None, status: str) -> None:
        """The results shown, and the last event (`status`, "" for none)."""
        self.data, self.status = data, status
        self.redraw()

    def redraw(self) -> None:
        # Reading the results comes first (nothing else shows until they are in); the rest of
        # what is under way (preparing the model in the background) after what a user acts on.
        first = [text for key, text in self.activities.items() if key == "load"]
        later = [text for key, text in self.activities.items() if key != "load"]
        self.update(status_text(self.data, self.status, first, later))


def status_text(
    data: Results | None,
    status: str,
    activities: list[str] | None = None,
    later: list[str] | None = None,
) -> Text:
    """Where the numbers come from, whether the fit is stale or failed, and what to press;
    `activities` under way before all that, `later` ones after it."""
    text = _status(data, status, activities)
    for activity in later or ():
        text.append(" · " if text.plain else "")
        text.append(activity, style="bold")
    return text


def _status(data: Results | None, status: str, activities: list[str] | None) -> Text:
    text = Text()
    for activity in activities or ():
        text.append(activity, style="bold")
        text.append(" · ")
    if data is None:
        if status or not activities:
            text.append(status or "no results", style="bold")
        else:
            text.right_crop(3)
        return text
    fit = data.fit
    if data.source == Source.INSTANT:
        what = "instant posterior (unpooled, conjugate)"
        text.append(what + (" · i: the fit" if fit else " · no full fit yet: f fits"), style="bold")
    elif fit is not None:
        text.append(f"fit #{fit.id}, {fit.created_at[:16].replace('T', ' ')}")
        if fit.settings.is_quick:
            text.append(" (quick: a first look)")
    if data.stale and fit is not None:
        text.append(" · ")
        n = data.labels_since
        since = f"{n} label{'s' * (n != 1)} since" if n else "counts changed"
        if data.source == Source.UPDATED:
            text.append(f"stale: {since}, updated by {'it' if n == 1 else 'them'}", style="bold")
            text.append(" · f refits")
        elif data.source != Source.INSTANT:
            text.append(f"stale: {since}, too far to update · f refits", style="bold reverse")
    if data.failed:
        text.append(" · ")
        text.append("fit diagnostics failed (see calibration)", style="bold reverse")
    if status:
        text.append(" · " + status)
    return text
