"""`python -m jobyard` runs the CLI."""

from __future__ import annotations

from jobyard.cli.entry import main

if __name__ == "__main__":
    main()
