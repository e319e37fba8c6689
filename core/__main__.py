import sys

from core.commands.cli import main

sys.exit(main())
