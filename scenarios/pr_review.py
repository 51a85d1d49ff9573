"""`python -m scenarios.pr_review [--repo PATH] [--unit merge|commit] [--task ...]`: questions
about a repository's changes, answered from its indexed git history with cited commits."""

import argparse
import os
import sys

from scenarios._cli import main

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m scenarios.pr_review", add_help=False)
    parser.add_argument("--repo", help="the git repository (default: the current directory)")
    parser.add_argument("--unit", choices=["merge", "commit"], help="merge: one unit per merged PR")
    parser.add_argument("--rerank", action="store_true", help="rerank with the server's /rerank")
    known, rest = parser.parse_known_args()
    if known.repo:
        os.environ["REPO"] = os.path.abspath(known.repo)
    if known.unit:
        os.environ["UNIT"] = known.unit
    if known.rerank:
        os.environ["RERANK"] = "true"
    sys.exit(main(["run", "pr_review", *rest]))
