"""What `cnnlab tune --check` spends on configs: a search space sampled without training.

    python benchmarks/space_check.py --config configs/study-search.toml --rounds 5

Each sample of the check becomes a whole config (the base plus the sample, parsed strictly as
`--set` items are), then a model that is built and measured. Times, in alternating rounds, one
config parse (`from_dict`) and the whole check of `--samples` samples, two ways: with each
config class's type hints evaluated once per process, as cnnlab does, and evaluated again on
every parse (the annotations are strings until then). Prints one JSON line: the medians of
each and the ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import time
import typing

from _common import emit, median, note, swapped

import cnnlab.config._parse as parsing  # its cache of type hints is what is compared
from cnnlab.config import from_dict, load_config, to_dict
from cnnlab.search import check_space, prepare

PARSES = 200  # per timing: one parse is a fraction of a millisecond


def hints(cached: bool):
    """Uncached: each parse evaluates every class's hints again."""
    return contextlib.nullcontext() if cached else swapped(parsing, "_hints", typing.get_type_hints)


def parse_ms(raw: dict) -> float:
    started = time.perf_counter()
    for _ in range(PARSES):
        from_dict(raw)
    return (time.perf_counter() - started) / PARSES * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/study-search.toml")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1000, help="as `tune --check` samples")
    args = parser.parse_args()
    cfg = load_config(args.config)
    space, raw = prepare(cfg), to_dict(cfg)
    ways = {"uncached": False, "cached": True}
    parse: dict[str, list[float]] = {way: [] for way in ways}
    check: dict[str, list[float]] = {way: [] for way in ways}
    shares = set()
    for r in range(args.rounds):
        for way, cached in ways.items():
            with hints(cached):
                parse[way].append(parse_ms(raw))
                started = time.perf_counter()
                shares.add(check_space(cfg, space, samples=args.samples).invalid_share)
                check[way].append(time.perf_counter() - started)
            note(
                f"round {r + 1}: {way}: parse {parse[way][-1]:.3f} ms, check {check[way][-1]:.2f} s"
            )
    parse_med = {way: round(median(v), 4) for way, v in parse.items()}
    check_med = {way: round(median(v), 3) for way, v in check.items()}
    emit(
        {
            "benchmark": "space_check",
            "config": args.config,
            "samples": args.samples,
            "invalid_share": sorted(shares),  # one value: the same samples every way and round
            "parse_ms": parse_med,
            "parse_ratio": round(parse_med["uncached"] / parse_med["cached"], 2),
            "check_s": check_med,
            "check_ratio": round(check_med["uncached"] / check_med["cached"], 2),
            "all_runs": {"parse_ms": parse, "check_s": check},
        }
    )


if __name__ == "__main__":
    main()
