"""`python -m p2pool`: the same entry point as the `p2pool` console script."""
from p2pool.app.main import console_main

raise SystemExit(console_main())
