"""A test lacking a machine piece fails, naming the piece and the apt package scripts/test.sh
installs it from; with the piece it gets its path."""

from dataclasses import replace

import pytest
from env_helpers import PIECES, require


@pytest.mark.parametrize("name", sorted(PIECES))
def test_a_missing_piece_fails_naming_it_and_its_package(name, monkeypatch):
    monkeypatch.setitem(PIECES, name, replace(PIECES[name], find=lambda: None))
    with pytest.raises(pytest.fail.Exception) as failed:
        require(name)
    package = {"fashion-mnist": "dataset-fashion-mnist", "cc": "gcc libc6-dev"}.get(name, name)
    assert str(failed.value) == (
        f"needs {PIECES[name].what}: scripts/test.sh installs it with apt-get install {package}"
    )


def test_a_present_piece_is_its_path(monkeypatch):
    monkeypatch.setitem(PIECES, "cc", replace(PIECES["cc"], find=lambda: "/opt/cc"))
    assert require("cc") == "/opt/cc"
