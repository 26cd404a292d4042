"""The fleet: services, the family Dockerfiles their images are built from, and the base they reach."""
