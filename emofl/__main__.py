import sys

from emofl.cli import main

sys.exit(main())
