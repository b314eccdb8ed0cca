"""Who may put the native library the process loads: only this user, in a folder only it writes.

Real compiler, real files: the cache root is a fresh folder per test. A "planted" library runs a
constructor on load that leaves a marker file, so a test can tell it was never loaded.
"""

import ctypes
import logging
import os
import shlex
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from env_helpers import require

from cnnlab.fusion import _native

pytestmark = pytest.mark.usefixtures("c_compiler")
SOURCE = Path(_native.__file__).with_name("_stem.c")
OTHER_UID = 65534  # nobody
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="making a file another user's (chown) needs root"
)
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="loading through a descriptor needs /proc"
)
PLANTED_C = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *path = getenv("CNNLAB_TEST_PLANTED_RAN");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (f) fclose(f);
}
"""


def real_cc() -> str:
    return require("cc")


def compile_c(code: str, out: Path) -> Path:
    src = out.with_suffix(".c")
    src.write_text(code)
    subprocess.run([real_cc(), "-shared", "-fPIC", str(src), "-o", str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    return compile_c(PLANTED_C, tmp_path_factory.mktemp("planted") / "planted.so")


@pytest.fixture
def cache(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CC", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def ran(monkeypatch, tmp_path) -> Path:
    """The marker the planted library's constructor writes when it is loaded."""
    monkeypatch.setenv("CNNLAB_TEST_PLANTED_RAN", str(tmp_path / "ran"))
    return tmp_path / "ran"


def load():
    return _native.load_library.__wrapped__("_stem.c")


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def target() -> Path:
    return _native.library_path(SOURCE, _native.compiler())


def assert_private_build(path: Path, before: os.stat_result) -> None:
    st = os.lstat(path)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_ino != before.st_ino
    assert path.read_bytes()[:4] == b"\x7fELF"


def test_a_planted_library_would_be_noticed(planted, ran, tmp_path):
    """The marker works: loading a copy of the planted library leaves it."""
    copy = shutil.copy(planted, tmp_path / "copy.so")
    ctypes.CDLL(str(copy))
    assert ran.exists()


def test_a_fresh_build_is_private_whatever_the_umask(cache, caplog):
    old = os.umask(0)  # the linker would then make a 0777 file
    try:
        assert load() is not None
    finally:
        os.umask(old)
    native = os.lstat(cache / "native")
    assert stat.S_IMODE(native.st_mode) == 0o700 and native.st_uid == os.geteuid()
    (built,) = (cache / "native").iterdir()
    assert built == target()
    st = os.lstat(built)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert warnings(caplog) == []


def plant_other_users(planted: Path, path: Path) -> None:
    shutil.copy(planted, path)
    os.chown(path, OTHER_UID, OTHER_UID)
    path.chmod(0o755)


def plant_writable(mode: int):
    def plant(planted: Path, path: Path) -> None:
        shutil.copy(planted, path)
        path.chmod(mode)

    return plant


def plant_symlink(planted: Path, path: Path) -> None:
    # Even a link to a file of ours: what loads must be the file checked, not wherever it points.
    other = path.with_name("elsewhere.so")
    shutil.copy(planted, other)
    other.chmod(0o700)
    path.symlink_to(other)


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(plant_other_users, marks=needs_root, id="another-users"),
        pytest.param(plant_writable(0o666), id="ours-world-writable"),
        pytest.param(plant_writable(0o777), id="ours-mode-777"),
        pytest.param(plant_writable(0o720), id="ours-group-writable"),
        pytest.param(plant_symlink, id="symlink"),
    ],
)
def test_an_untrusted_library_is_rebuilt_not_loaded(plant, cache, planted, ran, caplog):
    path = target()
    path.parent.mkdir(mode=0o700, parents=True)
    plant(planted, path)
    before = os.lstat(path)
    assert load() is not None
    assert not ran.exists()
    assert_private_build(path, before)
    assert path.read_bytes() != planted.read_bytes()
    if stat.S_ISLNK(before.st_mode):
        assert path.with_name("elsewhere.so").read_bytes() == planted.read_bytes()
    assert warnings(caplog) == []


def snapshot(folder: Path) -> dict[str, tuple]:
    entries = [folder, *folder.iterdir()]
    return {
        p.name: (s.st_mode, s.st_uid, s.st_ino, s.st_size, s.st_mtime_ns)
        for p, s in ((p, os.lstat(p)) for p in entries)
    }


@needs_root
def test_a_native_folder_of_another_user_is_left_alone(cache, planted, ran, caplog):
    path = target()
    path.parent.mkdir(mode=0o755, parents=True)
    plant_other_users(planted, path)
    os.chown(path.parent, OTHER_UID, OTHER_UID)
    before = snapshot(path.parent)
    assert load() is None
    assert snapshot(path.parent) == before
    assert not ran.exists()
    (warning,) = warnings(caplog)
    assert str(path.parent) in warning and f"owned by uid {OTHER_UID}" in warning
    assert "using PyTorch" in warning


