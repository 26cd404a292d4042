"""Stage 6, emit: a `ScanReport` → what people and CI read.

Takes the finished `ScanReport` and renders it: the console table, JSON (the CI artifact, its
schema in `report.schema.json`), Markdown, SARIF, bindep files and the Dockerfile patch. It
decides nothing: every verdict and evidence step arrives typed, and is only printed here.
"""
