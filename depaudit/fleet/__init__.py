"""The fleet: which services there are, which family image each runs in, and what it is built on.

Takes the scanned paths and the fleet config (`depaudit.toml`); gives a `Fleet` (services,
their placements, the family Dockerfiles and their parents) and, per service, a `ServiceBase`
(`bases.py`): its FROM chain, base image or profile, Python environment and environment
variables.
"""
