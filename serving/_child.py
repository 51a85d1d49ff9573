"""The embedded server's own process: llama.cpp's HTTP server, in-process via xllamacpp.

Run by serving._embedded as `python -m serving._child ...`; a separate process so that it can
be stopped, so that a crash is seen as an exit code, and so that llama.cpp's log goes to a file.
xllamacpp is pinned to 0.2.12: 0.2.13+ changed llama.cpp's tool-call parser and returns no
tool calls for the packaged Qwen2.5-Coder model.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
import threading
from collections.abc import MutableMapping


def _die_with_parent(parent_pid: int, stop: threading.Event) -> None:
    """An `auto` server must not outlive the run that started it, even if that run is killed."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent_pid:
                stop.set()

    threading.Thread(target=watch, daemon=True).start()


CHAT_SPINCOUNT = "1000"


def openmp_wait_env(environ: MutableMapping[str, str], *, embedding: bool) -> None:
    """How llama.cpp's OpenMP threads wait at each barrier (read by libgomp when xllamacpp
    loads it); a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is kept.

    With libgomp's spinning wait any other busy process stalls the barriers: a spinning
    thread holds the core that its peer needs. With one of two cores busy the same chat
    reply took 8.7-140 s, by where the threads landed, against 6.2-7.7 s spinning 1,000
    times (`python -m bench busy_core --load stress-ng`).
    The embedding backend sleeps at once (its 2 threads then rerank no slower than 1 under
    load); the chat backend spins briefly, which keeps the idle speed and most of the
    loaded one.
    """
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return
    if embedding:
        environ["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        environ["GOMP_SPINCOUNT"] = CHAT_SPINCOUNT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serving._child")
    ap.add_argument("--model", required=True)
    ap.add_argument("--alias", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ctx", type=int, required=True, help="context tokens per slot")
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--metrics", action="store_true", help="serve Prometheus /metrics")
    ap.add_argument("--parent-pid", type=int, default=0, help="exit when this process exits")
    ap.add_argument("--embedding", action="store_true", help="serve /v1/embeddings (mean pooling)")
    args = ap.parse_args(argv)

    stop = threading.Event()
    if args.parent_pid:
        _die_with_parent(args.parent_pid, stop)

    openmp_wait_env(os.environ, embedding=args.embedding)
    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = args.model
    params.model_alias = args.alias
    params.hostname = args.host  # 0.2.12 has `hostname`; later versions `hostnames`
    params.port = args.port
    # llama.cpp splits n_ctx across the slots; --ctx is what one conversation may use
    params.n_ctx = args.ctx * args.parallel
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.use_jinja = True  # the GGUF's own chat template and llama.cpp's native tool-call parsing
    params.endpoint_metrics = args.metrics
    params.warmup = False  # saves ~1 s of start; the first request pays it instead
    if args.embedding:
        params.embedding = True
        params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
        # a non-causal model needs each input whole in one micro-batch; one batch holds
        # every slot's input so that a list of inputs is one forward pass
        params.n_batch = params.n_ubatch = params.n_ctx
    server = xlc.Server(params)  # returns once the model is loaded and the port listens
    # after Server(): llama.cpp installs its own handlers, which stop its loop but not this process
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sys.stderr.write(f"serving {args.alias} at http://{args.host}:{args.port}/v1\n")
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
