"""Checkpoint qualification for the llama3 workloads, as MLPerf Storage runs it, one test per
workload and storage kind:

    pytest suites/test_checkpoint_qualification.py --iobench-workload=llama3-70b --iobench-scale=1 \
        --iobench-storage=local --iobench-root=/mnt/storage --iobench-accelerators=64 \
        --iobench-hosts=client1,...,client8 --iobench-mpi-dir=/shared/iobench

1. the rules are checked before anything runs (qualify/rules.py, CHECKPOINT_RULES): the process
   count (the model's full run, 8/64/512/1024, or the subset run's 8 in CLOSED; a multiple of one
   data-parallel instance in OPEN), 10 writes then 10 reads, fsync on, the overrides; a run that
   breaks one is refused with the reason per rule;
2. one run on that many processes under mpiexec (the checkpoint suite's engine,
   mpi/checkpointing.py): 10 checkpoints written, then the 10 read back verified, each
   checkpoint's duration the longest rank's; the page cache of the shards is dropped between
   write and read (the rules require it below 3x the clients' memory) and the state reached is
   checked against that rule;
3. the verdict in the test record's ``qualification`` section (kind ``checkpoint``) and in the
   terminal.

Without ``--iobench-accelerators`` the process count is the model's full run, or 8 (the subset
run) on a dry run (``--iobench-scale`` below 1, the default 1/1000): sizes and the pauses between
checkpoints are then scaled by --iobench-scale, the rules take a host memory of
DRY_RUN_HOST_MEMORY unless --iobench-host-memory is given, and the verdict is recorded without
failing the test. Without a llama3 workload named in --iobench-workload the test is skipped: even
at 1/1000, llama3-8b writes 10 checkpoints of 105 MB on 8 ranks.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pytest_iobench.mpi.checkpointing import CheckpointReadFailed, record_checkpoint, run_checkpoint_session
from pytest_iobench.plugin.options import get_settings
from pytest_iobench.qualify import rules
from pytest_iobench.qualify.options import clients
from pytest_iobench.storage.factory import StorageParam, plan_storages
from pytest_iobench.workload.config import load_workload
from pytest_iobench.workload.options import overrides_for, workload_id

#: a dry run's host memory, as the training qualification's
DRY_RUN_HOST_MEMORY = 4 * 1024 ** 2
#: named in the skip reason when no llama3 workload is given
SUGGESTED_WORKLOAD = "llama3-8b"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per llama3 workload named and storage kind (its first library: a qualification
    is of the storage); one skipped test, saying why, when none is named."""
    if "qualified_checkpoint" not in metafunc.fixturenames:
        return
    settings = get_settings(metafunc.config)
    names = [n for n in settings.workload or []
             if (c := load_workload(n, overrides_for(n, settings.set))).workflow.checkpoint
             and not c.workflow.train and rules.checkpoint_model(c)]
    firsts: dict[str, StorageParam] = {}
    for param in plan_storages(settings):
        if param.kind not in firsts or firsts[param.kind].skip:
            firsts[param.kind] = param
    cases = [pytest.param((n, p), id=f"{workload_id(n)}-{p.id}") for n in names for p in firsts.values()]
    if not cases:
        cases = [pytest.param(None, id="no-llama3-workload", marks=pytest.mark.skip(
            reason=f"a checkpoint qualification runs for a llama3 workload named in --iobench-workload (such as "
                   f"{SUGGESTED_WORKLOAD}; at 1/1000 it writes 10 checkpoints of 105 MB on 8 ranks)"))]
    metafunc.parametrize("qualified_checkpoint", cases)


@pytest.fixture
def qualified_checkpoint(request: pytest.FixtureRequest) -> Any:
    return request.param


