from agents.waitfor.cli import main

raise SystemExit(main())
