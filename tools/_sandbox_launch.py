"""Runs inside the sandbox, before the model's code: applies the limits, then runs the cell.

Standard library only, and no project imports: the sandbox sees neither. Usage:
`python -I _sandbox_launch.py CELL_FILE AS_BYTES CPU_SECONDS FILE_BYTES NPROC DROP`
(DROP=1: a root caller's code runs as nobody).
"""

import linecache
import os
import resource
import signal
import sys
import traceback

NOBODY = 65534


def _limit(kind: int, value: int) -> None:
    resource.setrlimit(kind, (value, value))


def main() -> None:
    cell, address_space, cpu, file_size, processes, drop = sys.argv[1], *map(int, sys.argv[2:7])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large file is an OSError, not a kill
    _limit(resource.RLIMIT_CORE, 0)
    _limit(resource.RLIMIT_AS, address_space)
    _limit(resource.RLIMIT_CPU, cpu)
    _limit(resource.RLIMIT_FSIZE, file_size)
    _limit(resource.RLIMIT_NOFILE, 256)
    _limit(resource.RLIMIT_NPROC, processes)
    if drop and os.getuid() == 0:
        # Root is exempt from RLIMIT_NPROC, so a root caller's sandbox runs the code as nobody.
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    with open(cell, encoding="utf-8") as f:
        source = f.read()
    linecache.cache["main.py"] = (
        len(source),
        None,
        source.splitlines(True),
        "main.py",
    )  # tracebacks show lines
    sys.argv = ["main.py"]
    sys.path.insert(0, os.getcwd())
    namespace = {"__name__": "__main__", "__file__": "main.py", "__builtins__": __builtins__}
    try:
        code = compile(source, "main.py", "exec")
        exec(code, namespace)
    except SystemExit:
        raise
    except BaseException:
        # The traceback without this launcher's own frame: the model sees only its code.
        kind, value, tb = sys.exc_info()
        traceback.print_exception(kind, value, tb.tb_next if tb is not None else None)
        sys.exit(1)
    finally:
        sys.stdout.flush()


if __name__ == "__main__":
    main()
