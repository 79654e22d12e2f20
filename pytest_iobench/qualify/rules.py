"""The MLPerf Storage rules a qualification run is checked against, as one table.

Each rule has an id, what it checks and a check that returns its finding: the label the rule
gives the run (CLOSED: within the rules; OPEN: allowed in the open division only; INVALID:
not a qualification run) and the reason in words. The run's label is the worst of its rules'.
``plan`` rules are checked before anything runs, ``result`` rules on the measured runs.

The override lists are mlpstorage's (``TrainingRunRulesChecker``): keys a CLOSED submission
may change, keys only an OPEN one may; any other key (``workflow.*`` aside) makes the run INVALID.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..workload.config import WorkloadConfig, parse_override
from .datasize import MEMORY_FACTOR, MIN_STEPS, GiB, dataset_size

CLOSED, OPEN, INVALID = "CLOSED", "OPEN", "INVALID"
_RANK = {CLOSED: 0, OPEN: 1, INVALID: 2}

#: keys a CLOSED run may override (mlpstorage's CLOSED_ALLOWED_PARAMS)
CLOSED_ALLOWED = ("dataset.num_files_train", "dataset.num_subfolders_train", "dataset.data_folder",
                  "reader.read_threads", "reader.computation_threads", "reader.transfer_size", "reader.odirect",
                  "reader.prefetch_size", "checkpoint.checkpoint_folder", "storage.storage_type",
                  "storage.storage_root")
#: keys only an OPEN run may override (mlpstorage's OPEN_ALLOWED_PARAMS)
OPEN_ALLOWED = ("framework", "dataset.format", "dataset.num_samples_per_file", "reader.data_loader")
#: MLPerf Storage: one warm-up, then this many measured runs, which must agree within AGREEMENT
MEASURED_RUNS = 5
AGREEMENT = 0.05
#: reader.odirect is allowed for this model only (mlpstorage's check_odirect_supported_model)
ODIRECT_MODEL = "unet3d"


@dataclass
class Plan:
    """What a run is checked against before it starts."""

    config: WorkloadConfig
    hosts: int
    host_memory_bytes: int
    accelerators: int
    #: 500, or fewer on a dry-run scale
    min_steps: int = MIN_STEPS


@dataclass
class Results:
    """What the measured runs gave: per run its mean AU (%) and samples/s; warm-ups apart."""

    au_floor_percent: float
    warmups: int
    au_percent: list[float] = field(default_factory=list)
    samples_per_second: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Finding:
    label: str
    reason: str


@dataclass(frozen=True)
class Rule:
    id: str
    phase: str  # "plan" or "result"
    checks: str
    check: Callable[[Any], Finding]


@dataclass(frozen=True)
class Checked:
    rule: Rule
    finding: Finding

    @property
    def passed(self) -> bool:
        return self.finding.label == CLOSED

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.rule.id, "checks": self.rule.checks, "passed": self.passed,
                "label": self.finding.label, "reason": self.finding.reason}


def override_key(text: str) -> str:
    """``++workload.reader.read_threads=8`` -> ``reader.read_threads``."""
    return ".".join(parse_override(text)[0])


def _dataset_memory(plan: Plan) -> Finding:
    need = dataset_size(plan.config, hosts=plan.hosts, host_memory_bytes=plan.host_memory_bytes,
                        accelerators=plan.accelerators, min_steps=plan.min_steps)
    files = int(plan.config.dataset.num_files_train)
    memory = f"{plan.hosts} host{'s' if plan.hosts > 1 else ''} x {plan.host_memory_bytes / GiB:.4g} GiB"
    if files < need.files_by_memory:
        return Finding(INVALID, f"dataset.num_files_train {files} < {need.files_by_memory}: the dataset "
                                f"({files * need.file_bytes / GiB:.4g} GiB) must be at least {MEMORY_FACTOR}x "
                                f"the clients' memory ({memory}); give --iobench-set "
                                f"dataset.num_files_train={need.num_files_train} (iobench datasize)")
    return Finding(CLOSED, f"{files} files ({files * need.file_bytes / GiB:.4g} GiB) are at least "
                           f"{MEMORY_FACTOR}x the clients' memory ({memory}: {need.files_by_memory} files)")


def _steps_per_epoch(plan: Plan) -> Finding:
    ds, batch = plan.config.dataset, int(plan.config.reader.batch_size)
    samples = int(ds.num_files_train) * int(ds.num_samples_per_file)
    steps = samples // batch // plan.accelerators
    if steps < plan.min_steps:
        need = dataset_size(plan.config, hosts=plan.hosts, host_memory_bytes=plan.host_memory_bytes,
                            accelerators=plan.accelerators, min_steps=plan.min_steps)
        many = "s" if plan.accelerators > 1 else ""
        return Finding(INVALID, f"{steps} steps per epoch < {plan.min_steps} ({samples} samples / batch {batch} / "
                                f"{plan.accelerators} accelerator{many}); give --iobench-set "
                                f"dataset.num_files_train={need.num_files_train} (iobench datasize)")
    return Finding(CLOSED, f"{steps} steps per epoch >= {plan.min_steps} on {plan.accelerators} "
                           f"accelerator{'s' if plan.accelerators > 1 else ''}")


def _overrides(plan: Plan) -> Finding:
    keys = [(override_key(t), t) for t in plan.config.overrides]
    keys = [(k, t) for k, t in keys if not k.startswith("workflow.")]
    invalid = [t for k, t in keys if k not in CLOSED_ALLOWED and k not in OPEN_ALLOWED]
    opened = [t for k, t in keys if k in OPEN_ALLOWED]
    if invalid:
        return Finding(INVALID, f"override not allowed in CLOSED or OPEN: {', '.join(invalid)} "
                                f"(CLOSED allows {', '.join(CLOSED_ALLOWED)}; OPEN also {', '.join(OPEN_ALLOWED)})")
    if opened:
        return Finding(OPEN, f"override allowed in OPEN only: {', '.join(opened)}")
    closed = [t for _, t in keys]
    return Finding(CLOSED, f"overrides allowed in CLOSED: {', '.join(closed)}" if closed else "no overrides")


def _odirect(plan: Plan) -> Finding:
    model = str(plan.config.model.name)
    if plan.config.reader.odirect and model != ODIRECT_MODEL:
        return Finding(INVALID, f"reader.odirect is allowed for {ODIRECT_MODEL} only, not for model {model}")
    return Finding(CLOSED, "reader.odirect " + ("on (unet3d)" if plan.config.reader.odirect else "off"))


def _runs(results: Results) -> Finding:
    if results.warmups < 1 or len(results.au_percent) < MEASURED_RUNS:
        return Finding(INVALID, f"{results.warmups} warm-up and {len(results.au_percent)} measured runs: "
                                f"the rules ask for 1 warm-up then {MEASURED_RUNS} measured runs")
    return Finding(CLOSED, f"{results.warmups} warm-up, then {len(results.au_percent)} measured runs")


def _agreement(results: Results) -> Finding:
    rates = results.samples_per_second
    if not rates:
        return Finding(INVALID, "no measured run")
    mean = sum(rates) / len(rates)
    worst = max(abs(r - mean) / mean for r in rates) if mean > 0 else float("inf")
    shown = ", ".join(f"{r:.4g}" for r in rates)
    if worst > AGREEMENT:
        return Finding(INVALID, f"the runs do not agree within {AGREEMENT:.0%}: samples/s {shown}, one is "
                                f"{worst:.1%} from their mean {mean:.4g}")
    return Finding(CLOSED, f"the runs agree within {AGREEMENT:.0%} (at most {worst:.1%} from the mean {mean:.4g})")


def _au_floor(results: Results) -> Finding:
    if not results.au_percent:
        return Finding(INVALID, "no measured run")
    mean = sum(results.au_percent) / len(results.au_percent)
    if mean < results.au_floor_percent:
        return Finding(INVALID, f"mean AU {mean:.2f}% over the measured runs is below the "
                                f"{results.au_floor_percent:g}% floor (metric.au)")
    return Finding(CLOSED, f"mean AU {mean:.2f}% meets the {results.au_floor_percent:g}% floor (metric.au)")


RULES: tuple[Rule, ...] = (
    Rule("dataset-memory", "plan", f"the dataset is at least {MEMORY_FACTOR}x the clients' total memory",
         _dataset_memory),
    Rule("steps-per-epoch", "plan", "at least 500 steps per epoch on the accelerators run (fewer on a dry-run scale)",
         _steps_per_epoch),
    Rule("overrides", "plan", "only keys mlpstorage allows are overridden: CLOSED's list, or OPEN's", _overrides),
    Rule("odirect", "plan", f"reader.odirect only for {ODIRECT_MODEL}", _odirect),
    Rule("measured-runs", "result", f"one warm-up, then {MEASURED_RUNS} measured runs", _runs),
    Rule("runs-agree", "result", f"the measured runs' samples/s each within {AGREEMENT:.0%} of their mean",
         _agreement),
    Rule("au-floor", "result", "the measured runs' mean AU meets the workload's floor (metric.au)", _au_floor),
)


def check(phase: str, subject: Plan | Results | CheckpointPlan | CheckpointResults,
          rules: Sequence[Rule] = RULES) -> list[Checked]:
    """Every rule of ``phase`` checked on ``subject``."""
    return [Checked(rule, rule.check(subject)) for rule in rules if rule.phase == phase]


def label(checked: Sequence[Checked]) -> str:
    """The run's label: the worst of its rules' (CLOSED when every rule holds)."""
    return max((c.finding.label for c in checked), key=_RANK.__getitem__, default=CLOSED)


def reasons(checked: Sequence[Checked]) -> list[str]:
    """``rule: reason`` for every rule that did not give CLOSED."""
    return [f"{c.rule.id}: {c.finding.reason}" for c in checked if not c.passed]


# -- checkpoint qualification (the llama3 workloads) ------------------------------------------
#: mlpstorage's subset run: this many processes write a part of any llama3 checkpoint
SUBSET_PROCESSES = 8
#: per model: (processes of a full CLOSED run, processes of one data-parallel instance); OPEN
#: allows any multiple of the latter (mlpstorage's LLM_ALLOWED_VALUES, Rules.md 4.6.1 and 4.6.4)
CHECKPOINT_PROCESSES = {
    "llama3-8b": (8, 8),
    "llama3-70b": (64, 8),
    "llama3-405b": (512, 256),
    "llama3-1t": (1024, 512),
}
#: MLPerf Storage: checkpoints written, then read back, in a run
CHECKPOINTS = 10
#: the page cache is cleared between write and read when a checkpoint is smaller than this many
#: times the clients' total memory
CACHE_FACTOR = 3
#: keys a CLOSED checkpoint run may override (where it goes, and the counts checked by their own rule)
CHECKPOINT_CLOSED_ALLOWED = ("checkpoint.checkpoint_folder", "checkpoint.num_checkpoints_write",
                             "checkpoint.num_checkpoints_read", "checkpoint.mode", "storage.storage_type",
                             "storage.storage_root")


def checkpoint_model(config: WorkloadConfig) -> str | None:
    """The llama3 model a workload checkpoints (by its name: ``llama3-70b``), or None."""
    name = config.name.lower().replace("_", "-")
    return next((m for m in CHECKPOINT_PROCESSES if name == m or name.startswith(m + "-")), None)


def checkpoint_processes(model: str, want: int | None, *, dry: bool) -> int:
    """The process count a checkpoint qualification of ``model`` runs: ``want``, else the model's
    full CLOSED count (the subset run's 8 on a dry run)."""
    if want is not None:
        return want
    return SUBSET_PROCESSES if dry else CHECKPOINT_PROCESSES[model][0]


@dataclass
class CheckpointPlan:
    """What a checkpoint run is checked against before it starts."""

    config: WorkloadConfig
    model: str
    processes: int
    #: the user's overrides (not the suite's own defaults)
    overrides: list[str] = field(default_factory=list)
    #: True on S3, where fsync does not apply (an object is durable once its upload completes)
    fsync_not_applicable: bool = False


@dataclass
class CheckpointResults:
    """What the run did: the checkpoints it wrote and read, their size, the cache between."""

    size_bytes: int
    memory_bytes: int
    writes: int
    reads: int
    cache: str


def _checkpoint_processes(plan: CheckpointPlan) -> Finding:
    closed, per_instance = CHECKPOINT_PROCESSES[plan.model]
    n = plan.processes
    if n == closed:
        return Finding(CLOSED, f"{n} processes: the full {plan.model} run")
    if n == SUBSET_PROCESSES:
        return Finding(CLOSED, f"{n} processes: the subset run (checkpoint.mode subset, of {closed} ranks)")
    allowed = f"CLOSED allows {SUBSET_PROCESSES} (subset) or {closed} (full); OPEN a multiple of {per_instance}"
    if n % per_instance == 0:
        return Finding(OPEN, f"{n} processes is allowed in OPEN only ({allowed})")
    return Finding(INVALID, f"{n} processes is not allowed for {plan.model}: {allowed}; give --iobench-accelerators")


def _checkpoint_counts(plan: CheckpointPlan) -> Finding:
    ck = plan.config.checkpoint
    writes, reads = int(ck.num_checkpoints_write), int(ck.num_checkpoints_read)
    if (writes, reads) != (CHECKPOINTS, CHECKPOINTS):
        return Finding(INVALID, f"checkpoint.num_checkpoints_write {writes} and num_checkpoints_read {reads}: "
                                f"the rules ask for {CHECKPOINTS} writes then {CHECKPOINTS} reads")
    return Finding(CLOSED, f"{CHECKPOINTS} writes then {CHECKPOINTS} reads")


def _checkpoint_fsync(plan: CheckpointPlan) -> Finding:
    if plan.fsync_not_applicable:
        return Finding(CLOSED, "S3: an object is durable once its upload completes (fsync does not apply)")
    if not plan.config.checkpoint.fsync:
        return Finding(INVALID, "checkpoint.fsync is off: the rules write checkpoints with fsync on")
    return Finding(CLOSED, "checkpoint.fsync on")


def _checkpoint_overrides(plan: CheckpointPlan) -> Finding:
    keys = [(override_key(t), t) for t in plan.overrides]
    opened = [t for k, t in keys if k not in CHECKPOINT_CLOSED_ALLOWED and not k.startswith("workflow.")]
    if opened:
        return Finding(OPEN, f"override allowed in OPEN only: {', '.join(opened)} "
                             f"(CLOSED allows {', '.join(CHECKPOINT_CLOSED_ALLOWED)})")
    return Finding(CLOSED, f"overrides allowed in CLOSED: {', '.join(plan.overrides)}" if plan.overrides
                   else "no overrides")


def _checkpoint_done(results: CheckpointResults) -> Finding:
    if (results.writes, results.reads) != (CHECKPOINTS, CHECKPOINTS):
        return Finding(INVALID, f"{results.writes} checkpoints written and {results.reads} read back: the rules ask "
                                f"for {CHECKPOINTS} and {CHECKPOINTS}")
    return Finding(CLOSED, f"{results.writes} checkpoints written, then {results.reads} read back")


#: cache states (workload/page_cache.py) in which the reads did not come from the client's page cache
_CACHE_CLEARED = {"evicted": "the page cache of the shards was dropped, and checked",
                  "odirect": "the shards were read through O_DIRECT",
                  "no-client-cache": "S3: the client keeps no cache"}


def _checkpoint_cache(results: CheckpointResults) -> Finding:
    limit = CACHE_FACTOR * results.memory_bytes
    size = f"a checkpoint of {results.size_bytes / GiB:.4g} GiB"
    if results.size_bytes >= limit:
        return Finding(CLOSED, f"{size} is at least {CACHE_FACTOR}x the clients' memory "
                               f"({results.memory_bytes / GiB:.4g} GiB): no cache to clear")
    if results.cache in _CACHE_CLEARED:
        return Finding(CLOSED, f"{size} is below {CACHE_FACTOR}x the clients' memory; {_CACHE_CLEARED[results.cache]}")
    why = ("the checkpoint is on a file system in memory" if results.cache == "memory"
           else "the page cache could not be dropped and O_DIRECT was not possible")
    return Finding(INVALID, f"{size} is below {CACHE_FACTOR}x the clients' memory ({results.memory_bytes / GiB:.4g} "
                            f"GiB), so the page cache must be cleared between write and read: {why}")


CHECKPOINT_RULES: tuple[Rule, ...] = (
    Rule("checkpoint-processes", "plan", f"the process count is the model's full run or the subset run's "
         f"{SUBSET_PROCESSES} (CLOSED), or a multiple of one data-parallel instance (OPEN)", _checkpoint_processes),
    Rule("checkpoint-counts", "plan", f"{CHECKPOINTS} writes then {CHECKPOINTS} reads", _checkpoint_counts),
    Rule("checkpoint-fsync", "plan", "checkpoints are written with fsync on", _checkpoint_fsync),
    Rule("checkpoint-overrides", "plan", "only where the checkpoint goes and its counts are overridden (CLOSED)",
         _checkpoint_overrides),
    Rule("checkpoint-done", "result", f"{CHECKPOINTS} checkpoints written, then {CHECKPOINTS} read back",
         _checkpoint_done),
    Rule("checkpoint-page-cache", "result", f"the page cache is cleared between write and read when a checkpoint "
         f"is smaller than {CACHE_FACTOR}x the clients' memory", _checkpoint_cache),
)
