"""Stage 6: render a scan report (console table, JSON)."""
