"""The kernel runs where it measures faster than PyTorch's ops: the faster path wins, the verdict
is kept per shape, in the process and for the machine, the run's random state is untouched, and
`always` skips the timing."""

import os
import stat
import threading
import time

import pytest
import torch
from torch import nn

from cnnlab.fusion import ENV, fuse, kernel_pays
from cnnlab.models import create_model


class Slow(nn.Module):
    def __init__(self, seconds: float):
        super().__init__()
        self.seconds, self.scale = seconds, nn.Parameter(torch.ones(1))

    def forward(self, x):
        time.sleep(self.seconds)
        return x * self.scale


@pytest.fixture(autouse=True)
def machine_cache(tmp_path, monkeypatch):
    """Each test its own user cache and an empty verdict table: a verdict kept by another test,
    or by an earlier run on this machine, would skip this test's timing."""
    import cnnlab.fusion._measure as measure

    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(measure, "_VERDICTS", {})
    return tmp_path / "cache" / "native" / "verdicts"


def new_process(monkeypatch):
    """What a new process knows of the verdicts: only the machine's."""
    import cnnlab.fusion._measure as measure

    monkeypatch.setattr(measure, "_VERDICTS", {})


def kept_verdicts(folder):
    return [p for p in folder.iterdir() if not p.name.startswith(".")]  # not the lock file


def maker(kernel_seconds: float, plain_seconds: float, calls: list):
    def make(layers, native):
        calls.append(native)
        return Slow(kernel_seconds if native else plain_seconds)

    return make


@pytest.mark.parametrize(("kernel", "plain", "pays"), [(0.0, 0.004, True), (0.004, 0.0, False)])
def test_the_faster_path_wins_and_the_verdict_is_kept(monkeypatch, kernel, plain, pays):
    monkeypatch.delenv(ENV, raising=False)
    calls = []
    layers = [nn.Conv2d(1, 3, 3, padding=int(kernel * 1000) + 7)]  # a shape of this case alone
    shape = (1, 8, 8)
    assert (
        kernel_pays(layers, maker(kernel, plain, calls), shape, torch.contiguous_format, None)
        is pays
    )
    assert sorted(calls) == [False, True]
    assert (
        kernel_pays(layers, maker(kernel, plain, calls), shape, torch.contiguous_format, None)
        is pays
    )
    assert len(calls) == 2  # measured once per shape in a process
    kernel_pays(layers, maker(kernel, plain, calls), (1, 9, 9), torch.contiguous_format, None)
    assert len(calls) == 4  # another input shape is measured again


def test_always_skips_the_timing(monkeypatch):
    monkeypatch.setenv(ENV, "always")
    calls = []
    layers = [nn.Conv2d(1, 3, 3, padding=11)]
    assert kernel_pays(layers, maker(0.004, 0.0, calls), (1, 8, 8), torch.contiguous_format, None)
    assert calls == []


@pytest.mark.usefixtures("c_compiler")
def test_fuse_given_a_probe_follows_the_measurement_and_leaves_the_random_state(monkeypatch):
    from cnnlab.config import CnnConfig

    monkeypatch.delenv(ENV, raising=False)
    model = create_model(CnnConfig(filters=8, hidden_units=[32]), (1, 28, 28), 10)
    before = torch.get_rng_state()
    fused = fuse(model, torch.contiguous_format, ((1, 28, 28), None))
    assert torch.equal(torch.get_rng_state(), before)
    span = list(model.features[0])[:3]  # conv, max-pool, relu
    make = lambda layers, native: None  # noqa: E731 - the verdict is already kept
    if kernel_pays(span, make, (1, 28, 28), torch.contiguous_format, None):
        assert fused == ("features.0: conv, max-pool, relu as the native kernel",)
    else:
        assert fused == ()  # no BatchNorm to fold: PyTorch's own layers, as built
        assert type(model.features[0]) is nn.Sequential


