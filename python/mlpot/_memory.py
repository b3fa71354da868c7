"""Memory estimates before large NumPy work, as the Rust core makes before its buffers.

Linux overcommits: a too-large ``np.zeros`` usually "succeeds" and the process is killed
when the pages are touched, minutes into a fit. So the large matrices of a fit (GAP's K_MM
and QR buffers, SNAP's normal equations) are checked first against what the process can
still get: the smaller of MemAvailable and the room left under RLIMIT_AS (``ulimit -v``),
the same quantity as ``mlpot``'s Rust ``memory::available_bytes``.
"""

from __future__ import annotations

import os

try:
    import resource
except ImportError:  # not on Windows: only MemAvailable-style bounds there (none)
    resource = None

__all__ = ["available_bytes", "ensure_fits"]

#: Estimates below this are not checked (reading /proc costs more than such work).
_CHECK_ABOVE = 64 << 20


def available_bytes() -> int | None:
    """Bytes the process can still allocate, or None where neither bound can be read."""
    bounds = [b for b in (_mem_available(), _address_space_room()) if b is not None]
    return min(bounds) if bounds else None


def ensure_fits(nbytes: int, what: str) -> None:
    """Raise MemoryError naming ``what`` if ``nbytes`` more would not fit in memory."""
    if nbytes < _CHECK_ABOVE:
        return
    room = available_bytes()
    if room is not None and nbytes > room:
        raise MemoryError(
            f"{what} needs about {nbytes / 1e9:.2f} GB, but only {room / 1e9:.2f} GB of memory "
            "is available"
        )


def _mem_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_room() -> int | None:
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return max(soft - pages * os.sysconf("SC_PAGE_SIZE"), 0)
