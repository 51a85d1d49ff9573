"""`python -m scenarios.travel_planning [--task ...]`: run the travel_planning scenario."""

import sys

from scenarios._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "travel_planning", *sys.argv[1:]]))
