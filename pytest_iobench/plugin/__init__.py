"""The pytest plugin: glue only.

Each module below registers the options, fixtures and hooks of one layer; the work itself
lives in the layers (storage, data, workload, mpi, report), usable without pytest.
"""

pytest_plugins = [
    "pytest_iobench.plugin.options",
    "pytest_iobench.plugin.storage",
    "pytest_iobench.plugin.records",
    "pytest_iobench.plugin.results",
    "pytest_iobench.plugin.confirm",
    "pytest_iobench.plugin.data",
    "pytest_iobench.plugin.workload",
]
