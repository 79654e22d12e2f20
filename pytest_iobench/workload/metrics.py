"""Training metrics with DLIO's definitions, per rank and reduced across ranks.

Per rank and epoch, the measured *window* leaves out the first ``exclude_start_steps`` and the
last ``exclude_end_steps`` steps (DLIO's output.metric keys); its wall time leaves out the
checkpoints written during it:

    AU (%)      = simulated compute time in the window / wall time of the window * 100
    samples/s   = samples of the window's steps / wall time of the window
    bytes/s     = bytes the storage actually returned for the window's batches / wall time of
                  the window (``window_bytes``: each batch's reads counted by the thread that
                  read it, loader.py)

so bytes/s is samples/s times the bytes actually moved per sample, as DLIO's throughput is
samples/s times the record length. ``whole_epoch_bytes_per_second`` is every byte of the epoch
(the excluded steps too) over the epoch's wall time without its checkpoints (``read_duration``):
a detail, not the figure (a slow first step, as on S3, weighs on it and not on samples/s).

Across ranks: AU is the mean over ranks, samples/s and bytes/s the sum over ranks (the whole
epoch's figure: total bytes over the longest rank's ``read_duration``). The run's AU is the mean
over epochs and it passes when that is >= ``metric.au`` * 100. Batch read latency percentiles
pool every batch of every rank. Evaluation counts every step (as DLIO's eval throughput does):
samples/s and bytes/s over the evaluation's duration. Units: MB = 10^6 bytes, MiB = 2^20 bytes,
GB = 10^9, GiB = 2^30.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

import numpy as np

MB = 10**6
MiB = 2**20
GB = 10**9
GiB = 2**30

#: the phases of a step, as the failure message names them
PHASES = {
    "load_wait": "waiting for the loader (batches not read in time)",
    "barrier": "waiting at the per-step barrier for slower ranks",
    "overhead": "loop overhead (neither compute, loading nor barrier)",
    "checkpoint": "writing checkpoints",
}


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p90, p99 and max of ``values`` (zeros when there are none)."""
    if len(values) == 0:
        return {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0}
    arr = np.asarray(values, dtype=float)
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {"p50": float(p50), "p90": float(p90), "p99": float(p99), "max": float(arr.max())}


def window_bounds(steps: int, exclude_start: int, exclude_end: int) -> tuple[int, int]:
    """[first, last) step indices of the measured window; every step when the exclusions leave
    none (a 1-step epoch, which DLIO runs too: loop.window_note says so in the run's warnings)."""
    first = min(exclude_start, steps)
    last = max(first, steps - exclude_end)
    return (first, last) if last > first else (0, steps)


def epoch_metrics(*, epoch: int, batch_size: int, exclude_start: int, exclude_end: int,
                  step_start: Sequence[float], step_end: Sequence[float], load_wait: Sequence[float],
                  compute: Sequence[float], barrier: Sequence[float], read: Sequence[float],
                  checkpoint: Sequence[float], batch_bytes: Sequence[int], bytes_read: int, requests: int,
                  duration: float, wall_start: float, wall_end: float) -> dict[str, Any]:
    """One rank's figures for one epoch (JSON-ready). ``batch_bytes``: per step, the bytes its
    batch's reads moved; ``bytes_read``: every byte the storage returned during the epoch."""
    steps = len(step_start)
    first, last = window_bounds(steps, exclude_start, exclude_end)
    window = slice(first, last)
    if last > first:
        ckpt = float(sum(checkpoint[window]))
        window_seconds = step_end[last - 1] - step_start[first] - ckpt
    else:
        ckpt, window_seconds = 0.0, 0.0
    compute_w = float(sum(compute[window]))
    # checkpoints written during the epoch are not reading time
    read_duration = max(0.0, duration - float(sum(checkpoint)))
    load_w = float(sum(load_wait[window]))
    barrier_w = float(sum(barrier[window]))
    overhead_w = max(0.0, window_seconds - compute_w - load_w - barrier_w)
    window_samples = (last - first) * batch_size
    window_bytes = int(sum(batch_bytes[window]))
    return {
        "epoch": epoch,
        "steps": steps,
        "window_steps": last - first,
        "start": wall_start,
        "end": wall_end,
        "duration": duration,
        "read_duration": read_duration,
        "window_seconds": window_seconds,
        "compute_seconds": compute_w,
        "load_wait_seconds": load_w,
        "barrier_seconds": barrier_w,
        "overhead_seconds": overhead_w,
        "checkpoint_seconds": float(sum(checkpoint)),
        "au_percent": 100.0 * compute_w / window_seconds if window_seconds > 0 else 0.0,
        "samples": steps * batch_size,
        "window_samples": window_samples,
        "samples_per_second": window_samples / window_seconds if window_seconds > 0 else 0.0,
        "bytes_read": int(bytes_read),
        "window_bytes": window_bytes,
        "requests": int(requests),
        "bytes_per_second": window_bytes / window_seconds if window_seconds > 0 else 0.0,
        "whole_epoch_bytes_per_second": bytes_read / read_duration if read_duration > 0 else 0.0,
        "batch_bytes": [int(b) for b in batch_bytes],
        "load": list(load_wait),
        "compute": list(compute),
        "barrier": list(barrier),
        "read": list(read),
        "proc": [e - s for s, e in zip(step_start, step_end)],
    }


