"""Django's command-line utility, packaged so the wheel exposes it as `chatsite-manage`."""
from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Run a Django management command (`argv` defaults to `sys.argv`); returns the exit status 0."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv if argv is not None else sys.argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
