"""The study report committed in docs/study/ reads as a careful reviewer would need it to: each
verdict follows from its own interval, every part of every hypothesis is judged, a hypothesis
is confirmed only when all its parts are, and an open one says what deciding it would take.
The rules are restated here from the README, independently of the code that wrote the report."""

import re
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "docs" / "study" / "report.md"
LOWER_IS_BETTER = ("loss", "seconds")  # the metrics whose improvement is a fall
NUMBER = r"([+-]?\d+(?:\.\d+)?)"
INTERVAL = re.compile(NUMBER + r"(?: pts)? \[" + NUMBER + ", " + NUMBER + r"\]")
PART = re.compile(r", (\w+): (.+?) \(margin ([\d.]+)(?: pts)?\)$")


def _hypothesis_rows() -> list[list[str]]:
    text = REPORT.read_text(encoding="utf-8")
    section = text.split("## Hypotheses and verdicts", 1)[1].split("\n## ", 1)[0]
    table = section.split("| --- |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split(" | ") for line in table.strip().splitlines()[1:]]
    return [[cell.strip(" |") for cell in row] for row in rows]


def _expected(direction: str, low: float, high: float, margin: float) -> str:
    if direction == "better by more than the margin":
        return "confirmed" if low > margin else "refuted" if high < margin else "inconclusive"
    if direction == "within the margin either way":
        inside = -margin <= low and high <= margin
        outside = low > margin or high < -margin
        return "confirmed" if inside else "refuted" if outside else "inconclusive"
    raise AssertionError(f"a direction this check does not know yet: {direction!r}")


def test_every_verdict_of_the_committed_report_follows_from_its_interval():
    rows = _hypothesis_rows()
    assert rows, "the report judges no hypothesis"
    hypotheses: list[tuple[str, list[str]]] = []
    for step, _, part, measured, part_verdict, verdict, holm in rows:
        if step:
            hypotheses.append((verdict, []))
            assert holm in ("confirmed", "refuted") or holm.startswith("inconclusive"), holm
        metric, direction, margin = PART.search(part).groups()
        diff, low, high = map(float, INTERVAL.search(measured).groups())
        assert low <= diff <= high, measured
        if any(word in metric for word in LOWER_IS_BETTER):
            low, high = -high, -low  # as an improvement: a fall in time or loss
        expected = _expected(direction, low, high, float(margin))
        assert part_verdict.split(" ")[0] == expected, (part, measured, part_verdict)
        if expected == "inconclusive":
            assert "seeds per arm" in part_verdict, f"an open part without seeds needed: {part}"
        hypotheses[-1][1].append(expected)
    for verdict, parts in hypotheses:
        whole = (
            "confirmed"
            if all(p == "confirmed" for p in parts)
            else "refuted"
            if "refuted" in parts
            else "inconclusive"
        )
        assert verdict.split(" ")[0] == whole, (verdict, parts)