def test_a_native_symlink_is_not_followed(cache, tmp_path, caplog):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    cache.mkdir()
    (cache / "native").symlink_to(elsewhere)
    assert load() is None
    assert list(elsewhere.iterdir()) == []
    (warning,) = warnings(caplog)
    assert str(cache / "native") in warning and "symlink" in warning


def test_a_writable_native_folder_of_ours_is_tightened_and_checked(cache, planted, ran, caplog):
    path = target()
    path.parent.mkdir(parents=True)
    path.parent.chmod(0o777)
    plant_writable(0o666)(planted, path)
    if os.geteuid() == 0:
        os.chown(path, OTHER_UID, OTHER_UID)
    before = os.lstat(path)
    assert load() is not None
    assert stat.S_IMODE(os.lstat(path.parent).st_mode) == 0o700
    assert not ran.exists()
    assert_private_build(path, before)
    assert warnings(caplog) == []


def test_a_corrupt_library_of_ours_is_rebuilt_once(cache, caplog):
    path = target()
    path.parent.mkdir(mode=0o700, parents=True)
    path.write_bytes(b"not a shared library\n" * 100)
    path.chmod(0o700)
    before = os.lstat(path)
    assert load() is not None
    assert_private_build(path, before)
    assert warnings(caplog) == []


def test_a_library_that_will_not_load_even_rebuilt_warns_once(cache, monkeypatch, caplog):
    builds = []

    def corrupt_build(source, target, cc):
        builds.append(target)
        target.write_bytes(b"still garbage")
        target.chmod(0o700)

    monkeypatch.setattr(_native, "build", corrupt_build)
    assert load() is None
    assert builds == [target()]
    (warning,) = warnings(caplog)
    assert "could not build _stem.c" in warning and str(target()) in warning


@pytest.mark.parametrize("wrap", ["{cc} -O2", "env {cc}"], ids=["flags", "launcher"])
def test_a_compiler_with_arguments_builds(wrap, cache, monkeypatch, caplog):
    cc = wrap.format(cc=real_cc())
    monkeypatch.setenv("CC", cc)
    run, calls = subprocess.run, []

    def spy(args, *a, **kw):
        calls.append(list(args))
        return run(args, *a, **kw)

    monkeypatch.setattr(_native.subprocess, "run", spy)
    assert load() is not None
    prefix = shlex.split(cc)
    assert calls and all(c[: len(prefix)] == prefix for c in calls)
    assert [*prefix, "--version"] in calls
    assert warnings(caplog) == []


@pytest.mark.parametrize(
    "cc,says",
    [
        ("/no/such/cc", "is not found"),
        ("/no/such/cc -O2", "is not found"),
        ('cc "-O2', "is malformed"),
        ("  ", "is not found"),
    ],
)
def test_an_unusable_cc_warns_once(cc, says, cache, monkeypatch, caplog):
    monkeypatch.setenv("CC", cc)
    assert load() is None
    (warning,) = warnings(caplog)
    assert "no C compiler" in warning and says in warning and repr(cc) in warning
    assert not cache.exists()


def test_an_unforeseen_error_falls_back_with_one_warning(cache, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setattr(_native, "library_path", broken)
    assert load() is None
    (warning,) = warnings(caplog)
    assert "RuntimeError: boom" in warning and "using PyTorch" in warning


@needs_proc
def test_libraries_loaded_one_after_another_stay_distinct(tmp_path):
    """glibc knows a library by its dlopen name: a reused /proc/self/fd/N must not alias."""
    folder = tmp_path / "private"
    folder.mkdir(mode=0o700)
    one = compile_c("int which(void) { return 1; }", folder / "one.so")
    two = compile_c("int which(void) { return 2; }", folder / "two.so")
    assert _native._load_private(one).which() == 1
    assert _native._load_private(two).which() == 2


@needs_proc
def test_a_swap_after_the_check_does_not_change_what_loads(cache, planted, ran, monkeypatch):
    path = target()
    path.parent.mkdir(mode=0o700, parents=True)
    _native.build(SOURCE, path, _native.compiler())
    swap = path.with_name("swap.so")
    shutil.copy(planted, swap)
    swap.chmod(0o700)
    check = _native._untrusted

    def check_then_swap(st):
        why = check(st)
        os.replace(swap, path)  # what a racing writer would do just after the check
        return why

    monkeypatch.setattr(_native, "_untrusted", check_then_swap)
    lib = _native._load_private(path)
    assert lib is not None and hasattr(lib, "stem_forward")
    assert not ran.exists()
