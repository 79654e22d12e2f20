"""The session's start-up check, without pytest: every problem of the settings that can be
known before anything runs, one line each.

The plugin calls ``check_startup`` once, in ``pytest_cmdline_main``, and turns the problems into
one usage error (exit code 4). The checks are independent of each other, so every problem is
reported in one run, not one per run. The heavy modules (the workload YAML loader, the
result schema) are imported here, when a check needs them, not when the plugin loads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report.gate_rules import PYTEST_NAMES, gate_problems
from ..settings import Settings, SettingsError

if TYPE_CHECKING:
    from ..data.spec import DatasetSpec
    from ..workload.config import WorkloadConfig

#: what the training suite runs when --iobench-workload is not given: seconds each
TRAINING_WORKLOADS = ("unet3d_small", "resnet50_small", "cosmoflow_small", "dlrm_parquet_small")
#: what the checkpoint suite runs when --iobench-workload is not given (at --iobench-scale)
CHECKPOINT_WORKLOADS = ("llama3-8b",)


@dataclass
class Startup:
    """What the check found: its problems, and what it loaded on the way (for the session)."""

    problems: list[str] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    workloads: dict[str, WorkloadConfig] = field(default_factory=dict)


def workload_kind(workload: WorkloadConfig) -> str:
    """'train' for a workload that trains (checkpoints during training included), 'checkpoint'
    for a checkpoint-only workload (workflow.train False, workflow.checkpoint True)."""
    if workload.workflow.train:
        return "train"
    return "checkpoint" if workload.workflow.checkpoint else "none"


def workload_options_given(settings: Settings) -> bool:
    """Whether this session asks anything of the workloads (else the shipped defaults, checked
    by the package's own tests, are loaded only when a suite runs them)."""
    return bool(settings.workload or settings.set or settings.adopt or settings.hosts or settings.hostfile)


def check_startup(settings: Settings, invocation_dir: str | Path) -> Startup:
    """Every problem of ``settings`` found before the session runs (the controller's check)."""
    from ..report.options import check_output

    found = Startup()
    # the defaults are valid (the package's tests run on them): only a session given a setting
    # (command line, ini or environment) has storage settings to check, and a pytest run of a
    # project that uses no iobench option does not load the storage layer for nothing
    if any(source != "default" for source in settings.sources.values()):
        from ..storage.endpoint import EndpointError
        from ..storage.factory import check_settings

        try:
            check_settings(settings)
        except (SettingsError, EndpointError) as exc:
            found.problems.append(str(exc))
    try:
        check_output(settings, str(invocation_dir))
    except SettingsError as exc:
        found.problems.append(str(exc))
    found.problems += gate_problems(
        baseline=settings.compare, threshold=settings.fail_regression, fail_missing=settings.fail_missing,
        names=PYTEST_NAMES, threshold_source=settings.sources.get("fail-regression", "default"),
        missing_source=settings.sources.get("fail-missing", "default"))
    if settings.compare:
        from ..report.baseline import load_baseline
        from ..report.schema import DocumentError

        try:
            found.baseline = load_baseline(settings.compare, invocation_dir)
        except DocumentError as exc:
            found.problems.append(f"--iobench-compare: {exc}")
    if workload_options_given(settings):
        _check_workloads(settings, found)
    return found


def _check_workloads(settings: Settings, found: Startup) -> None:
    from ..workload.config import WorkloadError, load_workload
    from ..workload.options import check_mpi_settings, override_problems, overrides_for

    try:
        check_mpi_settings(settings)
    except SettingsError as exc:
        found.problems.append(str(exc))
    names = list(settings.workload or (TRAINING_WORKLOADS + CHECKPOINT_WORKLOADS))
    problems = override_problems(settings.set, names)
    for name in names:
        try:
            workload = found.workloads[name] = load_workload(name, overrides_for(name, settings.set))
        except WorkloadError as exc:
            problems.append(str(exc))
            continue
        if settings.workload and workload_kind(workload) == "none":
            problems.append(f"workload {name}: workflow.train and workflow.checkpoint are both False: "
                            "nothing to run")
    if problems:
        where = " (with --iobench-set " + " ".join(settings.set) + ")" if settings.set else ""
        found.problems.append("\n".join(problems) + where)
        return
    if settings.adopt:
        # the workloads given: their data folders; else (tests with their own specs) any file
        trained = [found.workloads[n].dataset for n in settings.workload or ()
                   if workload_kind(found.workloads[n]) == "train"]
        try:
            check_adoptable(settings, trained)
        except SettingsError as exc:
            found.problems.append(str(exc))


def check_adoptable(settings: Settings, specs: Sequence[DatasetSpec]) -> None:
    """--iobench-adopt reads DLIO's datasets under --iobench-root: on local files, at least one
    of the workloads' data folders must hold files (an S3 root is found out by its tests)."""
    from ..data.generate import dlio_folder

    root = settings.root or ""
    if root.startswith("s3://") or not {"local", "direct"} & set(settings.storage):
        return
    if not root:
        raise SettingsError("--iobench-adopt reads the datasets DLIO wrote under --iobench-root; give "
                            "--iobench-root DIR (the directory DLIO's data_folder is relative to)")
    looked = [os.path.join(root, dlio_folder(spec), "train") for spec in specs]
    if looked and not any(os.path.isdir(p) and any(os.scandir(p)) for p in looked):
        raise SettingsError(f"--iobench-adopt: no dataset to adopt under {root}: looked for files in "
                            f"{', '.join(looked)}; generate them with DLIO first, or drop --iobench-adopt")
    if not looked and not any(files for _, _, files in os.walk(root)):
        raise SettingsError(f"--iobench-adopt: no dataset to adopt under {root}: it holds no files; give the "
                            "directory DLIO wrote its datasets under, or drop --iobench-adopt")
