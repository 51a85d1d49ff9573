"""The bundled server as one process tree: the front, and the backends it starts and owns.

`python -m serving._bundle --plan PLAN.json` starts every backend of the plan (llama.cpp via
serving._child, or `vllm serve`), waits until all answer /health, then serves the front on
the plan's port. SIGTERM stops the front, then the backends; the backends also die with the
front if it is killed. The plan builders below are what `serving up` and `auto` run.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from serving._embedded import DEFAULT_CTX, DEFAULT_PARALLEL, EmbeddedServer, ServerConfig, free_port
from serving._errors import ServingError
from serving._front import Backend, BackendSpec, Engine, Front, Router
from serving._models import Progress
from serving._onnx_model import OnnxFiles
from serving._supervise import Supervisor

log = logging.getLogger(__name__)

BUNDLE_NAME = "embedded model server (llama.cpp via xllamacpp)"
# slots of the embedding backend: inputs of one request are embedded this many at a time
EMBEDDING_PARALLEL = 8
# share of the GPU's memory that several vLLM processes may take together
GPU_MEMORY_TOTAL = 0.9


class FrontPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str
    port: int
    backends: list[BackendSpec]


@dataclass(frozen=True)
class EmbeddedOptions:
    ctx: int = DEFAULT_CTX
    parallel: int = DEFAULT_PARALLEL
    threads: int = os.cpu_count() or 1
    # every core: the embedding backend's threads sleep while they wait (serving._child), so
    # sharing the cores with the chat backend costs no spinning
    embedding_threads: int = os.cpu_count() or 1
    metrics: bool = False


def embedded_plan(
    chat_path: Path,
    chat_alias: str,
    embedding: Path | OnnxFiles | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    options: EmbeddedOptions | None = None,
    log_dir: Path | None = None,
) -> FrontPlan:
    """The chat model and the packaged embedding model (also rerank and score) behind one URL.

    `embedding`: the ONNX export (served by ONNX Runtime), or the GGUF (served by llama.cpp).
    """
    o = options or EmbeddedOptions()
    child = [sys.executable, "-m", "serving._child"]
    chat_port = free_port()
    chat = child + ["--model", str(chat_path), "--alias", chat_alias, "--port", str(chat_port)]
    chat += ["--ctx", str(o.ctx), "--parallel", str(o.parallel), "--threads", str(o.threads)]
    if o.metrics:
        chat.append("--metrics")
    backends = [
        BackendSpec(
            model=chat_alias,
            capabilities=["chat"],
            engine="llama.cpp",
            url=f"http://127.0.0.1:{chat_port}/v1",
            command=chat,
            log=str(log_dir / "chat.log") if log_dir else None,
        )
    ]
    if embedding is not None:
        backends.append(_embedding_backend(embedding, o, log_dir))
    return FrontPlan(host=host, port=port, backends=backends)


def _embedding_backend(embedding: Path | OnnxFiles, o: EmbeddedOptions, log_dir: Path | None) -> BackendSpec:
    from serving._embedding_model import MINILM

    emb_port = free_port()
    engine: Engine
    if isinstance(embedding, OnnxFiles):
        alias, context, dimensions = embedding.spec.alias, embedding.spec.context, embedding.spec.dimensions
        engine = "onnxruntime"
        command = [sys.executable, "-m", "serving._onnx_child", "--model", str(embedding.model)]
        command += ["--tokenizer", str(embedding.tokenizer), "--alias", alias, "--port", str(emb_port)]
        command += ["--ctx", str(context), "--threads", str(o.embedding_threads)]
    else:
        alias, context, dimensions = MINILM.alias, MINILM.context, MINILM.dimensions
        engine = "llama.cpp"
        command = [sys.executable, "-m", "serving._child", "--model", str(embedding), "--alias", alias]
        command += ["--port", str(emb_port), "--ctx", str(context), "--parallel", str(EMBEDDING_PARALLEL)]
        command += ["--threads", str(o.embedding_threads), "--embedding"]
    return BackendSpec(
        model=alias,
        capabilities=["embedding", "rerank", "score"],
        engine=engine,
        url=f"http://127.0.0.1:{emb_port}/v1",
        command=command,
        max_input_tokens=context,
        dimensions=dimensions,
        log=str(log_dir / "embedding.log") if log_dir else None,
    )


def gpu_memory_split(weights: Sequence[float]) -> list[float]:
    """Each process's --gpu-memory-utilization: shares of GPU_MEMORY_TOTAL by the profiles' weights.

    Rounded down to hundredths, so the sum never exceeds the total.
    """
    total = sum(weights)
    return [math.floor(GPU_MEMORY_TOTAL * w / total * 100 + 1e-9) / 100 for w in weights]


def vllm_plan(
    profiles: Sequence[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_dir: Path | None = None,
    **kw: object,
) -> FrontPlan:
    """One `vllm serve` per profile on its own port, behind one front."""
    from serving._vllm import VllmOptions, get_profile, vllm_argv

    if len(set(profiles)) != len(profiles):
        raise ServingError(f"--profile given twice: {', '.join(profiles)}")
    specs = [get_profile(p) for p in profiles]
    shares = gpu_memory_split([s.vllm.gpu_memory for s in specs]) if len(specs) > 1 else [None] * len(specs)
    backends: list[BackendSpec] = []
    for name, spec, share in zip(profiles, specs, shares, strict=True):
        backend_port = port + 1 + len(backends)
        options = VllmOptions(host="127.0.0.1", port=backend_port, gpu_memory_utilization=share, **kw)  # type: ignore[arg-type]
        backends.append(
            BackendSpec(
                model=spec.served_name,
                capabilities=list(spec.serves()),
                engine="vllm",
                url=f"http://127.0.0.1:{backend_port}/v1",
                command=vllm_argv(name, options),
                log=str(log_dir / f"vllm-{name}.log") if log_dir else None,
                start_timeout=900.0,
            )
        )
    return FrontPlan(host=host, port=port, backends=backends)


def front_command(plan_path: Path, parent_pid: int | None = None) -> list[str]:
    argv = [sys.executable, "-m", "serving._bundle", "--plan", str(plan_path)]
    return argv + (["--parent-pid", str(parent_pid)] if parent_pid else [])


def _stop_with_parent(parent_pid: int) -> None:
    """An `auto` server must not outlive the run that started it, even if that run is killed."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            threading.Event().wait(1.0)
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's handler: shut down, then stop the backends

    threading.Thread(target=watch, daemon=True).start()


