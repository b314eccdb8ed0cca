"""What the CPU can do, as the kernel reports it: read by the precision choice and the C build."""

from __future__ import annotations

from pathlib import Path


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str] | None:
    """The feature flags of the first CPU listed (x86 `flags`, ARM `Features`); an empty set when
    the file lists none, None when it cannot be read (not Linux)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()
