"""Interoperability with DLIO itself: DLIO trains on datasets we generate, we train on datasets
DLIO generates, and every workload file DLIO ships loads here. Prints a table.

    python benchmarks/interop_dlio.py                         # DLIO from PyPI, in a venv of its own
    python benchmarks/interop_dlio.py --dlio fork=/path/to/venv --formats npz,parquet

Not part of the test command (README): it installs DLIO (about 2 GB with TensorFlow and torch)
and runs it, about 20 s per DLIO run here. What it does, for each DLIO:

1. DLIO upstream comes from PyPI (``dlio-benchmark`` 2.0.0, 2024-08) into ``<venvs>/dlio-upstream``,
   made once and reused: with ``--no-deps`` and its requirements by hand, because its metadata
   asks for DALI (CUDA), torchaudio and torchvision that a PyTorch-loader run does not use; it
   needs ``pydftracer==1.0.2`` (2.x fails at start) and imports TensorFlow at start even for
   PyTorch runs (``tensorflow-cpu``); torch is the CPU build (``torch==2.13.0`` here).
   The MLCommons fork (mlcommons/DLIO_local_changes, 3.0.x, what MLPerf Storage runs) is not
   published on PyPI (the name ``dlio_benchmark`` there is upstream's, 2.0.0 only; no sdist of
   the fork exists), so this script does not install it: give ``--dlio fork=VENV``, a virtualenv
   where you installed it from its source (it asks for Python 3.12; on 3.11 it installs with
   ``pip install --no-deps --ignore-requires-python`` and runs).
2. Every workload file inside the installed package (``dlio_benchmark/configs/workload/*.yaml``)
   is loaded by ``load_workload``, unchanged.
3. Per format DLIO reads without TensorFlow (npz, npy, hdf5, csv, jpeg, png, indexed_binary, and
   parquet where the DLIO has a parquet reader): we generate a dataset (``generate``), DLIO
   trains one epoch on it (PyTorch loader; a pass is DLIO ending the epoch with every step),
   then DLIO generates the same spec and we train one epoch on it (``adopt``, then the training
   loop; a pass reads every sample and its bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pytest_iobench.data.generate import adopt, generate  # noqa: E402
from pytest_iobench.mpi.session import MPISession  # noqa: E402
from pytest_iobench.mpi.training import run_training_session  # noqa: E402
from pytest_iobench.storage import StorageSpec, open_storage  # noqa: E402
from pytest_iobench.workload.config import load_mapping, load_workload  # noqa: E402

#: DLIO from PyPI and what it needs by hand (see the docstring)
UPSTREAM = "dlio-benchmark==2.0.0"
UPSTREAM_REQUIREMENTS = ["torch==2.13.0", "tensorflow-cpu", "mpich", "mpi4py", "pydftracer==1.0.2", "hydra-core",
                         "omegaconf", "pandas", "psutil", "h5py", "Pillow", "PyYAML", "numpy"]
FORMATS = ("npz", "npy", "hdf5", "parquet", "csv", "jpeg", "png", "indexed_binary")
#: each case: files x samples per file of RECORD bytes, read in batches of BATCH
FILES, SAMPLES, RECORD, BATCH = 4, 2, 4096, 2
READY = ".iobench-ready"


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- DLIO's virtualenvs ----------------------------------------------------------------------------
def upstream_venv(where: Path) -> Path:
    """The python of a venv with DLIO from PyPI, made once (a marker says it is complete)."""
    python = where / "bin" / "python"
    if (where / READY).exists():
        return python
    log(f"installing {UPSTREAM} into {where} (once; about 2 GB)")
    shutil.rmtree(where, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(where)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, *UPSTREAM_REQUIREMENTS], check=True)
    subprocess.run([*pip, "--no-deps", UPSTREAM], check=True)
    (where / READY).write_text(UPSTREAM + "\n")
    return python


class Dlio:
    """One installed DLIO: its python, package folder and version, and the key names it reads."""

    def __init__(self, name: str, python: Path):
        self.name = name
        self.python = python
        probe = ("import dlio_benchmark, os, importlib.metadata as m; "
                 "print(os.path.dirname(dlio_benchmark.__file__)); print(m.version('dlio_benchmark'))")
        out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True,
                             env=_quiet_env()).stdout.split()
        self.package, self.version = Path(out[-2]), out[-1]
        config = (self.package / "utils" / "config.py").read_text()
        #: DLIO since 2025 reads record_length_bytes and model.name; 2.0.0 record_length and model
        self.current_keys = "record_length_bytes" in config
        self.reads_parquet = (self.package / "reader" / "parquet_reader.py").exists()

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"

    def workload(self, fmt: str, folder: Path, *, generate_data: bool) -> dict:
        samples = 1 if fmt in ("jpeg", "png") else SAMPLES
        dataset = {"data_folder": str(folder), "format": fmt, "num_files_train": FILES, "num_files_eval": 0,
                   "num_samples_per_file": samples,
                   ("record_length_bytes" if self.current_keys else "record_length"): RECORD}
        return {"model": {"name": "interop"} if self.current_keys else "interop", "framework": "pytorch",
                "workflow": {"generate_data": generate_data, "train": not generate_data, "evaluation": False},
                "dataset": dataset,
                # read_threads 0: the loop reads (DLIO's reader workers start in seconds each here)
                "reader": {"data_loader": "pytorch", "batch_size": BATCH, "read_threads": 0},
                "train": {"epochs": 1, "computation_time": 0.0}}

    def run(self, workload: dict, work: Path) -> tuple[bool, str, str]:
        """Run DLIO on ``workload``; (exit code 0, DLIO's output, the last error line)."""
        import yaml

        configs = work / "configs" / "workload"
        configs.mkdir(parents=True, exist_ok=True)
        (configs / "interop.yaml").write_text(yaml.safe_dump(workload))
        out = work / "output"
        command = [str(self.python), "-m", "dlio_benchmark.main", "--config-dir", str(work / "configs"),
                   "workload=interop", f"++workload.output.folder={out}", f"hydra.run.dir={out}"]
        done = subprocess.run(command, capture_output=True, text=True, env=_quiet_env(), cwd=work, timeout=900)
        text = done.stdout + done.stderr
        (work / "dlio.out").write_text(text)
        errors = [line for line in text.splitlines() if re.search(r"(Error|Exception|error:)", line)
                  and "absl" not in line and "oneDNN" not in line]
        return done.returncode == 0, text, (errors[-1].strip() if errors else f"exit code {done.returncode}")


def _quiet_env() -> dict:
    env = dict(os.environ)
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore"})
    return env


# -- the checks ------------------------------------------------------------------------------------
def load_workload_files(dlio: Dlio) -> tuple[int, list[str]]:
    """(files, problems) of loading each workload file inside the installed package."""
    files = sorted((dlio.package / "configs" / "workload").glob("*.yaml"))
    problems = []
    for path in files:
        try:
            load_workload(str(path))
        except Exception as exc:  # a workload that does not load is what this reports
            problems.append(f"{path.name}: {str(exc).splitlines()[-1].strip()}")
    return len(files), problems


def ours_then_dlio(dlio: Dlio, fmt: str, work: Path) -> tuple[bool, str]:
    """We generate; DLIO trains one epoch on it: every step of the epoch ends."""
    workload = dlio.workload(fmt, work / "data", generate_data=False)
    spec = load_mapping(workload).dataset
    generate(spec, open_storage(StorageSpec("local", "posix", root=str(work / "data"))))
    steps = spec.num_files_train * spec.num_samples_per_file // BATCH
    ok, text, error = dlio.run(workload, work)
    if ok and re.search(rf"Ending epoch 1 - {steps} steps completed", text):
        return True, f"{steps} steps"
    return False, error if not ok else f"the epoch did not end with {steps} steps"


def dlio_then_ours(dlio: Dlio, fmt: str, work: Path) -> tuple[bool, str]:
    """DLIO generates; we adopt its files and train one epoch on them, every sample read."""
    workload = dlio.workload(fmt, work / "data", generate_data=True)
    ok, _, error = dlio.run(workload, work)
    if not ok:
        return False, f"DLIO's generation: {error}"
    workload["workflow"] = {"train": True}
    config = load_mapping(workload, "interop")
    storage = open_storage(StorageSpec("local", "posix", root=str(work / "data")))
    adopted = adopt(config.dataset, storage)
    outcome = run_training_session(MPISession(), config, storage, ranks=1)
    epoch = outcome.results[0]["epochs"][0]
    samples = config.dataset.num_files_train * config.dataset.num_samples_per_file
    if epoch["samples"] != samples or epoch["bytes_read"] <= 0:
        return False, f"read {epoch['samples']} of {samples} samples"
    return True, f"{samples} samples, {epoch['bytes_read']:,} of {adopted.bytes:,} bytes"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venvs", type=Path, default=Path(tempfile.gettempdir()) / "iobench-interop",
                        help="where DLIO's venv from PyPI is made and kept (default: %(default)s)")
    parser.add_argument("--dlio", action="append", default=[], metavar="NAME=VENV",
                        help="also check the DLIO installed in VENV (e.g. fork=/path/to/venv); repeatable")
    parser.add_argument("--no-upstream", action="store_true", help="skip DLIO from PyPI")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--work", type=Path, help="where datasets and DLIO's output go (default: a temporary "
                        "folder, deleted)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    dlios = []
    if not args.no_upstream:
        dlios.append(Dlio("upstream", upstream_venv(args.venvs / "dlio-upstream")))
    for item in args.dlio:
        name, _, where = item.partition("=")
        dlios.append(Dlio(name, Path(where) / "bin" / "python"))
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    work = args.work or Path(tempfile.mkdtemp(prefix="iobench-interop-"))
    rows, loads = [], {}
    start = time.monotonic()
    try:
        for dlio in dlios:
            files, problems = load_workload_files(dlio)
            loads[dlio.label] = {"files": files, "problems": problems}
            log(f"{dlio.label}: {files - len(problems)}/{files} workload files load")
            for fmt in formats:
                row = {"dlio": dlio.label, "format": fmt}
                if fmt == "parquet" and not dlio.reads_parquet:
                    row["ours_then_dlio"] = row["dlio_then_ours"] = (None, "no parquet in this DLIO")
                    rows.append(row)
                    continue
                for direction, check in (("ours_then_dlio", ours_then_dlio), ("dlio_then_ours", dlio_then_ours)):
                    case = work / dlio.name / f"{direction}-{fmt}"
                    shutil.rmtree(case, ignore_errors=True)
                    case.mkdir(parents=True)
                    try:
                        row[direction] = check(dlio, fmt, case)
                    except Exception as exc:
                        first_line = str(exc).splitlines()[0] if str(exc) else ""
                        row[direction] = (False, f"{type(exc).__name__}: {first_line}")
                        traceback.print_exc()
                    log(f"{dlio.label} {fmt} {direction}: {'pass' if row[direction][0] else 'FAIL'} "
                        f"({row[direction][1]})")
                rows.append(row)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"DLIO interoperability, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, "
          f"{time.monotonic() - start:.0f} s; each case {FILES} files x {SAMPLES} samples of {RECORD} bytes "
          f"(images: 1 per file)\n")
    print("| DLIO | format | we generate, DLIO trains | DLIO generates, we train |")
    print("|---|---|---|---|")
    for row in rows:
        cells = []
        for direction in ("ours_then_dlio", "dlio_then_ours"):
            ok, why = row[direction]
            cells.append("n/a" if ok is None else ("pass" if ok else "FAIL") + f" ({why})")
        print(f"| {row['dlio']} | {row['format']} | {cells[0]} | {cells[1]} |")
    print()
    for label, result in loads.items():
        print(f"{label}: {result['files'] - len(result['problems'])} of {result['files']} workload files in the "
              "installed package load unchanged")
        for problem in result["problems"]:
            print(f"  {problem}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "workload_files": loads}, indent=1))
    failed = any(row[d][0] is False for row in rows for d in ("ours_then_dlio", "dlio_then_ours"))
    return 1 if failed or any(r["problems"] for r in loads.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
