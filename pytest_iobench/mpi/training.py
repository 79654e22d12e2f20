"""A training run from start to end: launch the ranks, reduce their figures, write DLIO's files.

    outcome = run_training_session(session, config, dataset_storage, ranks=2, output_folder=...)
    outcome.summary["au_mean_percent"], outcome.warnings, outcome.dlio_files

Usable without pytest; the plugin and the suites call it.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from ..storage import Storage
from ..storage.errors import redact
from ..workload.config import WorkloadConfig
from ..workload.dlio_output import training_summary, write_training_outputs
from ..workload.job import training_job
from ..workload.loop import epochs_with, plan_eval_steps, plan_steps, window_note
from ..workload.metrics import GB
from ..workload.sampler import new_run_seed
from .recorder import Recorder
from .session import MPISession, SessionRun
from .storage_ops import record_rank_ops


@dataclass
class TrainingOutcome:
    config: WorkloadConfig
    ranks: int
    storage_id: str
    summary: dict[str, Any]
    results: list[dict[str, Any]]
    run: SessionRun
    #: diagnostics for the results (page cache, O_DIRECT, keys not emulated, how keys were read)
    warnings: list[str] = field(default_factory=list)
    dlio_files: list[str] = field(default_factory=list)
    nominal_dataset_bytes: int = 0
    #: checkpoints written during training: per checkpoint the longest rank's seconds and the bytes
    checkpoints: dict[str, Any] = field(default_factory=dict)
    #: the settle asked for before training (0: none), and how long each rank waited for it
    settle_seconds: float = 0.0
    settle_waited: list[float] = field(default_factory=list)


def settle_for(config: WorkloadConfig, option: float | None, generated: bool) -> float:
    """Seconds to let the store settle before reading a dataset: --iobench-settle (``option``)
    if given, else the workload's storage.post_generation_settle_seconds (the MLCommons fork's
    key); 0 unless the dataset was ``generated`` by this session (one read from an earlier
    run has long settled)."""
    if not generated:
        return 0.0
    return float(option if option is not None else config.storage.post_generation_settle_seconds or 0)


def training_checkpoints(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Checkpoints written during training, reduced over ranks (duration = the longest rank's)."""
    count = len(results[0].get("checkpoints", []))
    if not count:
        return {}
    seconds = [max(r["checkpoints"][i]["seconds"] for r in results) for i in range(count)]
    sizes = [sum(r["checkpoints"][i]["bytes"] for r in results) for i in range(count)]
    rates = [b / s for b, s in zip(sizes, seconds) if s > 0]
    return {"size_bytes": sizes[0], "write_seconds": seconds, "write_seconds_mean": sum(seconds) / count,
            "write_bytes_per_second": sum(rates) / len(rates) if rates else 0.0,
            "steps": [c["step"] for c in results[0]["checkpoints"]]}


def nominal_dataset_bytes(config: WorkloadConfig) -> int:
    ds = config.dataset
    files = ds.num_files_train + (ds.num_files_eval if config.workflow.evaluation else 0)
    return int(files * ds.num_samples_per_file * float(ds.record_length_bytes))


def cache_warnings(config: WorkloadConfig, storage: Storage, dataset_bytes: int,
                   used: list[str] | None = None) -> list[str]:
    """Why the figures may not be the storage's: the page cache, O_DIRECT not applicable.
    ``used``: the storage kind each rank actually read through (default: ``storage.kind``)."""
    warnings = []
    used = sorted(set(used or [storage.kind]))
    odirect = bool(config.reader.odirect)
    if odirect and storage.kind == "s3":
        warnings.append("reader.odirect: True applies to files; the s3 storage is read as usual "
                        "(an S3 client keeps no page cache)")
    if odirect and "local" in used:
        warnings.append("reader.odirect: True, but the ranks read the local files through the page cache")
    if "local" in used:
        memory = psutil.virtual_memory().total
        if dataset_bytes <= memory:
            warnings.append(
                f"the dataset ({dataset_bytes / GB:.3g} GB) fits in this host's memory ({memory / GB:.3g} GB): "
                "reads after the first epoch may come from the page cache, not the storage; "
                "use --iobench-storage=direct or reader.odirect: True, or a dataset over 5x the memory")
    return warnings


