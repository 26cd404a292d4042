"""Stage 1: find services and the imports their source files make."""
