"""The qualification steps that are not tests.

``iobench datasize WORKLOAD --hosts N --host-memory GiB --accelerators N``: the dataset a
qualification run of WORKLOAD needs on those clients (mlpstorage's formula, datasize.py),
printed as the ``--iobench-set`` override that gives it, a number of files and bytes, and the
time to generate it at the rate measured on this host (a sample of its files generated into a
temporary directory) or given (``--generate-rate``). Without ``--host-memory`` (or its
``IOBENCH_HOST_MEMORY`` twin) the memory of this host is taken. ``--set`` takes the overrides
``--iobench-set`` takes (a workload's batch size or record length changes what it needs).

``iobench generate WORKLOAD --iobench-storage=KIND --iobench-root=...``: the workload's
dataset alone, with progress, where the suites look for it (the storage's datasets area under
the root, the same spec digest and manifest), so that a later ``pytest suites/`` with the same
settings reuses it. It takes the plugin's ``--iobench-*`` options and their ``IOBENCH_*``
environment twins (pytest's ini file is not read).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from ..data import options as _data_options  # noqa: F401  (declares the generation options)
from ..data.datasets import DatasetCache
from ..data.generate import Progress
from ..data.generate import generate as generate_files
from ..data.spec import DatasetSpec
from ..settings import REGISTRY, SettingsError, positive_int, resolve
from ..storage import options as _storage_options  # noqa: F401
from ..storage.errors import StorageError
from ..storage.factory import StorageFactory, new_run_id, plan_storages
from ..storage.posix import PosixStorage
from ..workload import options as _workload_options  # noqa: F401
from ..workload.config import WorkloadConfig, WorkloadError, load_workload
from ..workload.options import overrides_for, workload_id
from .datasize import MIN_STEPS, GiB, dataset_size
from .options import gibibytes, host_memory_bytes


def _positive(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
        return value
    parse.__name__ = kind.__name__
    return parse


def add_datasize(commands: Any) -> None:
    """Add the ``datasize`` subcommand to ``commands`` (argparse subparsers)."""
    parser = commands.add_parser(
        "datasize", help="the dataset a qualification run of WORKLOAD needs (MLPerf Storage's rules)",
        description="The dataset a qualification run needs: at least 5x the clients' total memory and "
                    "at least 500 steps per epoch on the accelerators (mlpstorage's formula), printed as "
                    "the --iobench-set override that gives it, files and bytes.")
    parser.add_argument("workload", metavar="WORKLOAD", help="a shipped workload (unet3d_h100) or a DLIO YAML file")
    parser.add_argument("--hosts", type=_positive(int), default=1, metavar="N", help="client hosts (default 1)")
    parser.add_argument("--host-memory", "--iobench-host-memory", type=_positive(float), metavar="GiB",
                        help="memory of each client host in GiB (default: IOBENCH_HOST_MEMORY, else this host's)")
    parser.add_argument("--accelerators", type=_positive(int), required=True, metavar="N",
                        help="simulated accelerators in all, over every host")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a workload override, as --iobench-set takes it (repeatable)")
    parser.add_argument("--min-steps", type=_positive(int), default=MIN_STEPS, metavar="N",
                        help=f"steps per epoch required (default {MIN_STEPS}; fewer only for a dry run)")
    parser.add_argument("--generate-rate", type=_positive(float), metavar="MB/s",
                        help="the generation rate to give the time to generate at, in MB/s (10^6 bytes); default: "
                             "measured on this host by generating a sample of the dataset (about 64 MiB) into a "
                             "temporary directory")
    parser.add_argument("--generate-threads", type=_positive(int), metavar="N",
                        help="writer threads of the measured generation (default: IOBENCH_GENERATE_THREADS, else 2)")
    parser.set_defaults(run=datasize)


def _size(n: float) -> str:
    for unit, scale in (("TiB", 1024 ** 4), ("GiB", GiB), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


#: bytes a measured generation writes: enough for the rate to settle, seconds on any host
RATE_SAMPLE_BYTES = 64 * 1024 ** 2


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours < 48 else f"{seconds / 86400:.1f} days"


def measure_generation_rate(spec: DatasetSpec, threads: int, sample_bytes: int = RATE_SAMPLE_BYTES
                            ) -> tuple[float, str]:
    """Bytes per second this host generates ``spec``'s files at, from a sample of about
    ``sample_bytes`` written into a temporary directory (whole files, or one file of fewer
    samples when a file is larger), and the sample in words. The rate is the generator's (the
    random source, the format, local writes), not the storage's: on a slower storage
    generation runs at the storage's write rate."""
    file_bytes = spec.num_samples_per_file * spec.record_length_bytes
    if file_bytes > sample_bytes:
        samples = max(1, int(spec.num_samples_per_file * sample_bytes // file_bytes))
        sample = spec.with_changes(num_files_train=1, num_files_eval=0, num_samples_per_file=samples)
        what = f"1 file of {samples} sample{'s' if samples > 1 else ''}"
    else:
        files = max(1, min(spec.num_files_train, -(-sample_bytes // max(1, int(file_bytes)))))
        sample = spec.with_changes(num_files_train=files, num_files_eval=0)
        what = f"{files} file{'s' if files > 1 else ''}"
    with tempfile.TemporaryDirectory(prefix="iobench-rate-") as scratch:
        result = generate_files(sample, PosixStorage(scratch), threads=threads, verify="none")
    rate = result.bytes / result.seconds if result.seconds > 0 else 0.0
    many = "s" if threads > 1 else ""
    moved = f"{result.bytes / 1e6:.1f} MB in {result.seconds:.2f} s"
    return rate, f"{what} of {spec.format}, {moved}, {threads} thread{many}"


def datasize_lines(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    config = load_workload(args.workload, args.set)
    given = args.host_memory
    if given is None and environ.get("IOBENCH_HOST_MEMORY"):
        try:
            given = gibibytes(environ["IOBENCH_HOST_MEMORY"])
        except ValueError as exc:
            raise ValueError(f"IOBENCH_HOST_MEMORY: {environ['IOBENCH_HOST_MEMORY']!r} is not valid: {exc}") from None
    memory, where = host_memory_bytes(given)
    size = dataset_size(config, hosts=args.hosts, host_memory_bytes=memory, accelerators=args.accelerators,
                        min_steps=args.min_steps)
    name = workload_id(args.workload)
    return [
        f"{name}: {size.num_files_train} files of {_size(size.file_bytes)} "
        f"({size.samples_per_file} sample{'s' if size.samples_per_file > 1 else ''} a file), "
        f"{size.bytes} bytes ({_size(size.bytes)})",
        f"  clients: {args.hosts} host{'s' if args.hosts > 1 else ''} x {_size(memory)} ({where}), "
        f"{args.accelerators} accelerators, batch {size.batch_size}",
        f"  by memory (5x {size.memory_bytes} bytes): {size.files_by_memory} files; "
        f"by steps ({size.min_steps} per epoch): {size.files_by_steps} files; dictated by {size.dictated_by}",
        f"  --iobench-workload={name} " + " ".join(f"--iobench-set {name}:{o}" for o in size.overrides()),
        _generation_line(args, config, size.bytes, environ),
    ]


def _generation_line(args: argparse.Namespace, config: WorkloadConfig, total: int, environ: Mapping[str, str]) -> str:
    if getattr(args, "generate_rate", None):
        rate, how = args.generate_rate * 1e6, "given"
    else:
        threads = getattr(args, "generate_threads", None)
        if threads is None:
            try:
                threads = positive_int(environ.get("IOBENCH_GENERATE_THREADS") or "2")
            except ValueError as exc:
                raise ValueError(f"IOBENCH_GENERATE_THREADS: {exc}") from None
        rate, sample = measure_generation_rate(config.dataset, threads)
        how = f"measured on this host: {sample}; a slower storage's writes set the pace"
    if rate <= 0:
        return f"  to generate: {_size(total)}; the rate could not be measured (give --generate-rate)"
    return f"  to generate: {_duration(total / rate)} at {rate / 1e6:.1f} MB/s ({how})"


def datasize(args: argparse.Namespace) -> int:
    try:
        lines = datasize_lines(args)
    except (WorkloadError, ValueError, StorageError) as exc:
        raise SystemExit(f"error: {exc}") from None
    for line in lines:
        print(line)
    return 0


#: the plugin's options that mean something to ``iobench generate``
GENERATE_OPTIONS = ("storage", "libraries", "root", "s3-endpoint", "bucket", "s3-region", "s3-access-key",
                    "s3-secret-key", "op-timeout", "retries", "backoff", "set", "generate-threads", "regenerate",
                    "verify", "on-corrupt")


def add_generate(commands: Any) -> None:
    """Add the ``generate`` subcommand to ``commands`` (argparse subparsers)."""
    parser = commands.add_parser(
        "generate", help="generate WORKLOAD's dataset where the suites will reuse it",
        description="Generate WORKLOAD's dataset in the storage's datasets area, as the suites do, so that "
                    "pytest with the same --iobench-* settings reuses it. Takes the plugin's options and "
                    "their IOBENCH_* environment twins.")
    parser.add_argument("workload", metavar="WORKLOAD", help="a shipped workload (unet3d_h100) or a DLIO YAML file")
    for name in GENERATE_OPTIONS:
        option = REGISTRY.get(name)
        if option is None:
            continue
        parser.add_argument(option.flag, dest=option.dest, action="append" if option.multiple else "store",
                            metavar=option.metavar, help=option.help.replace("%", "%%"))
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.set_defaults(run=generate)


def _show(where: str, p: Progress) -> None:
    eta = p.eta
    left = f", ETA {eta:.0f} s" if eta is not None else ""
    print(f"\r{where}: {p.files_done}/{p.files_total} files, {p.bytes_done / 1e6:.1f} MB, "
          f"{p.mb_per_s:.1f} MB/s{left}", end="", file=sys.stderr, flush=True)


def generate_dataset(args: argparse.Namespace) -> list[str]:
    cli = {name: getattr(args, REGISTRY[name].dest, None) for name in GENERATE_OPTIONS if name in REGISTRY}
    settings = resolve(cli, {}, os.environ)
    if len(settings.storage) != 1:
        raise SettingsError(f"--iobench-storage: give one storage to generate on, not {','.join(settings.storage)}")
    kind = settings.storage[0]
    if kind in ("local", "direct") and not (settings.root and not settings.root.startswith("s3://")):
        raise SettingsError(f"--iobench-root: give the directory to generate under (the {kind} storage's root; "
                            "pytest's default, a fresh temporary directory, would not be kept)")
    if kind == "s3" and not settings.s3_endpoint:
        raise SettingsError("--iobench-s3-endpoint: give the S3 endpoint to generate on (the embedded endpoint "
                            "ends with this command)")
    param = next((p for p in plan_storages(settings) if not p.skip), None)
    if param is None:
        raise SettingsError(f"no installed library reaches the {kind} storage")
    config = load_workload(args.workload, overrides_for(args.workload, settings.set))
    with tempfile.TemporaryDirectory(prefix="iobench-generate-") as scratch:
        factory = StorageFactory(settings, default_root=scratch, run_id=new_run_id())
        cache = DatasetCache(factory.at, threads=settings.generate_threads, regenerate=settings.regenerate,
                             progress=None if args.quiet else _show, lock_dir=os.path.join(scratch, "locks"),
                             verify=settings.verify, on_corrupt=settings.on_corrupt)
        try:
            dataset = cache.get(config.dataset, factory.get(kind, param.library, area="datasets"))
        finally:
            if not args.quiet:
                print(file=sys.stderr)
            cache.cleanup()
            factory.cleanup()
    r = dataset.result
    what = "reused (complete, same spec)" if dataset.reused else f"generated in {r.seconds:.1f} s"
    return [f"{workload_id(args.workload)}: {r.files} files, {r.bytes} bytes at {dataset.storage.uri('')}: {what}"]


def generate(args: argparse.Namespace) -> int:
    try:
        lines = generate_dataset(args)
    except (WorkloadError, SettingsError, StorageError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    for line in lines:
        print(line)
    return 0


def add_commands(commands: Any) -> None:
    """The qualification subcommands (``datasize``, ``generate``) for ``iobench``'s parser."""
    add_datasize(commands)
    add_generate(commands)
