"""Stage 2, python: imports → the installed distributions a service reaches.

Takes a Python environment (a site-packages folder) and a service's `ImportRecord`s; gives a
`ServiceReach` (`reach.py`): each third-party import resolved to its distribution, and every
distribution of the runtime closure with its tier and the evidence chain that reaches it.
Requirements files are read here and checked against what is imported (`requirements.py`).
"""
