"""python -m serving up | status | down | check"""

import sys

from serving._cli import main

sys.exit(main())
