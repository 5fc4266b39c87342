"""From a finished IR to native code: fusion, emitted loop source, Numba, executables and tiers."""
