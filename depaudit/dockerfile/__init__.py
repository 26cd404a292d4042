"""Dockerfiles: read one once, and what its text says.

Takes a Dockerfile's text (or its path, read once: model.read_dockerfile); gives its instructions,
its final stage's `apt-get install` lists with their apt hygiene, its image's base and ENV
(parse), the problems a person should fix (problems), and the text with packages added or
removed in the file's own style (edit). Nothing here is imported eagerly: import the module you use.
"""
