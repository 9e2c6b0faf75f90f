"""A started worker's objects are left out of full collections (services.bootstrap.settle_heap)."""

from __future__ import annotations

import subprocess
import sys

from services.bootstrap import FULL_COLLECTION_EVERY

# In a fresh process, with the worker's modules imported: how many objects a full collection
# walks before and after, and how many were frozen.
PROBE = """
import gc
import services.worker
from services.bootstrap import settle_heap
walked_before = len(gc.get_objects())
settle_heap()
print(walked_before, len(gc.get_objects()), gc.get_freeze_count(), gc.get_threshold()[2])
"""


def test_a_full_collection_no_longer_walks_what_the_worker_holds_from_its_start() -> None:
    answer = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    walked_before, walked_after, frozen, full_every = (int(word) for word in answer.stdout.split())
    assert walked_before > 50_000, "the worker's modules alone are tens of thousands of objects"
    assert frozen >= walked_before * 0.9
    assert walked_after < 1_000
    assert full_every == FULL_COLLECTION_EVERY != 10  # full collections rarer than CPython's default
