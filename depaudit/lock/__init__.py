"""Audit from a lock (pylock.toml, uv.lock, a pinned requirements.txt): each pin's wheel for the
image's target is found, checked against the lock's hashes and laid out as it would install,
holding only the bytes the stages read; the stages then read that folder as any site-packages."""
