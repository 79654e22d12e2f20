"""The qualification options, declared once for command line, ini and environment (see settings.py).

``--iobench-accelerators`` says which accelerator counts a qualification tries: ``auto`` (search
from 1 upward, to what the dataset allows), ``N`` (no search: qualify at N) or ``A-B`` (search
within A..B). The count is of simulated accelerators in all, over every ``--iobench-hosts``
host: mpiexec spreads the ranks over the hosts, the hosts do not multiply them.

``--iobench-host-memory`` is the memory of each client host in GiB, which the rules' dataset
size is checked against (5x the clients' total memory); unset, it is measured on this host.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

from ..settings import Option, declare

GiB = 1024 ** 3

_ACCELERATORS_HELP = "give auto, a count such as 8, or a range such as 4-64"


@dataclass(frozen=True)
class Accelerators:
    """A parsed ``--iobench-accelerators``: ``low`` and ``high`` are None for auto, equal for N."""

    low: int | None = None
    high: int | None = None
    #: a single count given: no search
    fixed: bool = False

    @property
    def auto(self) -> bool:
        return self.low is None

    def __str__(self) -> str:
        if self.auto:
            return "auto"
        return str(self.low) if self.fixed else f"{self.low}-{self.high}"


def accelerators(text: str) -> Accelerators:
    """``auto``, ``N`` or ``A-B`` with 1 <= A <= B."""
    value = text.strip().lower()
    if value == "auto":
        return Accelerators()
    low_text, dash, high_text = value.partition("-")
    try:
        low = int(low_text)
        high = int(high_text) if dash else low
    except ValueError:
        raise ValueError(_ACCELERATORS_HELP) from None
    if low < 1 or high < 1:
        raise ValueError(f"counts start at 1; {_ACCELERATORS_HELP}")
    if high < low:
        raise ValueError(f"the range {low}-{high} runs backwards; {_ACCELERATORS_HELP}")
    return Accelerators(low, high, fixed=not dash)


def gibibytes(text: str) -> float:
    """A positive, finite number of GiB (2^30 bytes), such as 512 or 0.5."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError("give the memory of each client host in GiB, such as 512") from None
    if not (value > 0 and math.isfinite(value)) or value * GiB < 1:
        raise ValueError("give a positive memory of each client host in GiB, such as 512")
    return value


declare(
    Option("accelerators", "simulated accelerators a qualification tries, in all over every host: auto (search from "
           "1 upward), N (no search: qualify at N) or A-B (search within A..B)", default="auto",
           parse=accelerators, metavar="auto|N|A-B"),
    Option("host-memory", "memory of each client host in GiB, which the qualification rules size the dataset "
           "against (5x the clients' total memory); default: this host's", parse=gibibytes, metavar="GiB"),
)


def host_memory_bytes(given_gib: float | None) -> tuple[int, str]:
    """The memory of each client host in bytes and where it came from (given, or this host's)."""
    if given_gib is not None:
        return int(given_gib * GiB), "given"
    import psutil

    return int(psutil.virtual_memory().total), "this host's"


def client_hosts(hosts: list[str] | None, hostfile: str | None) -> int:
    """The number of client hosts: ``--iobench-hosts``, else the hostfile's host lines, else 1."""
    if hosts:
        return len(hosts)
    if hostfile and os.path.isfile(hostfile):
        with open(hostfile) as f:
            names = {words[0].split(":", 1)[0] for line in f for words in [line.split("#", 1)[0].split()] if words}
        return max(1, len(names))
    return 1


def clients(settings: Any, dry_run_memory: int) -> tuple[int, int, bool]:
    """(client hosts, memory of each in bytes, dry run) of a qualification: ``--iobench-host-memory``
    when given, else ``dry_run_memory`` on a dry run (``--iobench-scale`` below 1), else this host's."""
    dry = settings.scale < 1
    hosts = client_hosts(settings.hosts, settings.hostfile)
    if settings.host_memory is None and dry:
        return hosts, dry_run_memory, dry
    return hosts, host_memory_bytes(settings.host_memory)[0], dry
