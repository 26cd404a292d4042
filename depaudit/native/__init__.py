"""Stage 3, native: the reached wheels' ELF files, resolved the way ld.so would.

Takes a Python environment, the reached distributions' keys and the image's LD_LIBRARY_PATH;
gives a `NativeReport` per distribution (`wheels.py` keeps them per scan): every needed soname
with where the loader found it (bundled, another wheel, the image) or that it found it nowhere,
plus the native hints (ctypes, subprocess, ...) in the wheels' Python code. It never runs what
it reads.
"""
