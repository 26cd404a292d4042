"""The base image as an input: its files, read inside its own root, and what it provides.

Takes an unpacked rootfs, a `docker save` tarball or an OCI layout; gives a `BaseImage`: paths
resolved inside the image (never on this machine), its dpkg database, ld.so.conf, Env and
distro, and its own site-packages copied out as far as the stages read them.
"""