def run_training_session(session: MPISession, config: WorkloadConfig, storage: Storage, *, ranks: int,
                         dataset_prefix: str = "", output_folder: str | None = None,
                         opener: str | None = None, run_seed: int | None = None,
                         checkpoint_storage: Storage | None = None, checkpoint_prefix: str = "",
                         scale: float = 1.0, dataset_bytes: int | None = None,
                         settle_seconds: float = 0.0) -> TrainingOutcome:
    """Train ``config`` on ``ranks`` ranks reading the dataset under ``dataset_prefix`` of
    ``storage``; with ``output_folder``, DLIO's output files are written there. With
    workflow.checkpoint, checkpoints (sizes times ``scale``) go to ``checkpoint_storage``.
    ``dataset_bytes``: the dataset's size (for the page-cache warning; default: nominal).
    ``settle_seconds``: rank 0 waits that long first, then every rank passes a barrier
    (settle_for; the wait is recorded, outside every figure)."""
    if storage.spec is None:
        raise ValueError(f"{storage!r} has no spec: open it with open_storage so ranks can open it too")
    if config.workflow.checkpoint and (checkpoint_storage is None or checkpoint_storage.spec is None):
        raise ValueError(f"workload {config.name} checkpoints (workflow.checkpoint) but no checkpoint storage is given")
    # a dataset too small for the batch and ranks is said here, before any rank starts
    steps = plan_steps(config, config.dataset.num_files_train, config.dataset.num_samples_per_file, ranks)
    eval_steps = plan_eval_steps(config, ranks)
    windows = [window_note(config, steps), window_note(config, eval_steps, "eval") if eval_steps else None]
    run_seed = new_run_seed() if run_seed is None else run_seed
    job = training_job(config, storage.spec, dataset_prefix, run_seed=run_seed, opener=opener,
                       checkpoint_storage=checkpoint_storage.spec if checkpoint_storage is not None else None,
                       checkpoint_prefix=checkpoint_prefix, scale=scale, seed=run_seed,
                       settle_seconds=settle_seconds)
    reuse = storage if (not dataset_prefix and not (config.reader.odirect and storage.kind == "local")) else None
    run = session.run(job, ranks, storage=reuse)
    results = run.results
    from ..workload.metrics import reduce_ranks

    summary = reduce_ranks(results, config.metric.au)
    if dataset_bytes is None:  # the generation's figure when known, else DLIO's nominal size
        dataset_bytes = nominal_dataset_bytes(config)
    used = [r.get("storage", {}).get("kind", storage.kind) for r in results]
    cached = cache_warnings(config, storage, dataset_bytes, used)
    warnings = list(cached)
    checkpoints = training_checkpoints(results)
    # what the checkpoint write figures do not mean, as the checkpoint suite says (checkpoints
    # are written only with workflow.checkpoint, which needs checkpoint_storage: checked above)
    if checkpoints and checkpoint_storage is not None:
        warnings.extend(checkpoint_storage.write_notes(config.checkpoint.fsync, "checkpoint.fsync"))
    if config.not_emulated:
        warnings.append(config.describe_not_emulated())
    warnings.extend(config.notes)
    warnings.extend(note for note in windows if note)
    outcome = TrainingOutcome(config, ranks, storage.id, summary, results, run, warnings,
                              nominal_dataset_bytes=dataset_bytes, checkpoints=checkpoints,
                              settle_seconds=settle_seconds,
                              settle_waited=[r.get("settle_seconds", 0.0) for r in results])
    # output.folder in the workload wins over the caller's folder, as in DLIO
    output_folder = config.output.folder or output_folder
    if output_folder:
        hosts = [r.get("host", {}) for r in results]
        summary_json = training_summary(
            config, summary, results, hosts=hosts, nominal_record_bytes=float(config.dataset.record_length_bytes),
            dataset_bytes=dataset_bytes, potential_caching=any("page cache" in w for w in cached),
            checkpoint=outcome.checkpoints or None)
        outcome.dlio_files = write_training_outputs(output_folder, summary_json, results, hosts)
        outcome.dlio_files.append(write_log(os.path.join(output_folder, config.output.log_file), outcome))
    return outcome


