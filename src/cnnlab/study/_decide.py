"""Seeds spent where a question is still open: `cnnlab study --until-decided`.

    plan = Sequential(start=3, cap=9)   # looks at 3, 6 and 9 seeds per arm: plan.looks == 3
    rounds = until_decided(judge, extend, {"study/4-regularization": plan})

After the steps have run, every hypothesis is judged. Each part still open (inconclusive) gets a
round of seeds on both variants it compares (the same new seeds on both, so they stay paired),
and the hypotheses are judged again, until each is decided or its arms reach the cap.

The stopping rule. Judging the same question after every round and stopping at the first
decision gives a false claim several chances to be confirmed. A step judged this way plans its
looks in advance (K: its first seeds, then rounds of as many again, up to the cap) and judges
every look at one-sided level 0.025 / K (Bonferroni over the looks): by the union bound the
chance that any look confirms a false claim is at most 0.025, whatever the dependence between
looks. Group-sequential bounds (Pocock, O'Brien-Fleming) are less strict, but their constants
assume normal statistics, and with 2 to 10 seeds the t statistics here are far from normal;
Bonferroni needs no such assumption. tests/test_study_sequential.py checks the rate on noise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cnnlab.reports import Judged

DEFAULT_MAX_SEEDS = 10  # seeds per arm at most, when --until-decided names no cap


def check_max_seeds(max_seeds: int | None, until_decided: bool) -> None:
    """A cap is a number of seeds per arm (>= 2), and means something only with rounds."""
    from cnnlab.config import ConfigError

    if max_seeds is None:
        return
    if not until_decided:
        raise ConfigError("--max-seeds: caps the rounds of --until-decided, which is not set")
    if isinstance(max_seeds, bool) or not isinstance(max_seeds, int) or max_seeds < 2:
        raise ConfigError(f"--max-seeds: expected an integer >= 2, got {max_seeds!r}")


@dataclass(frozen=True)
class Sequential:
    """A hypothesis judged in rounds: `start` seeds per arm, then `start` more per round."""

    start: int
    cap: int

    @property
    def looks(self) -> int:
        return 1 + math.ceil(max(0, self.cap - self.start) / self.start)

    def tag(self) -> str:
        """The step's cnnlab.looks tag, which the report judges by."""
        return json.dumps({"looks": self.looks, "round": self.start, "max_seeds": self.cap})


@dataclass(frozen=True)
class Request:
    """New seeds for one variant of one step, and why."""

    experiment: str
    variant: str
    seeds: tuple[int, ...]
    why: str


def open_requests(judged: list[Judged], plans: dict[str, Sequential]) -> list[Request]:
    """The next round: for every open part of a hypothesis judged in rounds whose arms are under
    its cap, the next seeds on both arms. One set of new seeds for the whole round (after every
    seed any open arm ran), so an arm two questions share runs them once."""
    wanted: list[tuple[Judged, int, str]] = []  # (hypothesis, seeds to add, why) per open part
    arms = []
    for j in judged:
        plan = plans.get(j.experiment)
        if plan is None or j.verdict != "inconclusive":
            continue
        for part in j.parts:
            if part.arms is None or not part.verdict.startswith("inconclusive"):
                continue
            subject, reference = part.arms
            n = _paired_n(subject.seeds, reference.seeds)
            if n >= plan.cap:
                continue
            why = f"{j.step} open at n={n}: {part.measured}"
            wanted.append((j, min(plan.start, plan.cap - n), why))
            arms.append(part.arms)
    if not wanted:
        return []
    top = max(s for pair in arms for arm in pair for s in arm.seeds)
    found: dict[tuple[str, str], Request] = {}
    for (_, count, why), pair in zip(wanted, arms, strict=True):
        seeds = tuple(range(top + 1, top + 1 + count))
        for arm in pair:
            key = (arm.experiment, arm.variant)
            if key in found:
                old = found[key]
                merged = tuple(sorted(set(old.seeds) | set(seeds)))
                found[key] = Request(*key, merged, old.why)
            else:
                found[key] = Request(*key, seeds, why)
    return list(found.values())


def _paired_n(subject: tuple[int, ...], reference: tuple[int, ...]) -> int:
    """Seeds per arm that the comparison uses: the shared ones when they pair (>= 2)."""
    shared = set(subject) & set(reference)
    return len(shared) if len(shared) >= 2 else min(len(subject), len(reference))


def until_decided(
    judge: Callable[[], list[Judged]],
    extend: Callable[[list[Request], int], int],
    plans: dict[str, Sequential],
    first_round: int = 2,
    echo: Callable[[str], None] = print,
) -> list[Judged]:
    """Rounds of seeds until no hypothesis judged in rounds is open below its cap; returns the
    last judgement. `extend(requests, round)` runs the new seeds and returns how many runs it
    made: a round that can run nothing ends the loop rather than asking again."""
    number = first_round
    while True:
        judged = judge()
        requests = open_requests(judged, plans)
        if not requests:
            return judged
        for r in requests:
            echo(f"round {number}: seeds {_list(r.seeds)} for {r.variant} ({r.why})")
        if extend(requests, number) == 0:
            echo(f"round {number}: nothing left to run; the open hypotheses stay open")
            return judged
        number += 1


def added_entry(request: Request, number: int) -> dict:
    """One element of a step's cnnlab.added_seeds tag."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    return {
        "variant": request.variant,
        "seeds": list(request.seeds),
        "round": number,
        "why": request.why,
        "at": stamp,
    }


def _list(seeds: tuple[int, ...]) -> str:
    return ", ".join(map(str, seeds))
