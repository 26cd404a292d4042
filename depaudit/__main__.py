from depaudit.cli import run

raise SystemExit(run())
