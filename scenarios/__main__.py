import sys

from scenarios._cli import main

sys.exit(main())
