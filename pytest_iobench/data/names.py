"""The data layer's names that options need at import time, in a module that imports nothing.

``data/options.py`` declares its options when the pytest plugin loads, in every pytest run of
a project where the package is installed; importing the format modules, the generator or the
integrity checker there would load numpy and the format libraries into every run. The modules
that own these facts (spec.py, integrity.py, generate.py) hold the same tuples;
tests/test_plugin_import.py checks that they agree.
"""

from __future__ import annotations

#: every dataset format the data layer writes and reads (spec.FORMATS)
FORMATS = ("npz", "npy", "hdf5", "parquet", "csv", "jpeg", "png", "tfrecord", "indexed_binary",
           "mmap_indexed_binary")
#: how much of a kept dataset is checked before reuse (integrity.MODES)
MODES = ("sample", "full", "none")
#: what a kept dataset with a corrupt file does (generate.ON_CORRUPT)
ON_CORRUPT = ("fail", "regenerate")
