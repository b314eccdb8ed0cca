"""Interrupts wait for a tracking write in progress (cnnlab._signals)."""

import pytest

from cnnlab._signals import deliver, shielded


class Stop(KeyboardInterrupt):
    pass


class Other(KeyboardInterrupt):
    pass


def test_outside_a_shielded_block_the_interrupt_is_raised_at_once():
    with pytest.raises(Stop):
        deliver(Stop)


def test_inside_it_waits_for_the_outermost_block_to_end():
    done = []
    with pytest.raises(Stop), shielded():
        with shielded():
            deliver(Stop)
            done.append("inner write")
        done.append("outer write")  # still shielded: the outer block is not over
        deliver(Other)  # a second signal while one waits changes nothing
    assert done == ["inner write", "outer write"]
    with shielded():
        pass  # nothing is left pending afterwards
