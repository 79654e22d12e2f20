"""DLIO-compatible output files, written next to our results.

    summary.json               the run (DLIO's keys: metric.train_au_percentage, ...)
    per_epoch_stats.json       epoch start/end/duration (rank 0's view, as DLIO writes it)
    {rank}_output.json         per rank and epoch: load, proc, compute times per step, AU, throughput
    {rank}_per_epoch_stats.json  per rank and epoch: start, end, duration

Keys keep DLIO's names so tools reading DLIO's output read ours. Where DLIO's value is
mislabelled we keep the key with the value its label says, and add the exact twins:
``train_io_mean_MB_per_second`` is the bytes actually read / 10^6 per second, over DLIO's
window (the steps samples/s counts: metrics.py), where DLIO computes samples/s x nominal record
length / 2^20; ``train_io_mean_MiB_per_second`` is the same in 2^20,
``train_io_nominal_MiB_per_second`` is DLIO's own figure for comparison (with every sample of the
nominal length the two MiB figures agree), and ``train_io_whole_epoch_mean_MB_per_second`` is
every byte of the epochs over their read time (metrics.py: whole_epoch_bytes_per_second).
``host_memory_GB`` is 10^9 bytes (DLIO writes 2^30 under that name); ``host_memory_GiB`` too.
Files are written to a temporary name and renamed: a failed write leaves no half file.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import psutil

from ..storage.errors import redact
from .metrics import GB, MB, GiB, MiB

if TYPE_CHECKING:
    from .config import WorkloadConfig


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def host_info() -> dict[str, Any]:
    memory = psutil.virtual_memory().total
    return {"hostname": socket.gethostname(), "host_memory_bytes": memory,
            "host_cpu_count": psutil.cpu_count(), "host_processor_name": platform.processor()}


#: report files are for reading: rw-r--r-- less what the umask takes away
def _readable_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o644 & ~umask


_READABLE = _readable_mode()


def write_json(path: str, data: Any) -> None:
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_redacted(data), f, indent=2, default=_jsonable)
        os.chmod(tmp, _READABLE)  # mkstemp's 0600 would hide a report from its readers
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _redacted(value: Any) -> Any:
    """``value`` with every string through ``redact`` (a workload's credentials, registered
    when it loads, and secret-looking values), as the result document's are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redacted(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def training_summary(config: WorkloadConfig, summary: dict[str, Any], results: list[dict[str, Any]], *,
                     hosts: list[dict[str, Any]], nominal_record_bytes: float, dataset_bytes: int,
                     potential_caching: bool, checkpoint: dict[str, Any] | None = None) -> dict[str, Any]:
    """DLIO's summary.json content for a training run."""
    ds = config.dataset
    first = min((ep["start"] for r in results for ep in r["epochs"]), default=0.0)
    last = max((ep["end"] for r in results for ep in r["epochs"]), default=0.0)
    distinct_hosts = {h["hostname"]: h for h in hosts}
    sps = summary["samples_per_second"]
    bps = summary["bytes_per_second"]
    metric = {
        "train_au_percentage": summary["au_percent"],
        "train_au_mean_percentage": summary["au_mean_percent"],
        "train_au_meet_expectation": "success" if summary["au_met"] else "fail",
        "train_au_stdev_percentage": summary["au_stdev_percent"],
        "train_throughput_samples_per_second": sps,
        "train_throughput_mean_samples_per_second": summary["samples_per_second_mean"],
        "train_throughput_stdev_samples_per_second": float(np.std(sps)) if sps else 0.0,
        "train_io_mean_MB_per_second": summary["bytes_per_second_mean"] / MB,
        "train_io_stdev_MB_per_second": float(np.std(bps)) / MB if bps else 0.0,
        "train_io_mean_MiB_per_second": summary["bytes_per_second_mean"] / MiB,
        "train_io_nominal_MiB_per_second": summary["samples_per_second_mean"] * nominal_record_bytes / MiB,
        "train_io_whole_epoch_mean_MB_per_second": summary["whole_epoch_bytes_per_second_mean"] / MB,
    }
    if "eval" in summary:
        ev = summary["eval"]
        metric.update({
            "eval_au_percentage": ev["au_percent"],
            "eval_au_mean_percentage": ev["au_mean_percent"],
            "eval_au_meet_expectation": "success" if ev["au_met"] else "fail",
            "eval_throughput_samples_per_second": ev["samples_per_second"],
            "eval_throughput_mean_samples_per_second": ev["samples_per_second_mean"],
            "eval_io_mean_MB_per_second": ev["bytes_per_second_mean"] / MB,
            "eval_io_mean_MiB_per_second": ev["bytes_per_second_mean"] / MiB,
        })
    if checkpoint:
        metric.update(checkpoint_metric_fields(checkpoint))
    memory = [h["host_memory_bytes"] for h in distinct_hosts.values()]
    return {
        "workload": config.name,
        "start": _iso(first),
        "end": _iso(last),
        "num_accelerators": len(results),
        "num_hosts": len(distinct_hosts),
        "hostname": hosts[0]["hostname"] if hosts else socket.gethostname(),
        "host_memory_GB": [m / GB for m in memory],
        "host_memory_GiB": [m / GiB for m in memory],
        "host_cpu_count": [h["host_cpu_count"] for h in distinct_hosts.values()],
        "host_processor_name": hosts[0]["host_processor_name"] if hosts else platform.processor(),
        "num_files_train": ds.num_files_train,
        "num_files_eval": ds.num_files_eval,
        "num_samples_per_file": ds.num_samples_per_file,
        "data_size_GB": dataset_bytes / GB,
        "data_size_per_host_GB": dataset_bytes / max(1, len(distinct_hosts)) / GB,
        "potential_caching": potential_caching,
        "epochs": summary["epochs"],
        "metric": metric,
    }