def _settle_record(runs: list[TrainingOutcome]) -> dict[str, Any]:
    settled = [o for o in runs if o.settle_seconds > 0]
    if not settled:
        return {"seconds": 0.0}
    return {"seconds": settled[0].settle_seconds, "run": runs.index(settled[0]),
            "waited_seconds_per_rank": settled[0].settle_waited}


def write_log(path: str, outcome: TrainingOutcome) -> str:
    """DLIO's log file (output.log_file): what ran and the figures per epoch, in words."""
    s, config = outcome.summary, outcome.config
    lines = [f"workload {config.name} ({config.source}) on {outcome.storage_id}, {outcome.ranks} ranks, "
             f"{outcome.results[0]['steps_per_epoch']} steps per epoch"]
    lines += [f"overrides: {' '.join(config.overrides)}"] if config.overrides else []
    for e, au in enumerate(s["au_percent"]):
        lines.append(f"epoch {e + 1}: AU {au:.2f}%, {s['samples_per_second'][e]:.1f} samples/s, "
                     f"{s['bytes_per_second'][e] / 1e6:.1f} MB/s, {s['epoch_seconds'][e]:.2f} s")
    lines.append(f"mean AU {s['au_mean_percent']:.2f}% (floor {s['au_floor_percent']:g}%): "
                 f"{'success' if s['au_met'] else 'fail'}; slowest phase: {s['slowest_phase']}")
    lines += [f"warning: {w}" for w in outcome.warnings]
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(redact("\n".join(lines) + "\n"))  # an override may set a credential
    os.replace(tmp, path)
    return path


#: every metric of a training run: (unit, direction)
METRIC_UNITS = {
    "train_au_percent": ("%", "higher"), "train_samples_per_second": ("samples/s", "higher"),
    "train_read_MB_per_second": ("MB/s", "higher"), "train_read_MiB_per_second": ("MiB/s", "higher"),
    **{f"batch_read_{p}_seconds": ("s", "lower") for p in ("p50", "p90", "p99", "max")},
    "eval_au_percent": ("%", "higher"), "eval_samples_per_second": ("samples/s", "higher"),
    "eval_read_MB_per_second": ("MB/s", "higher"),
    "checkpoint_size_GB": ("GB", "none"), "checkpoint_write_seconds": ("s", "lower"),
    "checkpoint_write_GB_per_second": ("GB/s", "higher"),
}


def expected_metrics(config: WorkloadConfig, ranks: int) -> dict[str, tuple[str, str]]:
    """The metrics every run of ``config`` on ``ranks`` ranks gives: {name: (unit, direction)}
    (evaluation and checkpoint metrics when the workload evaluates and writes checkpoints, as
    the loop decides it)."""
    names = [n for n in METRIC_UNITS if not n.startswith(("eval_", "checkpoint_"))]
    train, ev, ck = config.train, config.evaluation, config.checkpoint
    if config.workflow.evaluation and epochs_with(ev.eval_after_epoch, ev.epochs_between_evals, train.epochs):
        names += [n for n in METRIC_UNITS if n.startswith("eval_")]
    if config.workflow.checkpoint and ck.num_checkpoints_write != 0:
        if ck.steps_between_checkpoints > 0:
            steps = plan_steps(config, config.dataset.num_files_train, config.dataset.num_samples_per_file, ranks)
            writes = steps * train.epochs >= ck.steps_between_checkpoints
        else:
            writes = bool(epochs_with(ck.checkpoint_after_epoch, ck.epochs_between_checkpoints, train.epochs))
        if writes:
            names += [n for n in METRIC_UNITS if n.startswith("checkpoint_")]
    return {n: METRIC_UNITS[n] for n in names}


