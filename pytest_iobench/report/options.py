"""The report options, declared once for command line, ini and environment (see settings.py)."""

from __future__ import annotations

from ..data.options import byte_size, byte_size_or_auto
from ..settings import Option, Settings, boolean, comma_list, declare, positive_int
from .thresholds import parse_override, parse_percentage

HUMAN_FORMATS = ("md", "html", "none")


def non_negative_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ValueError("give a whole number, 0 or more, such as 1") from None
    if number < 0:
        raise ValueError(f"{number} is negative; give a whole number, 0 or more, such as 1")
    return number


def byte_sizes(text: str) -> tuple[int, ...]:
    """``1MiB,16MiB``: one or more sizes, as byte_size reads each."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ValueError("give one or more sizes such as 1MiB,16MiB")
    sizes = []
    for item in items:
        try:
            sizes.append(byte_size(item))
        except ValueError as exc:
            raise ValueError(f"{item!r}: {exc}") from None
    return tuple(dict.fromkeys(sizes))


def human_formats(text: str) -> tuple[str, ...]:
    formats = comma_list(HUMAN_FORMATS)(text)
    if "none" in formats and len(formats) > 1:
        raise ValueError("'none' cannot be combined with other formats; give md, html, md,html or none")
    return () if formats == ["none"] else tuple(formats)


declare(
    Option("json", "write the run's result document to PATH (human reports next to it) instead of "
           "reports/iobench-<UTC timestamp>.json and reports/latest.json; written even when no iobench "
           "test ran", metavar="PATH"),
    Option("report", "human reports written next to the result document: md, html (comma list) or none",
           default="md,html", parse=human_formats, metavar="FORMATS"),
    Option("repeat", "measured repeats of each measurement; the reported value is their median, with min and max",
           default="1", parse=positive_int, metavar="N"),
    Option("warmup", "warm-up runs before the repeats of each measurement (recorded, not counted)",
           default="0", parse=non_negative_int, metavar="N"),
    Option("compare", "compare the run with an earlier result document (by test id and metric), or several "
           "(a comma list: their repeats pooled, so the band spans the drift between sessions)", metavar="PATH[,PATH]"),
    Option("fail-regression", "fail the session when a metric is worse than in the --iobench-compare "
           "document by more than this, e.g. 10%", parse=parse_percentage, metavar="PCT"),
    Option("fail-missing", "with --iobench-fail-regression, also fail the session when a gated metric of the "
           "--iobench-compare document is missing from the run (its test did not run or did not record it)",
           default="false", parse=boolean, metavar="BOOL"),
    Option("fail-regression-overrides", "per-metric regression thresholds as METRIC=PCT or METRIC=off "
           "(METRIC may be a glob such as batch_read_*); repeatable, one per line in the ini file",
           parse=parse_override, multiple=True, metavar="METRIC=PCT"),
    Option("confirm", "with --iobench-fail-regression: run each test whose metrics regressed again, up to N "
           "times, at the end of the session; the gate counts a regression only when the last run regresses too "
           "(a stall of the machine does not reproduce, a slower storage does). 0: no re-runs",
           default="1", parse=non_negative_int, metavar="N"),
    Option("latency-rounds",
           "timed calls per measured run of a latency test (suites/test_latency.py; --iobench-repeat runs)",
           default="20",
           parse=positive_int, metavar="N"),
    Option("object-sizes", "object sizes of the throughput suite, each a case (comma list, e.g. 1MiB,16MiB)",
           default="1MiB", parse=byte_sizes, metavar="SIZES"),
    Option("throughput-bytes", "bytes each case of the throughput suite puts or gets per run (e.g. 1GiB); "
           "auto: enough for the rate to settle on the case's storage (1 GiB on local and direct, 256 MiB on "
           "s3), 64 MiB with --iobench-quick", default="auto", parse=byte_size_or_auto, metavar="SIZE"),
)


def check_output(settings: Settings, invocation_dir: str) -> None:
    """--iobench-json must be a file that can be written, known before the run: the nearest
    existing directory must take a new entry (a probe directory, made and removed at once:
    permissions alone do not say it, root passes them on a read-only or virtual file system)."""
    if not settings.json:
        return
    import os

    from ..settings import SettingsError

    path = os.path.join(invocation_dir, settings.json)
    if os.path.isdir(path):
        raise SettingsError(f"--iobench-json: {path} is a directory; give the path of the document's file")
    import tempfile

    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise SettingsError(f"--iobench-json: {path} cannot be written: {parent} is a file, not a directory; "
                            "give a writable path")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".iobench-probe-", dir=parent))
    except OSError as exc:
        raise SettingsError(f"--iobench-json: {path} cannot be written: {parent} takes no new files "
                            f"({exc.strerror or exc}); give a writable path") from None