def checkpoint_metric_fields(ckpt: dict[str, Any]) -> dict[str, Any]:
    """DLIO's checkpoint fields (GB = 10^9 here; DLIO's are 2^30) and exact twins."""
    fields: dict[str, Any] = {"checkpoint_size_GB": ckpt["size_bytes"] / GB,
                              "checkpoint_size_GiB": ckpt["size_bytes"] / GiB}
    if ckpt.get("write_bytes_per_second"):
        fields["save_checkpoint_io_mean_GB_per_second"] = ckpt["write_bytes_per_second"] / GB
        fields["save_checkpoint_io_mean_GiB_per_second"] = ckpt["write_bytes_per_second"] / GiB
        fields["save_checkpoint_duration_mean_seconds"] = ckpt["write_seconds_mean"]
    if ckpt.get("read_bytes_per_second"):
        fields["load_checkpoint_io_mean_GB_per_second"] = ckpt["read_bytes_per_second"] / GB
        fields["load_checkpoint_io_mean_GiB_per_second"] = ckpt["read_bytes_per_second"] / GiB
        fields["load_checkpoint_duration_mean_seconds"] = ckpt["read_seconds_mean"]
    return fields


def rank_output(result: dict[str, Any], host: dict[str, Any]) -> dict[str, Any]:
    """DLIO's {rank}_output.json shape: per epoch, per block, the per-step times."""
    out: dict[str, Any] = {"hostname": host.get("hostname"), "host_memory_GB": host.get("host_memory_bytes", 0) / GB}
    for ep in result["epochs"]:
        block = "block1"
        entry = {
            "load": {block: ep["load"]},
            "proc": {block: ep["proc"]},
            "compute": {block: ep["compute"]},
            "read": {block: ep["read"]},
            "au": {block: ep["au_percent"]},
            "throughput": {block: ep["samples_per_second"]},
            "bytes_read": ep["bytes_read"],
            "window_bytes": ep["window_bytes"],
        }
        for ev in result.get("evals", []):
            if ev["epoch"] == ep["epoch"]:
                entry["load"]["eval"] = ev["load"]
                entry["compute"]["eval"] = ev["compute"]
                entry["au"]["eval"] = ev["au_percent"]
                entry["throughput"]["eval"] = ev["samples_per_second"]
        out[str(ep["epoch"])] = entry
    return out


def rank_epoch_stats(result: dict[str, Any]) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for ep in result["epochs"]:
        entry = {"start": _iso(ep["start"]), "end": _iso(ep["end"]), "duration": f"{ep['duration']:.2f}",
                 "steps": ep["steps"]}
        for ck in result.get("checkpoints", []):
            if ck["epoch"] == ep["epoch"]:
                entry.setdefault("checkpoints", []).append({"step": ck["step"], "duration": f"{ck['seconds']:.2f}"})
        stats[str(ep["epoch"])] = entry
    return stats


def write_training_outputs(folder: str, summary_json: dict[str, Any], results: list[dict[str, Any]],
                           hosts: list[dict[str, Any]]) -> list[str]:
    """Write DLIO's files into ``folder``; returns their paths."""
    paths = []
    path = os.path.join(folder, "summary.json")
    write_json(path, summary_json)
    paths.append(path)
    path = os.path.join(folder, "per_epoch_stats.json")
    write_json(path, rank_epoch_stats(results[0]))
    paths.append(path)
    for result, host in zip(results, hosts):
        rank = result["rank"]
        for name, data in ((f"{rank}_output.json", rank_output(result, host)),
                           (f"{rank}_per_epoch_stats.json", rank_epoch_stats(result))):
            path = os.path.join(folder, name)
            write_json(path, data)
            paths.append(path)
    return paths