def test_checkpoint_qualification(qualified_checkpoint: Any, storage_factory: Any, mpi_session: Any,
                                  iobench_config: Any, iobench_record: Any) -> None:
    """A llama3 checkpoint qualification: the rules (process count, 10 writes then 10 reads,
    fsync, overrides) checked before anything runs, then one run of 10 checkpoints written and
    10 read back on the processes (each checkpoint's duration the longest rank's), the page
    cache cleared between write and read (required below 3x the clients' memory) and the
    verdict in ``details.qualification``. On a dry run the sizes and the pauses between
    checkpoints are scaled by --iobench-scale and the verdict is recorded, not applied."""
    name, param = qualified_checkpoint
    if param.skip:
        pytest.skip(param.skip)
    settings = iobench_config
    storage = storage_factory.get(param.kind, param.library)
    user = overrides_for(name, settings.set)
    config = load_workload(name, user)
    model = rules.checkpoint_model(config)
    assert model is not None
    hosts, memory, dry = clients(settings, DRY_RUN_HOST_MEMORY)
    chosen = settings.accelerators
    processes = rules.checkpoint_processes(model, None if chosen.auto else chosen.high, dry=dry)
    closed = rules.CHECKPOINT_PROCESSES[model][0]
    defaults = [f"checkpoint.num_checkpoints_write={rules.CHECKPOINTS}",
                f"checkpoint.num_checkpoints_read={rules.CHECKPOINTS}"]
    parallel = config.model.parallelism
    replica = int(parallel.tensor) * int(parallel.pipeline)
    if processes == rules.SUBSET_PROCESSES < closed:
        defaults.append("checkpoint.mode=subset")  # mlpstorage's subset run: 8 processes write a part
    elif processes != closed and processes % replica == 0:
        # an OPEN count: the model's data parallelism grows with the processes, as mlpstorage's does
        defaults.append(f"model.parallelism.data={processes // replica}")
    pause = float(config.checkpoint.time_between_checkpoints)
    if dry and pause > 0:
        defaults.append(f"checkpoint.time_between_checkpoints={pause * settings.scale:.6f}")
    config = config.with_defaults(defaults)
    section: dict[str, Any] = {"workload": config.name, "kind": "checkpoint", "dry_run": dry,
                               "scale": settings.scale, "hosts": hosts, "host_memory_bytes": memory,
                               "accelerators_asked": str(chosen), "rules": [], "label": rules.CLOSED}
    iobench_record.details["qualification"] = section
    iobench_record.params.setdefault("workload", config.name)

    planned = rules.check("plan", rules.CheckpointPlan(config, model, processes, user,
                                                       fsync_not_applicable=storage.kind == "s3"),
                          rules.CHECKPOINT_RULES)
    section["rules"] = [c.to_dict() for c in planned]
    section["label"] = rules.label(planned)
    if section["label"] == rules.INVALID:
        section["verdict"] = "refused before running: " + "; ".join(rules.reasons(planned))
        pytest.fail(f"qualification of {config.name} refused: " + "; ".join(rules.reasons(planned)), pytrace=False)

    prefix = f"qualification-checkpoints-{uuid.uuid4().hex[:10]}"
    try:
        outcome = run_checkpoint_session(mpi_session, config, storage, ranks=processes, prefix=prefix,
                                         scale=settings.scale)
    except CheckpointReadFailed as exc:
        record_checkpoint(iobench_record, exc.outcome)
        pytest.fail(f"{exc} (the figures measured before are recorded)", pytrace=False)
    finally:
        storage.delete_prefix(prefix + "/")
    record_checkpoint(iobench_record, outcome)
    results = rules.CheckpointResults(outcome.size_bytes, hosts * memory, len(outcome.write_seconds),
                                      len(outcome.read_seconds), outcome.cache)
    checked = rules.check("result", results, rules.CHECKPOINT_RULES)
    section["rules"] += [c.to_dict() for c in checked]
    label = rules.label(planned + checked)
    write_rates, read_rates = outcome.write_bytes_per_second, outcome.read_bytes_per_second
    write_mean = sum(write_rates) / len(write_rates) / 1e9 if write_rates else 0.0
    read_mean = sum(read_rates) / len(read_rates) / 1e9 if read_rates else 0.0
    section.update({"label": label, "checkpoint": {
        "model": model, "processes": processes, "mode": config.checkpoint.mode, "size_bytes": outcome.size_bytes,
        "cache_required": outcome.size_bytes < rules.CACHE_FACTOR * hosts * memory, "cache": outcome.cache,
        "write_seconds": outcome.write_seconds, "read_seconds": outcome.read_seconds,
        "write_GB_per_second_mean": write_mean, "read_GB_per_second_mean": read_mean,
        "duration": "each checkpoint's seconds are the longest rank's"}})
    why = rules.reasons(planned + checked)
    what = (f"{config.name} on {storage.id}: {processes} processes wrote {len(outcome.write_seconds)} checkpoints of "
            f"{outcome.size_bytes / 1e9:.4g} GB at {write_mean:.4g} GB/s and read {len(outcome.read_seconds)} back at "
            f"{read_mean:.4g} GB/s (means over the checkpoints)")
    section["verdict"] = f"{label}: {what}" + (f"; {'; '.join(why)}" if why else "") + \
        (" (dry run, not a qualification)" if dry else "")
    iobench_record.warn(f"qualification: {section['verdict']}")
    if label == rules.INVALID and not dry:
        pytest.fail(f"qualification {section['verdict']}", pytrace=False)
