"""Dockerfiles, in one place: each read once, and what its text says.

Takes a Dockerfile's text, or its path. Gives:
  - model: the Dockerfile value (its path, how reports show it, its text or why it could not be
    read; its instructions, apt-get install lists and problems, each parsed once; image()),
    read_dockerfile(), and Dockerfiles, which reads each file once per scan;
  - parse: pure functions of the text: instructions, the final stage's apt-get install lists
    with their apt hygiene, the image's base and ENV;
  - problems: what a person should fix, or what depaudit reads but will not patch;
  - edit: the text with packages added or removed, in the file's own style.
This file imports none of them: import the module you use.
"""
