from smarthole_notes.cli import main

raise SystemExit(main())
