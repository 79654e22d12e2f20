"""What the training and checkpoint engines need of a test's result record.

The record they fill is the report layer's ``TestRecord``; the report layer sits above this
one, so the engines name the part they use as a structural type instead of importing it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol


class Valued(Protocol):
    """A recorded metric, as far as the engines read it back."""

    @property
    def value(self) -> float: ...


class Recorder(Protocol):
    """The methods and fields of ``report.record.TestRecord`` the engines use."""

    kind: str
    params: dict[str, Any]
    details: dict[str, Any]

    @property
    def metrics(self) -> Mapping[str, Valued]: ...

    @property
    def repeat(self) -> int: ...

    @property
    def warmups(self) -> int: ...

    def metric(self, name: str, value: float, unit: str, direction: str = "higher",
               repeats: list[float] | None = None, warmup: list[float] | None = None) -> object: ...

    def criterion(self, metric: str, comparison: str, threshold: float, description: str = "") -> object: ...

    def waive(self, metric: str, label: str, reason: str) -> None: ...

    def warn(self, message: str) -> None: ...

    def measure(self, run: Callable[[], Mapping[str, float]],
                units: Mapping[str, tuple[str, str]]) -> dict[str, float]: ...
