"""The communicator a rank's workload code runs with, as a structural type.

The MPI layer (above this one) provides it: ``mpi.context.SingleRank`` in process, ``MPIRanks``
under mpiexec. The workload names only the collectives it uses, so it runs with either.
"""

from __future__ import annotations

from typing import Any, Protocol


class Comm(Protocol):
    """This rank's number, the rank count, and the collectives the workloads use."""

    @property
    def rank(self) -> int: ...

    @property
    def size(self) -> int: ...

    def barrier(self) -> None: ...

    def bcast(self, obj: Any, root: int = 0) -> Any: ...

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None: ...

    def allgather(self, obj: Any) -> list[Any]: ...
