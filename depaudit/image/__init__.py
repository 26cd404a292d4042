"""The base image as an input: its files, read inside its own root, and what it provides."""
