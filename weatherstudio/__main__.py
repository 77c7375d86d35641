from weatherstudio.cli import main

raise SystemExit(main())
