"""What each rank's S3 requests met, brought into the test's record.

Ranks under ``mpiexec`` are processes of their own: the counts the plugin takes around a test
(storage/retry.COUNTS) see only the session's process. Each rank therefore returns its own
counts with its result (``result["storage_ops"]``, mpi/worker.py), and ``record_rank_ops``
puts them in the record per rank (``details["storage_ops_per_rank"]``, summed over the runs of
a measurement, warm-ups included as the test's own counts are) and adds them to the test's
``storage_ops``, which then counts every process's requests. In-process runs (one rank in
the session's process) are counted by the plugin already and are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..storage.retry import add_entries


def rank_ops(results_of_runs: Iterable[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per rank, its storage_ops summed over runs: ``[{"rank": 0, "storage_ops": {...}}, ...]``
    (a rank that made no S3 request has ``{}``); empty when no rank reported counts."""
    by_rank: dict[int, dict[str, dict[str, Any]]] = {}
    for results in results_of_runs:
        for result in results:
            if "storage_ops" in result:
                add_entries(by_rank.setdefault(int(result["rank"]), {}), result["storage_ops"])
    return [{"rank": rank, "storage_ops": ops} for rank, ops in sorted(by_rank.items())]


def record_rank_ops(record: Any, runs: Iterable[Any]) -> None:
    """Into ``record`` (report.record.TestRecord), the ranks' counts of ``runs`` (outcomes with
    ``results`` and ``run.in_process``) run under mpiexec."""
    per_rank = rank_ops(o.results for o in runs if not o.run.in_process)
    if not per_rank:
        return
    record.details["storage_ops_per_rank"] = per_rank
    for rank in per_rank:
        add_entries(record.storage_ops, rank["storage_ops"])