def eval_metrics(*, epoch: int, batch_size: int, exclude_start: int, exclude_end: int,
                 load_wait: Sequence[float], compute: Sequence[float], read: Sequence[float],
                 bytes_read: int, duration: float, step_seconds: Sequence[float]) -> dict[str, Any]:
    steps = len(load_wait)
    first, last = window_bounds(steps, exclude_start, exclude_end)
    window_seconds = float(sum(step_seconds[first:last]))
    compute_w = float(sum(compute[first:last]))
    return {
        "epoch": epoch,
        "steps": steps,
        "duration": duration,
        "au_percent": 100.0 * compute_w / window_seconds if window_seconds > 0 else 0.0,
        # DLIO counts every eval step for eval throughput
        "samples_per_second": steps * batch_size / duration if duration > 0 else 0.0,
        "bytes_read": int(bytes_read),
        "bytes_per_second": bytes_read / duration if duration > 0 else 0.0,
        "load": list(load_wait),
        "compute": list(compute),
        "read": list(read),
    }


def _mean(values: Sequence[float]) -> float:
    return float(statistics.fmean(values)) if values else 0.0


def _stdev(values: Sequence[float]) -> float:
    return float(np.std(values)) if values else 0.0


def reduce_ranks(ranks: Sequence[dict[str, Any]], au_floor: float) -> dict[str, Any]:
    """The run's figures from every rank's result (rank order)."""
    epochs = len(ranks[0]["epochs"]) if ranks else 0
    au, sps, bps, whole, durations = [], [], [], [], []
    for e in range(epochs):
        per_rank = [r["epochs"][e] for r in ranks]
        au.append(_mean([p["au_percent"] for p in per_rank]))
        sps.append(sum(p["samples_per_second"] for p in per_rank))
        bps.append(sum(p["bytes_per_second"] for p in per_rank))
        durations.append(max(p["duration"] for p in per_rank))
        reading = max(p["read_duration"] for p in per_rank)
        whole.append(sum(p["bytes_read"] for p in per_rank) / reading if reading > 0 else 0.0)
    reads = [x for r in ranks for ep in r["epochs"] for x in ep["read"]]
    waits = [x for r in ranks for ep in r["epochs"] for x in ep["load"]]
    au_mean = _mean(au)
    summary = {
        "ranks": len(ranks),
        "epochs": epochs,
        "au_percent": au,
        "au_mean_percent": au_mean,
        "au_stdev_percent": _stdev(au),
        "au_floor_percent": au_floor * 100.0,
        "au_met": au_mean >= au_floor * 100.0,
        "samples_per_second": sps,
        "samples_per_second_mean": _mean(sps),
        "bytes_per_second": bps,
        "bytes_per_second_mean": _mean(bps),
        "whole_epoch_bytes_per_second": whole,
        "whole_epoch_bytes_per_second_mean": _mean(whole),
        "bytes_read": sum(ep["bytes_read"] for r in ranks for ep in r["epochs"]),
        "epoch_seconds": durations,
        "batch_read_seconds": percentiles(reads),
        "batch_wait_seconds": percentiles(waits),
        "phases": phase_shares(ranks),
    }
    summary["slowest_phase"] = slowest_phase(summary["phases"], ranks)
    evals = [ep for r in ranks for ep in r.get("evals", [])]
    if evals:
        by_epoch: dict[int, list[dict[str, Any]]] = {}
        for ev in evals:
            by_epoch.setdefault(ev["epoch"], []).append(ev)
        eval_au = [_mean([ev["au_percent"] for ev in evs]) for _, evs in sorted(by_epoch.items())]
        eval_sps = [sum(ev["samples_per_second"] for ev in evs) for _, evs in sorted(by_epoch.items())]
        eval_bps = [sum(ev["bytes_read"] for ev in evs) / max(ev["duration"] for ev in evs)
                    if max(ev["duration"] for ev in evs) > 0 else 0.0 for _, evs in sorted(by_epoch.items())]
        summary["eval"] = {
            "au_percent": eval_au,
            "au_mean_percent": _mean(eval_au),
            "au_met": _mean(eval_au) >= au_floor * 100.0,
            "samples_per_second": eval_sps,
            "samples_per_second_mean": _mean(eval_sps),
            "bytes_per_second": eval_bps,
            "bytes_per_second_mean": _mean(eval_bps),
            "batch_read_seconds": percentiles([x for ev in evals for x in ev["read"]]),
        }
    return summary


def phase_shares(ranks: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Share of the measured windows (all ranks, all epochs) spent in each phase."""
    totals = {"compute": 0.0, "load_wait": 0.0, "barrier": 0.0, "overhead": 0.0}
    window = 0.0
    for r in ranks:
        for ep in r["epochs"]:
            window += ep["window_seconds"]
            totals["compute"] += ep["compute_seconds"]
            totals["load_wait"] += ep["load_wait_seconds"]
            totals["barrier"] += ep["barrier_seconds"]
            totals["overhead"] += ep["overhead_seconds"]
    return {k: (v / window if window > 0 else 0.0) for k, v in totals.items()}


def slowest_phase(phases: dict[str, float], ranks: Sequence[dict[str, Any]]) -> str:
    """The non-compute phase that took the largest share of the measured time, said in words."""
    candidates = {k: v for k, v in phases.items() if k != "compute"}
    if not candidates:
        return "none"
    name = max(candidates, key=lambda k: candidates[k])
    text = f"{PHASES[name]}: {candidates[name] * 100:.1f}% of the measured time"
    if name == "load_wait":
        worst = max(ranks, key=lambda r: sum(ep["load_wait_seconds"] for ep in r["epochs"]))
        reads = [x for ep in worst["epochs"] for x in ep["read"]]
        p = percentiles(reads)
        text += (f" (most on rank {worst['rank']}: batch read p50 {p['p50'] * 1000:.1f} ms, "
                 f"p99 {p['p99'] * 1000:.1f} ms)")
    elif name == "barrier":
        slow = min(ranks, key=lambda r: sum(ep["barrier_seconds"] for ep in r["epochs"]))
        text += f" (rank {slow['rank']} waited least: it is the slowest)"
    return text