def training_values(outcome: TrainingOutcome) -> dict[str, float]:
    """The metrics of one run, by name (see expected_metrics for units)."""
    from ..workload.metrics import MB, MiB

    s = outcome.summary
    values = {"train_au_percent": s["au_mean_percent"], "train_samples_per_second": s["samples_per_second_mean"],
              "train_read_MB_per_second": s["bytes_per_second_mean"] / MB,
              "train_read_MiB_per_second": s["bytes_per_second_mean"] / MiB}
    values.update({f"batch_read_{name}_seconds": v for name, v in s["batch_read_seconds"].items()})
    if "eval" in s:
        values.update({"eval_au_percent": s["eval"]["au_mean_percent"],
                       "eval_samples_per_second": s["eval"]["samples_per_second_mean"],
                       "eval_read_MB_per_second": s["eval"]["bytes_per_second_mean"] / MB})
    if outcome.checkpoints:
        ck = outcome.checkpoints
        values.update({"checkpoint_size_GB": ck["size_bytes"] / 1e9,
                       "checkpoint_write_seconds": statistics.median(ck["write_seconds"]),
                       "checkpoint_write_GB_per_second": ck["write_bytes_per_second"] / 1e9})
    return values


def measure_training(record: Recorder, run: Callable[[], TrainingOutcome], config: WorkloadConfig, ranks: int,
                     floor_waived: str = "") -> TrainingOutcome:
    """Run the whole workload ``record.warmups`` times (recorded, not counted) then
    ``record.repeat`` times through ``record.measure`` (MLPerf Storage: a warm-up run, then
    measured runs): each metric is the median of the measured runs, with every value kept;
    the AU criterion applies to the median. ``run`` does one run. Returns the last run's
    outcome (its details, warnings and DLIO files go into the record)."""
    outcomes: list[TrainingOutcome] = []

    def once() -> dict[str, float]:
        outcomes.append(run())
        return training_values(outcomes[-1])

    record.measure(once, expected_metrics(config, ranks))
    record_training(record, outcomes[-1], floor_waived, runs=outcomes, warmups=record.warmups)
    return outcomes[-1]


