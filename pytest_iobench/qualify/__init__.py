"""Vendor qualification as MLPerf Storage runs it: the dataset the rules require
(``datasize``), the rules a run is checked against (``rules``) and the search for the largest
accelerator count that meets the AU floor (``search``). Usable without pytest; the
qualification suite and ``iobench datasize`` call it."""
