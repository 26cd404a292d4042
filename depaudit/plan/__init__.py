"""Stage 5, plan: per family, the minimal apt-get install diff that makes every service run.

Takes the families (with their Dockerfiles' apt lists) and every service's needs; gives a
`FleetPlan` (`fleet.py`): a `FamilyPlan` per family (add, unused, redundant, build-only), and
each service's needs with the plan's final verdict (`installed` where a family on its FROM
chain already installs the package).
"""
