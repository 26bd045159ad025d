"""``python -m bot``: the ``release-bot`` command line (:func:`bot.cli.main`)."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
