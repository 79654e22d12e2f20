"""Several baseline documents as one: each metric's repeats pooled over the sessions.

One session's repeats show the noise within that session. Two sessions of the same code on a
shared machine can differ by more than that (the disk's state, the other jobs, where the
process landed): docs/results.md, "The gate's statistics", has a real pair. A baseline made of
several sessions has a band that spans the drift between sessions, and the gate (compare.py)
counts a change only beyond that band, as for one session. Three single-value sessions
(``--iobench-repeat 1``) pooled give a spread to test on, which one such session cannot.
"""

from __future__ import annotations

import copy
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .schema import load_document

#: what separates the documents of a baseline given as one string (``--iobench-compare a,b``)
SEPARATOR = ","


def baseline_paths(text: str) -> list[str]:
    """The documents named by ``--iobench-compare`` or ``iobench report``'s BASELINE."""
    return [part.strip() for part in text.split(SEPARATOR) if part.strip()]


def load_baseline(text: str, relative_to: str | Path = ".") -> dict[str, Any]:
    """Read each document ``text`` names (relative paths from ``relative_to``) and pool them;
    DocumentError names the document that is wrong."""
    return pool([load_document(Path(relative_to) / path) for path in baseline_paths(text)])


def pool(documents: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One baseline document from several, the last one's shape (its run, machine, settings,
    each test's outcome) with every metric's repeats pooled: a metric's ``repeats`` are all the
    documents' repeats (a document without repeats gives its value), its ``value`` their median,
    and it is ``unfit`` when any document flagged it. The run's ``id`` lists every document's."""
    if not documents:
        raise ValueError("no baseline document to pool")
    if len(documents) == 1:
        return documents[0]
    pooled = copy.deepcopy(documents[-1])
    pooled["run"]["id"] = SEPARATOR.join(d["run"]["id"] for d in documents)
    pooled["run"]["started"] = min(d["run"]["started"] for d in documents)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for document in documents:
        for test in document["tests"]:
            by_id.setdefault(test["id"], []).append(test)
    tests = []
    for entries in by_id.values():
        test = copy.deepcopy(entries[-1])
        names = dict.fromkeys(name for entry in entries for name in entry["metrics"])
        test["metrics"] = {name: _pooled_metric([e["metrics"][name] for e in entries if name in e["metrics"]])
                           for name in names}
        tests.append(test)
    pooled["tests"] = tests
    return pooled


def _pooled_metric(metrics: Sequence[dict[str, Any]]) -> dict[str, Any]:
    metric = copy.deepcopy(metrics[-1])
    values = [v for m in metrics for v in (m.get("repeats") or [m["value"]])]
    metric["repeats"] = values
    metric["value"] = statistics.median(values)
    unfit = next((m["unfit"] for m in metrics if m.get("unfit")), "")
    if unfit:
        metric["unfit"] = unfit
    return metric
