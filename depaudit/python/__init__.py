"""Stage 2: map imports to installed distributions and their Requires-Dist closure."""
