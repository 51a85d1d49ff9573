"""An MCP server that misbehaves on request, to test how a scenario copes with MCP faults.

Run it like any stdio server in a scenario::

    mcp_servers:
      flaky:
        type: stdio
        command: python
        args: [-m, mcp_servers.testing]            # add --exit-at-start to fail at once

``--exit-at-start-if PATH`` starts normally until PATH exists (a server that starts once,
then dies at every restart). Or over streamable HTTP with ``--http PORT`` (url ``http://127.0.0.1:PORT/mcp``).

Tools: ``echo(text)`` answers at once; ``sleep(seconds)`` answers after a while (a call in
flight to kill the server under); ``fail(message)`` raises, so the call returns a tool error;
``crash(status, kill)`` ends the server's process in the middle of the call (SIGKILL with
``kill``); ``vanish(linger)`` answers, then ends the main thread while the process lingers
with its pipes open (Linux on x86_64 or aarch64).
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import platform
import signal
import sys
import threading
import time

from mcp.server.fastmcp import FastMCP


def build(port: int = 8000) -> FastMCP:
    server = FastMCP("testing", host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool()
    async def sleep(seconds: float) -> str:
        """Wait for the given number of seconds, then say so."""
        sys.stderr.write(f"testing server: sleeping {seconds:g} s\n")
        sys.stderr.flush()
        await asyncio.sleep(seconds)
        return f"slept {seconds:g} s"

    @server.tool()
    def fail(message: str) -> str:
        """Raise an error with the given message."""
        raise RuntimeError(message)

    @server.tool()
    def crash(status: int = 3, kill: bool = False) -> str:
        """End the server's process at once, without answering (with SIGKILL when kill is true)."""
        how = "SIGKILL" if kill else f"status {status}"
        sys.stderr.write(f"testing server: crashing with {how} as asked\n")
        sys.stderr.flush()
        if kill:
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(status)

    @server.tool()
    async def vanish(linger: float = 5.0) -> str:
        """Answer, then end the main thread; the process lingers for `linger` seconds, then exits.

        What a SIGKILLed multi-threaded server looks like while its other threads die: the
        main thread is a zombie, wait() does not report the process yet, stdin is still open.
        """
        exit_thread = _SYS_EXIT.get(platform.machine())
        if exit_thread is None:
            raise RuntimeError(f"vanish needs Linux on x86_64 or aarch64, not {platform.machine()}")

        def linger_then_exit() -> None:
            time.sleep(linger)
            os._exit(9)

        threading.Thread(target=linger_then_exit, daemon=True).start()
        sys.stderr.write(f"testing server: vanishing, lingering {linger:g} s\n")
        sys.stderr.flush()
        asyncio.get_running_loop().call_later(0.2, ctypes.CDLL(None).syscall, exit_thread, 0)
        return "vanishing"

    return server


_SYS_EXIT = {"x86_64": 60, "aarch64": 93}
"""The exit syscall's number (ends the calling thread only, unlike exit_group)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mcp_servers.testing", description=__doc__)
    parser.add_argument("--http", type=int, metavar="PORT", help="serve streamable HTTP on 127.0.0.1:PORT")
    parser.add_argument("--exit-at-start", action="store_true", help="write an error and exit with status 1")
    parser.add_argument("--exit-at-start-if", metavar="PATH", help="the same, once PATH exists")
    args = parser.parse_args(argv)
    if args.exit_at_start or (args.exit_at_start_if and os.path.exists(args.exit_at_start_if)):
        sys.stderr.write("testing server: refusing to start (--exit-at-start)\n")
        return 1
    server = build(args.http or 8000)
    server.run(transport="streamable-http" if args.http else "stdio")
    return 0


if __name__ == "__main__":
    sys.exit(main())
