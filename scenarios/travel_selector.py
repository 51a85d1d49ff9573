"""`python -m scenarios.travel_selector [--task ...]`: run the travel_selector scenario."""

import sys

from scenarios._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "travel_selector", *sys.argv[1:]]))
