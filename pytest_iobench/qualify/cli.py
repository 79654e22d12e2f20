"""``iobench datasize WORKLOAD --hosts N --host-memory GiB --accelerators N``: the dataset a
qualification run of WORKLOAD needs on those clients (mlpstorage's formula, datasize.py),
printed as the ``--iobench-set`` override that gives it, a number of files and bytes.

Without ``--host-memory`` the memory of this host is taken. ``--set`` takes the overrides
``--iobench-set`` takes (a workload's batch size or record length changes what it needs).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from ..workload.config import WorkloadError, load_workload
from ..workload.options import workload_id
from .datasize import MIN_STEPS, GiB, dataset_size


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
    parser.add_argument("--host-memory", type=_positive(float), metavar="GiB",
                        help="memory of each client host in GiB (default: this host's)")
    parser.add_argument("--accelerators", type=_positive(int), required=True, metavar="N",
                        help="simulated accelerators in all, over every host")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a workload override, as --iobench-set takes it (repeatable)")
    parser.add_argument("--min-steps", type=_positive(int), default=MIN_STEPS, metavar="N",
                        help=f"steps per epoch required (default {MIN_STEPS}; fewer only for a dry run)")
    parser.set_defaults(run=datasize)


def _size(n: float) -> str:
    for unit, scale in (("TiB", 1024 ** 4), ("GiB", GiB), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def datasize_lines(args: argparse.Namespace) -> list[str]:
    config = load_workload(args.workload, args.set)
    if args.host_memory is None:
        import psutil

        memory, where = psutil.virtual_memory().total, "this host's"
    else:
        memory, where = int(args.host_memory * GiB), "given"
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
    ]


def datasize(args: argparse.Namespace) -> int:
    try:
        lines = datasize_lines(args)
    except (WorkloadError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    for line in lines:
        print(line)
    return 0
