#!/usr/bin/env python
"""Developer entry point; the installed equivalent is the `chatsite-manage` console script."""
import sys

from chatsite.manage import main

if __name__ == "__main__":
    sys.exit(main())
