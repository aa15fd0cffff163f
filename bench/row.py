"""One line of `make bench`'s table: run.py and each section module make them."""

from __future__ import annotations

from dataclasses import dataclass

TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, what was measured, and its target (a maximum, or with `at_least` a
    minimum); no target means reported only."""

    figure: str
    measured: str
    value: float
    target: float | None = None
    at_least: bool = False
    unit: str = TIMES

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.at_least else self.value <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return "(reported)"
        return f"{'≥' if self.at_least else '≤'} {self.target:g}{self.unit}"

    def value_text(self) -> str:
        """The figure alone (the ratio, or the megabytes), for the README's short table; a ratio that two decimals
        would round onto its target (1.153 against 1.15) gets a third, so that its pass or fail can be read."""
        if self.unit == " MB":
            return f"{self.value:.0f}{self.unit}"
        digits = 3 if self.target is not None and round(self.value, 2) == self.target else 2
        return f"{self.value:.{digits}f}{self.unit}"

    def result_text(self) -> str:
        return {None: "", True: "pass", False: "FAIL"}[self.passed]
