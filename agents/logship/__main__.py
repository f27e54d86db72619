from agents.logship.cli import main

raise SystemExit(main())