def record_training(record: Recorder, outcome: TrainingOutcome, floor_waived: str = "", *,
                    runs: list[TrainingOutcome] | None = None, warmups: int = 0) -> None:
    """Put a training outcome into a test's result record (report.record.TestRecord):
    metrics (recorded whether or not the AU floor is met), warnings, per-rank details and the
    AU criterion, whose explanation gives AU, floor and the slowest phase. ``floor_waived``:
    why the AU floor does not apply here (the criterion is then left out, and that is said).
    ``runs``: every run of a measurement (warm-ups first), whose metrics ``measure`` recorded
    already; the criterion then holds the median of the measured runs to the floor."""
    config, s = outcome.config, outcome.summary
    record.kind = "train"
    record.params.setdefault("workload", config.name)
    record.params.setdefault("ranks", outcome.ranks)
    if runs is None:
        for name, value in training_values(outcome).items():
            unit, direction = METRIC_UNITS[name]
            repeats = outcome.checkpoints["write_seconds"] if name == "checkpoint_write_seconds" else None
            record.metric(name, value, unit, direction, repeats=repeats)
    for warning in outcome.warnings:
        record.warn(warning)
    record.details["training"] = {
        "workload": config.name,
        "source": config.source,
        "overrides": config.overrides,
        "storage": outcome.storage_id,
        "ranks": outcome.ranks,
        "in_process": outcome.run.in_process,
        "steps_per_epoch": outcome.results[0]["steps_per_epoch"],
        "au_percent_per_epoch": s["au_percent"],
        "samples_per_second_per_epoch": s["samples_per_second"],
        "bytes_per_second_per_epoch": s["bytes_per_second"],
        # every byte of each epoch over its read time, excluded steps included (metrics.py)
        "whole_epoch_bytes_per_second_per_epoch": s["whole_epoch_bytes_per_second"],
        "bytes_read": s["bytes_read"],
        "batch_wait_seconds": s["batch_wait_seconds"],
        "phases": s["phases"],
        "slowest_phase": s["slowest_phase"],
        "dlio_files": outcome.dlio_files,
        "checkpoints": outcome.checkpoints,
        # the wait after generation (settle_for), in whichever run made it; in no figure
        "settle": _settle_record(runs or [outcome]),
        "per_rank": [
            {"rank": r["rank"], "host": r.get("host", {}).get("hostname"),
             "storage": "-".join(r["storage"].values()) if "storage" in r else outcome.storage_id,
             "au_percent": [ep["au_percent"] for ep in r["epochs"]],
             "samples_per_second": [ep["samples_per_second"] for ep in r["epochs"]],
             "bytes_read": [ep["bytes_read"] for ep in r["epochs"]],
             "window_bytes": [ep["window_bytes"] for ep in r["epochs"]],
             "load_wait_seconds": [ep["load_wait_seconds"] for ep in r["epochs"]],
             "barrier_seconds": [ep["barrier_seconds"] for ep in r["epochs"]]}
            for r in outcome.results],
        "effective_config": config.to_dict(),
    }
    record_rank_ops(record, runs or [outcome])
    if not outcome.run.in_process:  # ranks of other processes: their endpoints' share (spread.py)
        spread = record.details.setdefault("endpoints", {})
        for result in (r for run in runs or [outcome] for r in run.results):
            for url, counts in result.get("endpoints", {}).items():
                mine = spread.setdefault(url, dict.fromkeys(counts, 0))
                for name, value in counts.items():
                    mine[name] += value
        if not spread:
            del record.details["endpoints"]
    floor = s["au_floor_percent"]
    au = record.metrics["train_au_percent"].value
    if runs is not None:
        record.details["training"]["runs"] = [
            {"warmup": i < warmups, "au_mean_percent": r.summary["au_mean_percent"],
             "au_percent_per_epoch": r.summary["au_percent"], "bytes_read": r.summary["bytes_read"],
             "samples_per_second": r.summary["samples_per_second_mean"]} for i, r in enumerate(runs)]
    if floor_waived:
        # the table says why in a few words (the reason's head), the warning says it all
        record.waive("train_au_percent", f"AU floor waived: {floor_waived.split(' (', 1)[0]}",
                     f"AU floor {floor:g}% not applied (mean AU {au:.2f}%): {floor_waived}")
        return
    where = f"{config.name} on {outcome.storage_id} with {outcome.ranks} rank{'s' if outcome.ranks > 1 else ''}"
    measured = [r for r in runs[warmups:]] if runs is not None else [outcome]
    what = "mean AU" if len(measured) == 1 else f"median over {len(measured)} runs of the mean AU"
    if au >= floor:
        description = f"{what} {au:.2f}% meets the {floor:g}% floor (metric.au) for {where}"
    else:
        per_run = ("; per run " + ", ".join(f"{r.summary['au_mean_percent']:.1f}%" for r in measured)
                   if len(measured) > 1 else "")
        description = (f"{what} {au:.2f}% is below the {floor:g}% floor (metric.au) for {where}{per_run}; "
                       f"per epoch {', '.join(f'{a:.1f}%' for a in s['au_percent'])}; "
                       f"slowest phase: {s['slowest_phase']}")
    record.criterion("train_au_percent", ">=", floor, description)
