"""The ``cleanplate`` command line: a thin layer over the library."""
