from depaudit.cli import main

raise SystemExit(main())
