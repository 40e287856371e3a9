"""Where the app goes with an eval set: the screens the start screen and the command palette
open (tui/app.py builds each)."""

from enum import StrEnum


class Route(StrEnum):
    BROWSE = "browse"
    RATE = "rate"
    RESULTS = "results"
    CALIBRATION = "calibration"
