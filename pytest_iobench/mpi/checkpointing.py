"""A checkpoint run from start to end: launch the ranks, reduce per checkpoint, say what the
figures mean.

    outcome = run_checkpoint_session(session, config, scratch_storage, ranks=2, scale=1/1000)
    outcome.write_seconds, outcome.write_bytes_per_second, outcome.warnings

A checkpoint's write (read) duration is the longest rank's; its throughput is the
checkpoint's bytes over that duration (GB = 10^9, GiB = 2^30).
"""

from __future__ import annotations

import secrets
import statistics
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ..storage import Storage
from ..workload.checkpoint_layout import layout_for
from ..workload.config import WorkloadConfig
from ..workload.job import checkpoint_job
from ..workload.metrics import GB, GiB
from .session import MPISession, SessionRun


@dataclass
class CheckpointOutcome:
    config: WorkloadConfig
    ranks: int
    storage_id: str
    scale: float
    layout: dict[str, Any]
    results: list[dict[str, Any]]
    run: SessionRun
    #: per checkpoint: the longest rank's seconds, and the bytes every rank wrote (read)
    write_seconds: list[float] = field(default_factory=list)
    write_bytes: list[int] = field(default_factory=list)
    read_seconds: list[float] = field(default_factory=list)
    read_bytes: list[int] = field(default_factory=list)
    cache: str = "none"
    warnings: list[str] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        """Bytes of one checkpoint as written (the layout's size; less in subset mode)."""
        return self.write_bytes[0] if self.write_bytes else self.layout["size_bytes"]

    @staticmethod
    def _rate(bytes_: list[int], seconds: list[float]) -> list[float]:
        return [b / s if s > 0 else 0.0 for b, s in zip(bytes_, seconds)]

    @property
    def write_bytes_per_second(self) -> list[float]:
        return self._rate(self.write_bytes, self.write_seconds)

    @property
    def read_bytes_per_second(self) -> list[float]:
        return self._rate(self.read_bytes, self.read_seconds)

    def summary(self) -> dict[str, Any]:
        """The fields DLIO's summary.json has for checkpoints (see dlio_output)."""
        mean = lambda v: statistics.fmean(v) if v else 0.0  # noqa: E731
        return {"size_bytes": self.size_bytes,
                "write_bytes_per_second": mean(self.write_bytes_per_second),
                "write_seconds_mean": mean(self.write_seconds),
                "read_bytes_per_second": mean(self.read_bytes_per_second),
                "read_seconds_mean": mean(self.read_seconds)}


def run_checkpoint_session(session: MPISession, config: WorkloadConfig, storage: Storage, *, ranks: int,
                           prefix: str = "", scale: float = 1.0, seed: int | None = None) -> CheckpointOutcome:
    """Write and read back ``config``'s checkpoints on ``ranks`` ranks under ``prefix``."""
    if storage.spec is None:
        raise ValueError(f"{storage!r} has no spec: open it with open_storage so ranks can open it too")
    seed = secrets.randbits(31) if seed is None else seed
    layout = layout_for(config, processes=ranks, scale=scale)  # errors here, before launching
    job = checkpoint_job(config, storage.spec, prefix, scale=scale, seed=seed)
    run = session.run(job, ranks, storage=storage if not prefix else None)
    results = run.results
    outcome = CheckpointOutcome(config, ranks, storage.id, scale, layout.to_dict(), results, run)
    for i in range(len(results[0]["writes"])):
        outcome.write_seconds.append(max(r["writes"][i]["seconds"] for r in results))
        outcome.write_bytes.append(sum(r["writes"][i]["bytes"] for r in results))
    for i in range(len(results[0]["reads"])):
        outcome.read_seconds.append(max(r["reads"][i]["seconds"] for r in results))
        outcome.read_bytes.append(sum(r["reads"][i]["bytes"] for r in results))
    outcome.cache = results[0]["cache"]
    outcome.warnings = checkpoint_warnings(config, outcome, layout.ranks)
    return outcome


def checkpoint_warnings(config: WorkloadConfig, outcome: CheckpointOutcome, layout_ranks: int) -> list[str]:
    warnings = []
    if outcome.scale != 1:
        frac = Fraction(outcome.scale).limit_denominator(10**9)
        warnings.append(f"scaled run: every shard is {frac} of its full size "
                        f"({outcome.size_bytes / GB:.3g} GB of {outcome.layout['full_size_bytes'] / GB:.4g} GB "
                        "per checkpoint); --iobench-scale=1 writes the full model")
    if layout_ranks != outcome.ranks:
        who = "1 process wrote and read it" if outcome.ranks == 1 else (
            f"{outcome.ranks} processes wrote and read it (process p took layout ranks p, p+{outcome.ranks}, ...)")
        warnings.append(f"the layout is computed for the model's {layout_ranks} ranks; {who}")
    if config.checkpoint.mode == "subset" and outcome.size_bytes < outcome.layout["size_bytes"]:
        warnings.append(f"checkpoint.mode: subset: only the shards of layout ranks 0-{outcome.ranks - 1} are written "
                        f"({outcome.size_bytes:,} of {outcome.layout['size_bytes']:,} bytes per checkpoint)")
    if outcome.read_seconds and outcome.cache == "none":
        warnings.append("the page cache of the shards could not be dropped and O_DIRECT was not possible: "
                        "reads may have come from memory, not the storage")
    if config.not_emulated:
        warnings.append(config.describe_not_emulated())
    warnings.extend(config.notes)
    return warnings


def record_checkpoint(record, outcome: CheckpointOutcome) -> None:
    """Put a checkpoint outcome into a test's result record (report.record.TestRecord)."""
    config = outcome.config
    record.kind = "checkpoint"
    record.params.setdefault("workload", config.name)
    record.params.setdefault("ranks", outcome.ranks)
    record.params.setdefault("scale", outcome.scale)
    record.metric("checkpoint_size_GB", outcome.size_bytes / GB, "GB", "none")
    record.metric("checkpoint_size_GiB", outcome.size_bytes / GiB, "GiB", "none")
    for phase, seconds, rates in (("write", outcome.write_seconds, outcome.write_bytes_per_second),
                                  ("read", outcome.read_seconds, outcome.read_bytes_per_second)):
        if not seconds:
            continue
        median_seconds = statistics.median(seconds)
        median_rate = statistics.median(rates)
        record.metric(f"checkpoint_{phase}_seconds", median_seconds, "s", "lower", repeats=seconds)
        record.metric(f"checkpoint_{phase}_GB_per_second", median_rate / GB, "GB/s", "higher",
                      repeats=[r / GB for r in rates])
        record.metric(f"checkpoint_{phase}_GiB_per_second", median_rate / GiB, "GiB/s", "higher",
                      repeats=[r / GiB for r in rates])
    for warning in outcome.warnings:
        record.warn(warning)
    record.details["checkpoint"] = {
        "workload": config.name,
        "source": config.source,
        "overrides": config.overrides,
        "storage": outcome.storage_id,
        "processes": outcome.ranks,
        "layout": outcome.layout,
        "fsync": config.checkpoint.fsync,
        "cache_between_write_and_read": outcome.cache,
        "write_seconds": outcome.write_seconds,
        "read_seconds": outcome.read_seconds,
        "per_rank": [{"rank": r["rank"], "shards": len(r["shards"]),
                      "write_seconds": [w["seconds"] for w in r["writes"]],
                      "write_bytes": [w["bytes"] for w in r["writes"]],
                      "read_seconds": [x["seconds"] for x in r["reads"]],
                      "read_bytes": [x["bytes"] for x in r["reads"]]} for r in outcome.results],
    }
