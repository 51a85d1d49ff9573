"""`python -m scenarios.time_assistant [--task ...]`: run the time_assistant scenario."""

import sys

from scenarios._cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "time_assistant", *sys.argv[1:]]))