def _process(spec: BackendSpec) -> EmbeddedServer:
    parts = urlsplit(spec.url)
    config = ServerConfig(
        model_path=Path(spec.model),
        alias=spec.model,
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 80,
        log_path=Path(spec.log) if spec.log else None,
        die_with_parent=True,
    )
    assert spec.command is not None
    return EmbeddedServer(config, command=spec.command, name=f"{spec.engine} backend")


def start_backends(plan: FrontPlan) -> list[Backend]:
    """Start every backend with a command (from this thread), wait for all; stop all on a failure."""
    started: list[tuple[BackendSpec, EmbeddedServer | None]] = []
    try:
        for spec in plan.backends:
            server = _process(spec) if spec.command else None
            if server is not None:
                server.launch()
            started.append((spec, server))
        errors: list[str] = []

        def wait(spec: BackendSpec, server: EmbeddedServer) -> None:
            try:
                server.wait_ready(spec.start_timeout)
            except ServingError as exc:
                errors.append(str(exc))

        waiters = [threading.Thread(target=wait, args=(s, p)) for s, p in started if p is not None]
        for t in waiters:
            t.start()
        for t in waiters:
            t.join()
        if errors:
            raise ServingError("; ".join(errors))
    except BaseException:
        for _, server in started:
            if server is not None:
                server.stop()
        raise
    return [Backend(spec, server) for spec, server in started]


def serve(plan: FrontPlan) -> int:
    with tempfile.TemporaryDirectory(prefix="agentteams-backends-") as logs:
        # a backend without a log of its own still logs somewhere: a backend that keeps dying
        # is reported with its last lines
        for spec in plan.backends:
            if spec.command and spec.log is None:
                spec.log = str(Path(logs) / (re.sub(r"[^\w.-]", "_", spec.model) + ".log"))
        return _serve(plan)


def _serve(plan: FrontPlan) -> int:
    import uvicorn

    backends = start_backends(plan)
    try:
        app = Front(Router(backends), supervisor=Supervisor(backends)).app()
        # a bounded graceful shutdown: a request still waiting on a backend (its client gone)
        # must not keep the front, and so every backend, alive after SIGTERM
        config = uvicorn.Config(
            app,
            host=plan.host,
            port=plan.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        sys.stderr.write(
            f"serving {', '.join(b.model for b in backends)} at http://{plan.host}:{plan.port}/v1\n"
        )
        # uvicorn re-raises the signal that stopped it once it restored these handlers: a no-op
        # here, so that the backends are stopped below and the exit code says "stopped as asked"
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        uvicorn.Server(config).run()  # returns on SIGTERM / SIGINT
    finally:
        for b in backends:
            if isinstance(b.process, EmbeddedServer):
                b.process.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serving._bundle")
    ap.add_argument("--plan", type=Path, required=True)
    ap.add_argument("--parent-pid", type=int, default=0, help="stop when this process exits")
    args = ap.parse_args(argv)
    if args.parent_pid:
        _stop_with_parent(args.parent_pid)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per proxied request
    plan = FrontPlan.model_validate_json(args.plan.read_text())
    try:
        return serve(plan)
    except ServingError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())


def bundled_server(
    plan: FrontPlan, *, alias: str, log_path: Path | None, detach: bool = False, name: str = BUNDLE_NAME
) -> EmbeddedServer:
    """The front process for `plan` (not started): its plan file sits beside its log."""
    directory = log_path.parent if log_path else Path(tempfile.mkdtemp(prefix="agentteams-"))
    plan_path = directory / ((log_path.stem if log_path else "server") + ".plan.json")
    plan_path.write_text(plan.model_dump_json(indent=2))
    config = ServerConfig(
        model_path=plan_path, alias=alias, host=plan.host, port=plan.port, log_path=log_path, detach=detach
    )
    command = front_command(plan_path, None if detach else os.getpid())
    return EmbeddedServer(config, command=command, name=name)


def embedding_model_or_none(progress: Progress | None = None) -> Path | OnnxFiles | None:
    """The packaged embedding model: its ONNX export, else its GGUF, else None (with a warning)."""
    from serving._embedding_model import ensure_embedding_model
    from serving._onnx_model import onnx_embedding_model

    try:
        return onnx_embedding_model(progress=progress)
    except ServingError as onnx:
        try:
            return ensure_embedding_model(progress=progress)
        except ServingError as gguf:
            log.warning("serving chat only: %s; %s", onnx, gguf)
            return None
