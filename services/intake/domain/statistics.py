"""Intake statistics as values: answer and hand-off shares per channel, hour and station, the
repeat-report rate, satisfaction and how consultations were answered (`queries.intake_statistics`
counts them).

- answered within 3 s: reports whose answer time is at most 3 s after the
  receive time, over all reports;
- handed off within 30 s: police reports (not merged) whose first accepted
  assignment is at most 30 s after the receive time, over all such reports;
- repeat-report rate: reports merged into another, over all reports;
- satisfaction rates: over the reports that were rated.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

ANSWER_TARGET = timedelta(seconds=3)
HAND_OFF_TARGET = timedelta(seconds=30)
RATINGS = ("SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED")


def share(part: int, whole: int) -> float:
    """part / whole to four places, 0 when there is nothing to divide by."""
    return round(part / whole, 4) if whole else 0.0


@dataclass
class Figures:
    reports: int = 0
    answered: int = 0
    answered_in_time: int = 0
    police: int = 0
    handed_off: int = 0
    handed_off_in_time: int = 0
    merged: int = 0

    @property
    def answered_share(self) -> float:
        return share(self.answered_in_time, self.reports)

    @property
    def handed_off_share(self) -> float:
        return share(self.handed_off_in_time, self.police)

    @property
    def repeat_rate(self) -> float:
        return share(self.merged, self.reports)


@dataclass
class Statistics:
    total: Figures
    channels: dict[str, Figures]
    hours: list[tuple[datetime, Figures]]
    stations: dict[str, Figures]
    satisfaction: dict[str, int]
    consultations: dict[str, int]
