"""Run ``python -m omealert.simulator``; the command line itself is in ``cli.py``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
