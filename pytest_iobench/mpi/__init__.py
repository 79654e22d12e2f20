"""Layer 4, mpi: running work as N ranks under mpiexec, one process per simulated accelerator."""
