"""The worker's C allocator settings (services.bootstrap.lean_allocator): a batch-sized buffer is
mapped on its own, so freeing it gives its memory back, even after a larger one was freed."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# In a fresh process: free a 4 MiB block (glibc then raises its mmap threshold to 4 MiB unless it
# is fixed), then allocate 1 MiB (more than the heap has free) and print whether that block was
# mapped on its own (mallinfo2).
PROBE = """
import ctypes, sys
from services.bootstrap import lean_allocator
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                     "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.mallinfo2.restype = MallInfo2
applied = lean_allocator() if sys.argv[1] == "lean" else None
libc.free(libc.malloc(4 * 2**20))
mapped_before = libc.mallinfo2().hblks
block = libc.malloc(2**20)
print(applied, libc.mallinfo2().hblks - mapped_before)
libc.free(block)
"""


def probe(mode: str) -> list[str]:
    answer = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return answer.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_a_batch_sized_buffer_is_mapped_on_its_own_after_a_larger_one_was_freed() -> None:
    assert probe("default") == ["None", "0"]  # glibc's own way: from the heap, which keeps its high-water mark
    assert probe("lean") == ["True", "1"]
