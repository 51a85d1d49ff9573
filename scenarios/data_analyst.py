"""`python -m scenarios.data_analyst [--task ...] [--out DIR]`: run the data_analyst scenario."""

import sys

from scenarios._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "data_analyst", *sys.argv[1:]]))
