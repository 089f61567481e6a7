"""Process memory policy (glibc, Linux): freed memory goes back promptly; big blocks use huge pages.

**Returning freed memory.**

glibc serves large allocations with mmap and returns them on free, but after the first large
free it raises that threshold (up to 32 MB) and serves later ones from the heap, which it keeps.
Model inference allocates and frees hundreds of megabytes of activations per image, so with the
default policy a long-running process (a worker, the server) sits at its all-time high. Fixing
the threshold at 4 MB sends every large activation and every full-size image array to mmap
(returned on free), while the small temporaries the matte stages reuse thousands of times per
image stay in the heap. Measured (``bench/memory.py``, IS-Net float32 copy): peak RSS over
three runs 829 MB -> 764 MB. At 128 KB it was 703 MB, but the tile temporaries then cost a
page fault each time: 466k minor faults and ~0.5 CPU s more per 12 MP image than at 4 MB.

Fixing the mmap threshold also fixes glibc's *trim* threshold at its 128 KB default (the
dynamic rule would have raised it to twice the mmap threshold): whenever more than 128 KB is
free at the top of a heap, glibc hands it back to the kernel, and the next tile's temporaries
fault it in again, page by page. The matte stages allocate and free a few MB per tile on
several threads, each thread's heap shrinking and growing hundreds of times per image. Keeping
up to ``TRIM_THRESHOLD`` free at the top of each heap (``bench/pipeline_cpu.py``; per-stage CPU on the
12 MP dog, in-process): upsampling 0.47 -> 0.26 CPU s, decontamination 0.51 -> 0.28, encoding
0.26 -> 0.21; page faults in those stages 194k -> 15k; the pipeline's own work (everything but
the model passes) 1.79 -> 1.28 CPU s. At 8 MB (what glibc's dynamic rule would pick) 1.35 s.

**Transparent huge pages.** Every inference allocates and frees about a gigabyte of activations,
and every full-resolution array is fresh memory: with 4 KB pages a 12 MP cutout took ~350k page
faults, ~0.85 CPU s of kernel time. glibc 2.35+ has a tunable, ``glibc.malloc.hugetlb=1``, that
asks the kernel for transparent huge pages (2 MB) on the memory malloc maps; with it the same
cutout takes ~30k faults and ~0.3 CPU s of kernel time, and the arithmetic runs faster too (fewer
TLB misses). Measured (``bench/speed.py``; 12 MP photo, IS-Net): 0.82x the CPU and wall time end
to end, the same peak memory. A tunable is read only when a process starts, so the ``alphacut``
command restarts itself once with it (``launch``, before anything heavy is imported) and the job
engine's workers inherit it. ``ALPHACUT_HUGE_PAGES=0`` turns this off. Library users get it by
exporting ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1`` themselves.

Why by hand: no maintained library wraps ``mallopt`` or glibc's tunables; each is a few lines,
glibc only (other C libraries, macOS and Windows are left as they are).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Mapping

__all__ = ["release_freed_memory", "huge_pages_status", "huge_pages_in_use", "with_huge_pages", "use_huge_pages_in_children",
           "restart_with_huge_pages"]

#: the glibc tunable that makes malloc ask for transparent huge pages on the memory it maps
HUGE_PAGES_TUNABLE = "glibc.malloc.hugetlb=1"
#: set to 0 to keep the process as it was started
HUGE_PAGES_SWITCH = "ALPHACUT_HUGE_PAGES"
#: where Linux says whether transparent huge pages may be used
THP_MODE_FILE = "/sys/kernel/mm/transparent_hugepage/enabled"

#: glibc's M_MMAP_THRESHOLD parameter number (malloc.h)
_M_MMAP_THRESHOLD = -3
#: allocations above this go to mmap and back to the OS when freed
MMAP_THRESHOLD = 4 * 1024 * 1024
#: glibc's M_TRIM_THRESHOLD parameter number (malloc.h)
_M_TRIM_THRESHOLD = -1
#: free memory above this at the top of a heap goes back to the OS (see the module doc)
TRIM_THRESHOLD = 32 * 1024 * 1024

_done = False


def release_freed_memory() -> bool:
    """Pin glibc's mmap and trim thresholds (once per process); True when it took effect."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    _done = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    if _done:  # the threshold fixed also fixes trimming at 128 KB: raise it (module doc)
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return _done


def huge_pages_status(environ: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """(whether this process can use the huge-page tunable, why not / what it runs with)."""
    env = os.environ if environ is None else environ
    if env.get(HUGE_PAGES_SWITCH, "") == "0":
        return False, f"turned off ({HUGE_PAGES_SWITCH}=0)"
    if not sys.platform.startswith("linux"):
        return False, "not Linux"
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):
        version = ""
    parts = version.split()
    try:
        major, minor = (int(x) for x in parts[1].split(".")[:2]) if len(parts) == 2 and parts[0] == "glibc" else (0, 0)
    except ValueError:
        major, minor = 0, 0
    if (major, minor) < (2, 35):
        return False, f"needs glibc 2.35 or later ({version or 'not glibc'})"
    try:
        with open(THP_MODE_FILE, encoding="ascii") as fh:
            mode = fh.read()
    except OSError:
        return False, "the kernel has no transparent huge pages"
    chosen = mode[mode.find("[") + 1:mode.find("]")] if "[" in mode and "]" in mode else mode.strip()
    if chosen == "never":
        return False, "transparent huge pages are set to 'never' on this system"
    return True, f"{version}, transparent huge pages: {chosen}"


def huge_pages_in_use() -> tuple[bool, str]:
    """(whether this process started with the tunable, a line saying so for ``doctor``)."""
    ok, detail = huge_pages_status()
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    active = ok and any(t.startswith("glibc.malloc.hugetlb=") and t != "glibc.malloc.hugetlb=0"
                        for t in tunables.split(":"))
    if active:
        return True, f"on ({detail})"
    return False, f"off ({detail})" if not ok else "off (this process was not started with the tunable)"


def with_huge_pages(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``environ`` with the huge-page tunable added to ``GLIBC_TUNABLES``; None when it is
    already there or this system cannot use it."""
    tunables = environ.get("GLIBC_TUNABLES", "")
    if "glibc.malloc.hugetlb" in tunables or not huge_pages_status(environ)[0]:
        return None
    env = dict(environ)
    env["GLIBC_TUNABLES"] = f"{tunables}:{HUGE_PAGES_TUNABLE}" if tunables else HUGE_PAGES_TUNABLE
    return env


def use_huge_pages_in_children() -> None:
    """Processes started from now on (the job engine's workers) run with the tunable."""
    env = with_huge_pages(os.environ)
    if env is not None:
        os.environ["GLIBC_TUNABLES"] = env["GLIBC_TUNABLES"]


def restart_with_huge_pages() -> None:
    """Replace this process with the same command run with the tunable (it is read only at
    start), unless it has it already or cannot use it. Call it first thing, before any
    output, threads or heavy imports: this returns only when nothing was done."""
    env = with_huge_pages(os.environ)
    argv = getattr(sys, "orig_argv", None)
    if env is None or not argv or not sys.executable or getattr(sys, "frozen", False):
        return  # (a frozen app's executable is not a Python that takes ``argv`` back)
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *argv[1:]], env)
    except OSError:  # could not restart: run as we are
        return
