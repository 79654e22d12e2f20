"""Vendor qualification as MLPerf Storage runs it, in one test per workload and storage:

    pytest suites/test_qualification.py --iobench-workload=unet3d_h100 --iobench-storage=s3 \
        --iobench-scale=1 --iobench-set unet3d_h100:dataset.num_files_train=28000

1. the rules are checked before anything runs (dataset vs the clients' memory, steps per
   epoch, overrides allowed in CLOSED or OPEN): a run that breaks one is refused with the
   reason per rule, one allowed in OPEN only is labelled OPEN;
2. the largest accelerator count that meets the AU floor is searched for, doubling then
   bisecting (each probe one run of the workload on that many ranks), between the lowest and
   the highest of --iobench-ranks (when given), else from 1 to what the dataset allows;
3. one warm-up and 5 measured runs at that count (the rules' counts, whatever --iobench-warmup
   and --iobench-repeat say); their mean AU against the floor and the 5% agreement of their
   samples/s;
4. the verdict (label, rules with reasons, the probes, the runs) in the test record's
   ``qualification`` section (docs/results.md) and in the terminal.

On a dry-run scale (``--iobench-scale`` below 1, the default 1/1000), the rules take a host
memory of DRY_RUN_HOST_MEMORY and ask max(1, 500 x scale) steps per epoch, the search stops at
DRY_RUN_LIMIT accelerators, and the verdict is recorded without failing the test: the flow
runs in seconds on the embedded defaults and is not a qualification. Without
--iobench-workload it qualifies unet3d_small. docs/qualification.md says how to run it for real.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

import pytest

from pytest_iobench.mpi.training import TrainingOutcome, measure_training, run_training_session, settle_for
from pytest_iobench.plugin.options import get_settings
from pytest_iobench.qualify import rules
from pytest_iobench.qualify.datasize import MIN_STEPS, dataset_size, max_accelerators
from pytest_iobench.qualify.options import clients
from pytest_iobench.qualify.search import search
from pytest_iobench.storage.factory import StorageParam, plan_storages
from pytest_iobench.workload.config import load_workload
from pytest_iobench.workload.options import overrides_for, workload_id

#: why the floor is not applied on the embedded endpoint (as the training suite says it)
EMBEDDED_S3 = ("the embedded S3 endpoint (moto, one Python process) is far slower than any S3 storage; "
               "give --iobench-s3-endpoint to qualify an S3 storage")
#: what runs without --iobench-workload: seconds a run
DEFAULT_WORKLOAD = "unet3d_small"
#: a dry run's host memory: 5x it (20 MiB) is within unet3d_small's 28 MiB dataset
DRY_RUN_HOST_MEMORY = 4 * 1024 ** 2
#: a dry run's search stops here (each probe is a run under mpiexec)
DRY_RUN_LIMIT = 4


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per workload and storage kind (its first library: a qualification is of the
    storage, and the search is long)."""
    if "qualified" not in metafunc.fixturenames:
        return
    settings = get_settings(metafunc.config)
    names = [n for n in settings.workload or [DEFAULT_WORKLOAD]
             if load_workload(n, overrides_for(n, settings.set)).workflow.train]
    firsts: dict[str, StorageParam] = {}
    for param in plan_storages(settings):
        if param.kind not in firsts or firsts[param.kind].skip:
            firsts[param.kind] = param
    cases = [(n, p) for n in names for p in firsts.values()]
    metafunc.parametrize("qualified", cases, ids=[f"{workload_id(n)}-{p.id}" for n, p in cases])


@pytest.fixture
def qualified(request: pytest.FixtureRequest) -> Any:
    return request.param


def search_bounds(settings: Any, config: Any, min_steps: int, dry: bool) -> tuple[int, int, bool]:
    """(lowest, highest, fixed) accelerator counts: --iobench-accelerators (N: fixed, A-B), else
    --iobench-ranks when given, else 1 to what the dataset gives min_steps steps per epoch."""
    chosen = settings.accelerators
    if not chosen.auto:
        return chosen.low, chosen.high, chosen.fixed
    if settings.sources.get("ranks", "default") != "default":
        return min(settings.ranks), max(settings.ranks), False
    return 1, max(1, min(max_accelerators(config, min_steps), DRY_RUN_LIMIT if dry else 1 << 20)), False