@pytest.mark.usefixtures("c_compiler")
def test_fuse_told_the_way_runs_it_without_measuring(monkeypatch):
    """A resumed run passes the way it started with: no timing, whatever a timing would say."""
    from cnnlab.config import CnnConfig

    monkeypatch.setenv(ENV, "always")  # a measurement, were one made, would pick the kernel
    model = create_model(CnnConfig(filters=8, hidden_units=[32]), (1, 28, 28), 10)
    assert fuse(model, torch.contiguous_format, ((1, 28, 28), None), native=False) == ()
    assert type(model.features[0]) is nn.Sequential

    def no_timing(*args, **kwargs):
        raise AssertionError("the way was given: nothing to measure")

    monkeypatch.delenv(ENV)
    model = create_model(CnnConfig(filters=8, hidden_units=[32]), (1, 28, 28), 10)
    import cnnlab.fusion._blocks as blocks  # where fuse looks the measurement up

    monkeypatch.setattr(blocks, "kernel_pays", no_timing)
    fused = fuse(model, torch.contiguous_format, ((1, 28, 28), None), native=True)
    assert fused == ("features.0: conv, max-pool, relu as the native kernel",)


def test_a_verdict_is_kept_for_the_machine_and_read_by_the_next_process(monkeypatch, machine_cache):
    monkeypatch.delenv(ENV, raising=False)
    layers, shape, calls = [nn.Conv2d(1, 3, 3)], (1, 8, 8), []
    assert kernel_pays(layers, maker(0.0, 0.004, calls), shape, torch.contiguous_format, None)
    (kept,) = kept_verdicts(machine_cache)
    assert kept.read_text() == "1" and not os.stat(kept).st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    new_process(monkeypatch)
    # The timing would now favour PyTorch's ops; the machine's verdict stands, untimed.
    assert kernel_pays(layers, maker(0.004, 0.0, calls), shape, torch.contiguous_format, None)
    assert len(calls) == 2


def test_a_verdict_file_others_could_write_is_measured_again(monkeypatch, machine_cache):
    monkeypatch.delenv(ENV, raising=False)
    layers, shape, calls = [nn.Conv2d(1, 3, 3)], (1, 8, 8), []
    kernel_pays(layers, maker(0.0, 0.004, calls), shape, torch.contiguous_format, None)
    (kept,) = kept_verdicts(machine_cache)
    os.chmod(kept, 0o666)
    new_process(monkeypatch)
    assert not kernel_pays(layers, maker(0.004, 0.0, calls), shape, torch.contiguous_format, None)
    assert len(calls) == 4 and kept.read_text() == "0"
    assert not os.stat(kept).st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def test_workers_starting_together_take_one_way(monkeypatch, machine_cache):
    """Two processes (threads here, each with its own lock) whose timings disagree: the first to
    take the lock measures, the other waits and reads its verdict."""
    monkeypatch.delenv(ENV, raising=False)
    layers, shape, start = [nn.Conv2d(1, 3, 3)], (1, 8, 8), threading.Barrier(2)
    found, calls = [], []

    def worker(kernel, plain):
        start.wait()
        found.append(
            kernel_pays(layers, maker(kernel, plain, calls), shape, torch.contiguous_format, None)
        )

    threads = [threading.Thread(target=worker, args=t) for t in ((0.0, 0.004), (0.004, 0.0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(found)) == 1 and len(calls) == 2  # one measurement, one way


def test_a_cache_folder_that_is_not_ours_measures_without_keeping(monkeypatch, machine_cache):
    monkeypatch.delenv(ENV, raising=False)
    machine_cache.parent.parent.mkdir(parents=True)
    os.symlink(machine_cache.parent.parent.parent, machine_cache.parent)  # native -> elsewhere
    layers, calls = [nn.Conv2d(1, 3, 3)], []
    assert kernel_pays(layers, maker(0.0, 0.004, calls), (1, 8, 8), torch.contiguous_format, None)
    assert len(calls) == 2 and not machine_cache.exists()
