"""Fixtures for the data tests: the real Debian files, corrupt variants, a local mirror.

Every test runs with the data environment cleared, the cache in a temp dir and the Debian
directory pointed at a path that does not exist; a test that wants the Debian files asks for
`debian_dir` and passes it, or points the module constant back.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from data_helpers import use_system_dir
from env_helpers import require

from cnnlab.data import KINDS, REGISTRY, RawData, load_fashion_mnist

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
DATA_ENV = (
    "CNNLAB_CACHE_DIR",
    "XDG_CACHE_HOME",
    *(spec.dir_env for spec in REGISTRY.values()),
    *(spec.mirror_env for spec in REGISTRY.values()),
)


def gz_name(kind: str) -> str:
    return f"{kind}.gz"


@pytest.fixture(scope="session")
def debian_dir() -> Path:
    require("fashion-mnist")
    return DEBIAN


@pytest.fixture(scope="session")
def raw(debian_dir: Path) -> RawData:
    """The real data, parsed once per session; tests must not modify it."""
    return load_fashion_mnist(debian_dir)


@pytest.fixture(scope="session")
def payloads(debian_dir: Path) -> dict[str, bytes]:
    """Decompressed payloads of the two small test-set files, the material of corrupt files."""
    kinds = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    return {k: gzip.decompress((debian_dir / gz_name(k)).read_bytes()) for k in kinds}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fashion-mnist cache dir of this test (not created); no Debian dir, no mirror set."""
    for name in DATA_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    use_system_dir(monkeypatch, tmp_path / "no-debian")
    return tmp_path / "cache" / "fashion-mnist"


def _link_files(source: Path, target: Path, kinds: tuple[str, ...] = KINDS) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        (target / gz_name(kind)).symlink_to(source / gz_name(kind))
    return target


@pytest.fixture
def link_files() -> Callable[..., Path]:
    """link_files(source, target, kinds=KINDS): target holds the files as symlinks into source."""
    return _link_files


# ---------------------------------------------------------------- corrupt files


def _gz(payload: bytes) -> bytes:
    return gzip.compress(payload, compresslevel=1)


def _patch(payload: bytes, offset: int, new: bytes) -> bytes:
    return payload[:offset] + new + payload[offset + len(new) :]


def _u32(value: int) -> bytes:
    return struct.pack(">I", value)


@dataclass(frozen=True)
class Corruption:
    kind: str  # which file is corrupt
    check: str  # text the DataError must contain
    make: Callable[[bytes], bytes]  # good payload -> bytes of the corrupt .gz file


_IMAGES, _LABELS = "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"
CORRUPTIONS = {
    "empty-file": Corruption(
        _LABELS, "gzip: expected a gzip stream, got an empty file", lambda p: b""
    ),
    "not-gzip": Corruption(_LABELS, "gzip: expected a complete gzip stream", lambda p: p),
    "truncated-gzip": Corruption(_LABELS, "gzip:", lambda p: _gz(p)[: len(_gz(p)) // 2]),
    "short-header": Corruption(
        _LABELS, "IDX header: expected 8 bytes, got 4", lambda p: _gz(p[:4])
    ),
    "flipped-magic": Corruption(
        _LABELS, "IDX magic: expected 2049, got 2051", lambda p: _gz(_patch(p, 0, _u32(2051)))
    ),
    "wrong-dims": Corruption(
        _IMAGES, "image dims: expected 28x28, got 28x27", lambda p: _gz(_patch(p, 12, _u32(27)))
    ),
    "100-images": Corruption(
        _IMAGES,
        "count: expected 10,000, got 100",
        lambda p: _gz(_patch(p[: 16 + 100 * 784], 4, _u32(100))),
    ),
    "extra-byte": Corruption(
        _LABELS,
        "decompressed length: expected 10,008 bytes, got 10,009 bytes",
        lambda p: _gz(p + b"\x00"),
    ),
    "label-10": Corruption(
        _LABELS, "labels: expected 0..9, got 10", lambda p: _gz(_patch(p, 13, b"\x0a"))
    ),
    "one-changed-byte": Corruption(
        _IMAGES,
        "SHA-256 of the decompressed payload: expected 5b4141f0",
        lambda p: _gz(_patch(p, 16 + 5000, bytes([p[16 + 5000] ^ 1]))),
    ),
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "corruption" in metafunc.fixturenames:
        metafunc.parametrize("corruption", list(CORRUPTIONS.values()), ids=list(CORRUPTIONS))


@pytest.fixture
def corrupt_gz(corruption: Corruption, payloads: dict[str, bytes]) -> bytes:
    return corruption.make(payloads[corruption.kind])


# ---------------------------------------------------------------- a local mirror


@dataclass
class Mirror:
    root: Path  # the served directory; put files here
    url: str
    requests: list[str]  # request paths, in order

    def put(self, kind: str, data: bytes) -> None:
        (self.root / gz_name(kind)).write_bytes(data)

    def copy_from(self, source: Path, kinds: tuple[str, ...] = KINDS) -> None:
        for kind in kinds:
            shutil.copy(source / gz_name(kind), self.root / gz_name(kind))


class _QuietHandler(SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Mirror]:
    """An HTTP server on 127.0.0.1 serving an empty temp dir; CNNLAB_DATA_MIRROR points at it."""
    root = tmp_path / "mirror"
    root.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("CNNLAB_DATA_MIRROR", url)
    try:
        yield Mirror(root, url, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel does) but never answers a request."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on: connecting is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
