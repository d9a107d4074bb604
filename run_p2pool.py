#!/usr/bin/env python3
"""Start a P2Pool node: `python run_p2pool.py [options] [RPCUSER RPCPASS]`."""
import sys

from p2pool.app.main import console_main

if __name__ == '__main__':
    sys.exit(console_main())
