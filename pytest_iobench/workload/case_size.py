"""How many bytes a case of the generation and throughput suites moves when the user gives no
size: enough for its rate to settle (``steady.py``: at least ``MIN_SLICES`` slices after the
ramp) on the kind of storage it runs on, measured on the 2-core machines the project runs on
(docs/results.md, "Default sizes", has the measurement and its command).

A fast storage needs more bytes than a slow one for the same window: local files take about
1 GB/s into the page cache, the embedded S3 endpoint about 100 MB/s. ``--iobench-quick`` keeps
the small sizes a CI job affords; its figures then carry the ``too short`` flag, which says so.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20
GiB = 1 << 30

#: per suite and storage kind: the smallest size whose slices settled (docs/results.md)
SETTLED: dict[str, dict[str, int]] = {
    "generate": {"local": GiB, "direct": GiB, "s3": 256 * MiB},
    "throughput": {"local": GiB, "direct": GiB, "s3": 256 * MiB},
}
#: a storage kind not measured takes the largest measured size (a slower storage only runs longer)
UNMEASURED = GiB
#: --iobench-quick: one size per suite, small enough for a CI job
QUICK: dict[str, int] = {"generate": 32 * MiB, "throughput": 64 * MiB}

_OPTION = {"generate": "--iobench-generate-size", "throughput": "--iobench-throughput-bytes"}


@dataclass(frozen=True)
class CaseSize:
    bytes: int
    #: where the figure came from, for the record: the option, quick mode or the settled default
    chosen_by: str


def case_size(suite: str, storage_kind: str, asked: int | None, quick: bool) -> CaseSize:
    """The bytes a case of ``suite`` ("generate" or "throughput") moves on ``storage_kind``:
    ``asked`` when the user gave a size, else the quick size or the settled default."""
    if suite not in SETTLED:
        raise ValueError(f"no case sizes for suite {suite!r}; known: {', '.join(SETTLED)}")
    if asked is not None:
        return CaseSize(asked, _OPTION[suite])
    if quick:
        return CaseSize(QUICK[suite], "--iobench-quick")
    size = SETTLED[suite].get(storage_kind, UNMEASURED)
    return CaseSize(size, f"default for {storage_kind} storage (the smallest size whose rate settled)")