def test_qualification(qualified: Any, storage_factory: Any, mpi_session: Any, iobench_config: Any,
                       iobench_record: Any, dataset_factory: Any, dlio_output_dir: str) -> None:
    name, param = qualified
    if param.skip:
        pytest.skip(param.skip)
    storage = storage_factory.get(param.kind, param.library)
    settings = iobench_config
    config = load_workload(name, overrides_for(name, settings.set))
    hosts, memory, dry = clients(settings, DRY_RUN_HOST_MEMORY)
    min_steps = max(1, round(MIN_STEPS * settings.scale)) if dry else MIN_STEPS
    start, limit, fixed = search_bounds(settings, config, min_steps, dry)
    section: dict[str, Any] = {"workload": config.name, "kind": "training", "dry_run": dry, "scale": settings.scale,
                     "hosts": hosts, "host_memory_bytes": memory, "min_steps": min_steps,
                     "accelerators_asked": str(settings.accelerators),
                     "dataset": dataset_size(config, hosts=hosts, host_memory_bytes=memory, accelerators=limit,
                                             min_steps=min_steps).to_dict()}
    iobench_record.details["qualification"] = section
    iobench_record.params.setdefault("workload", config.name)

    # 1. the rules, for the most accelerators the search may try
    planned = rules.check("plan", rules.Plan(config, hosts, memory, limit, min_steps))
    section["rules"] = [c.to_dict() for c in planned]
    section["label"] = rules.label(planned)
    if section["label"] == rules.INVALID:
        section["verdict"] = "refused before running: " + "; ".join(rules.reasons(planned))
        pytest.fail(f"qualification of {config.name} refused: " + "; ".join(rules.reasons(planned)), pytrace=False)

    dataset = dataset_factory(config.dataset, storage)
    waived = EMBEDDED_S3 if storage.kind == "s3" and storage_factory.embedded else ""
    if dry:
        waived = waived or (f"a dry run (--iobench-scale={settings.scale:g} < 1): the verdict is recorded, "
                            "not applied")
    settle = [settle_for(config, settings.settle, generated=not dataset.reused)]
    ranks_now = [start]

    def run() -> TrainingOutcome:
        checkpoints = f"qualification-checkpoints-{uuid.uuid4().hex[:10]}"
        try:
            return run_training_session(
                mpi_session, config, dataset.area, ranks=ranks_now[0], dataset_prefix=dataset.prefix,
                output_folder=dlio_output_dir, dataset_bytes=dataset.bytes, checkpoint_storage=storage,
                checkpoint_prefix=checkpoints, scale=settings.scale,
                settle_seconds=settle.pop() if settle else 0.0)
        finally:
            if config.workflow.checkpoint:
                storage.delete_prefix(checkpoints + "/")

    # 2. the search: one run per count probed
    floor = float(config.metric.au) * 100

    def probe(n: int) -> float:
        ranks_now[0] = n
        return float(run().summary["au_mean_percent"])

    if fixed:  # --iobench-accelerators=N: no search, the runs below are the qualification at N
        found = None
        accelerators = start
    else:
        found = search(probe, floor, start=start, limit=limit)
        section["search"] = found.to_dict()
        # 3. one warm-up and 5 measured runs at the count found (the lowest when none met the floor)
        accelerators = found.best or start
    ranks_now[0] = accelerators
    iobench_record.warmups, iobench_record.repeat = 1, rules.MEASURED_RUNS
    measure_training(iobench_record, run, config, accelerators, floor_waived=waived)
    runs = iobench_record.details["training"]["runs"]
    measured = [r for r in runs if not r["warmup"]]
    results = rules.Results(floor, sum(r["warmup"] for r in runs), [r["au_mean_percent"] for r in measured],
                            [r["samples_per_second"] for r in measured])
    checked = rules.check("result", results)
    section["rules"] += [c.to_dict() for c in checked]
    label = rules.label(planned + checked)
    au_mean = sum(results.au_percent) / len(results.au_percent)
    rate_mean = sum(results.samples_per_second) / len(results.samples_per_second)
    meets = au_mean >= floor
    best = found.best if found is not None else (accelerators if meets else 0)
    section.update({
        "label": label, "accelerators": best,
        "runs": {"accelerators": accelerators, "warmups": results.warmups, "au_percent": results.au_percent,
                 "samples_per_second": results.samples_per_second, "au_mean_percent": au_mean,
                 "samples_per_second_mean": rate_mean}})
    why = rules.reasons(planned + checked)
    limited = found is not None and found.limited
    if best:
        what = (f"{config.name} on {storage.id}: {best} accelerators meet the {floor:g}% AU floor "
                f"({'the search limit: it may sustain more; ' if limited else ''}"
                f"{'no search: the count given; ' if found is None else ''}mean AU {au_mean:.2f}%, "
                f"{rate_mean:.4g} samples/s over {len(results.au_percent)} runs)")
    else:
        many = start > 1
        count = f"{start} accelerator{'s' if many else ''}"
        what = (f"{config.name} on {storage.id}: not even {count} {'meet' if many else 'meets'}" if found is not None
                else f"{config.name} on {storage.id}: {count} (no search) {'do' if many else 'does'} not meet") + \
            f" the {floor:g}% AU floor (mean AU {au_mean:.2f}%)"
    section["verdict"] = f"{label}: {what}" + (f"; {'; '.join(why)}" if why else "") + \
        (" (dry run, not a qualification)" if dry else "")
    iobench_record.warn(f"qualification: {section['verdict']}")
    assert math.isfinite(au_mean) and (found is None or found.probes), "the search probed nothing"
    if label == rules.INVALID and not waived:
        pytest.fail(f"qualification {section['verdict']}", pytrace=False)

