"""C{python -m twistsock}: the C{twistsock} command."""

import sys

from twistsock._cli import main

if __name__ == "__main__":
    sys.exit(main())
