"""Stage 4, packages: what the image must provide → apt packages of the target distro.

Takes the native stage's reports and hints for a service's reached wheels, the distro's rules
(and an index, a base image or its profile); gives the service's `Need`s (`model.py`), each a
package answer with its status, tier and typed evidence chain (`resolver.py`, `service.py`).
A soname no rule or index knows is `unmapped`, never guessed.
"""
