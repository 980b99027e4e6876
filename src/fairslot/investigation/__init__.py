"""Investigation of a year of records: readers, rules, link graph, dense blocks, lockstep,
anomaly scores, rings and roles, the evidence report, synthetic records and their scoring.

Importing the package sets Polars' allocator to give freed memory back to the system sooner
(``ALLOCATOR_CONF``), unless Polars is already loaded or the variable is already set."""

import os
import sys

__all__ = ["ALLOCATOR_CONF", "ALLOCATOR_VARIABLE"]

ALLOCATOR_VARIABLE = "_RJEM_MALLOC_CONF"
"""The environment variable Polars' jemalloc reads its options from, once, when it starts."""

ALLOCATOR_CONF = "dirty_decay_ms:1000,muzzy_decay_ms:0"
"""Options added after Polars' own (``dirty_decay_ms:500,muzzy_decay_ms:1000``, set by
``import polars``; the later ones win). The one that matters is ``muzzy_decay_ms:0``: freed
pages go back to the system at once instead of through ``MADV_FREE``, whose pages still
count as resident until the kernel wants them, so a step's freed frames were still counted
while the next step built its own. This is the setting measured at a province's scale (see
docs/performance.md). ``dirty_decay_ms:0`` left less resident after reading at 1M (0.62
against 0.78 GiB) but about doubled the detection's time there (a loaded machine); it was not
tried at a province's scale. The bench (``bench/investigate.py``) passes the value to its
child process, which imports Polars before this package."""

if "polars" not in sys.modules:
    os.environ.setdefault(ALLOCATOR_VARIABLE, ALLOCATOR_CONF)
