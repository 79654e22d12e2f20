"""What loading the plugin costs every pytest run of a project where the package is installed
(the ``pytest11`` entry point loads it whether or not an iobench option, fixture or suite is
used). Target: under 50 ms more than bare pytest.

    python benchmarks/bench_import.py            # 7 runs of each, medians
    python benchmarks/bench_import.py --runs 15
    PYTHONPATH=/path/to/other/checkout python benchmarks/bench_import.py   # another version

Two figures, each the median of --runs fresh processes run from an empty directory (no
conftest.py, no pytest.ini), the two kinds taking turns:
- ``-X importtime``: the cumulative import time of everything ``import pytest`` plus
  pytest_iobench.plugin and the modules its ``pytest_plugins`` name (what the entry point
  imports) load, against ``import pytest`` alone; and, in the same process, the cumulative
  time of pytest_iobench's own top-level entries (what the plugin adds to an interpreter that
  has pytest already: the figure that noise on a loaded machine disturbs least);
- a whole pytest process that collects nothing (``pytest --collect-only -q`` in the empty
  directory: the plugin's load, its start-up check and its configure hooks), with the plugin
  and with ``-p no:pytest_iobench.plugin`` (pytest does not import a blocked entry point's
  module). A single ``pytest --version`` loads no plugin at all, so it would show nothing.
It also lists the heavy libraries a plugin import pulls in (there should be none).

Measured with bytecode cached, as an installed package has it (pip compiles what it installs; an
editable checkout writes its cache on first import): the processes run without a
PYTHONDONTWRITEBYTECODE of the environment, and one untimed round writes the cache first.
Compiling every module from source at each start would add what no user pays.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

#: the measured processes' environment: bytecode written and read (module docstring)
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
PLUGIN = "pytest_iobench.plugin"
HEAVY = ("numpy", "pyarrow", "h5py", "yaml", "jsonschema", "boto3", "botocore", "moto", "matplotlib", "minio",
         "s3dlio", "dgen_py")
#: pytest's exit code when it collected no tests
NO_TESTS = 5
IMPORT_PLUGIN = f"import pytest, {PLUGIN}; [__import__(m) for m in {PLUGIN}.pytest_plugins]"


def importtime_ms(code: str, cwd: str, prefix: str = "") -> float:
    """The cumulative import time (ms) of the top-level imports ``code`` makes whose name starts
    with ``prefix`` (nested imports are in their importer's figure)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=cwd, capture_output=True,
                         text=True, check=True, env=ENV).stderr
    total = 0
    for line in err.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$", line)
        if match and match.group(2).startswith(prefix):
            total += int(match.group(1))
    return total / 1000


def process_ms(args: list[str], cwd: str) -> float:
    """Wall time (ms) of ``pytest --collect-only -q ARGS`` in ``cwd``, which holds no tests (exit 5)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                          cwd=cwd, capture_output=True, text=True, env=ENV)
    if done.returncode != NO_TESTS:
        raise SystemExit(f"pytest exited {done.returncode}: {done.stdout}{done.stderr}")
    return (time.perf_counter() - start) * 1000


def heavy_imported(cwd: str) -> list[str]:
    code = f"import sys; {IMPORT_PLUGIN}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True, env=ENV)
    return out.stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="processes of each kind (default 7)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        bare_import, plugin_import, own, bare_run, plugin_run = [], [], [], [], []
        importtime_ms(IMPORT_PLUGIN, cwd)  # untimed: writes the bytecode cache
        process_ms([], cwd)
        for _ in range(args.runs):
            bare_import.append(importtime_ms("import pytest", cwd))
            plugin_import.append(importtime_ms(IMPORT_PLUGIN, cwd))
            own.append(importtime_ms(IMPORT_PLUGIN, cwd, prefix="pytest_iobench"))
            bare_run.append(process_ms(["-p", f"no:{PLUGIN}"], cwd))
            plugin_run.append(process_ms([], cwd))
        heavy = heavy_imported(cwd)
    m = statistics.median
    print(f"runs: {args.runs} of each, medians (ms)")
    print(f"-X importtime  import pytest: {m(bare_import):7.1f}   + plugin: {m(plugin_import):7.1f}   "
          f"plugin adds {m(plugin_import) - m(bare_import):6.1f}")
    print(f"-X importtime  pytest_iobench's own modules after pytest (cumulative): {m(own):7.1f}")
    print(f"process        pytest --co -p no:plugin: {m(bare_run):7.1f}   with plugin: {m(plugin_run):7.1f}   "
          f"plugin adds {m(plugin_run) - m(bare_run):6.1f}")
    print("heavy libraries imported by the plugin: " + (", ".join(heavy) or "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
