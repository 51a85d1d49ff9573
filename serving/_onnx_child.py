"""An embedding backend on ONNX Runtime, in its own process, for the bundled front.

`python -m serving._onnx_child --model M.onnx --tokenizer tokenizer.json --alias A --port P`
serves the part of llama.cpp's HTTP API that the front uses for an embedding backend:
`GET /health`, `POST /v1/embeddings` (`input`: a string, a list of strings, or token-id lists)
and `POST /tokenize` (`content`, `add_special`), with llama.cpp's "exceed_context_size" error
for an input over the context. Vectors are mean-pooled over the tokens and of unit length,
as llama.cpp returns them, so the front computes rerank and score the same way for both.

Why not llama.cpp for this model: the xllamacpp wheel is an AVX2 build, and ONNX Runtime's
int8 kernels use the AVX-512/VNNI of the CPUs here: a 20-document rerank took about half the CPU
time (`python -m bench model --embeddings`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

# inputs of one request run in batches of at most this many tokens (padding included), longest
# first, so that one long input does not pad every short one to its length
BATCH_TOKENS = 4096


class OnnxEmbedder:
    def __init__(self, model: str, tokenizer: str, threads: int, context: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        # waiting threads sleep instead of spinning: they share the cores with the chat backend
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # no arena: it kept the largest batch's buffers (+200 MB RSS) for no measurable speed
        options.enable_cpu_mem_arena = False
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(tokenizer)
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        self.context = context
        self._lock = threading.Lock()  # one batch at a time gets every thread

    def tokenize(self, texts: Sequence[str], add_special: bool = True) -> list[list[int]]:
        return [list(e.ids) for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=add_special)]

    def embed(self, batch: list[list[int]]) -> list[list[float]]:
        import numpy as np

        order = sorted(range(len(batch)), key=lambda i: len(batch[i]), reverse=True)
        out: list[list[float]] = [[] for _ in batch]
        start = 0
        while start < len(order):
            width = max(1, len(batch[order[start]]))
            end = start + max(1, BATCH_TOKENS // width)
            chunk = order[start:end]
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros_like(ids)
            for row, i in enumerate(chunk):
                ids[row, : len(batch[i])], mask[row, : len(batch[i])] = batch[i], 1
            feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            with self._lock:
                hidden = self.session.run(None, feed)[0]
            pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            for row, i in enumerate(chunk):
                out[i] = pooled[row].astype(float).tolist()
            start = end
        return out


def _inputs(embedder: OnnxEmbedder, value: Any) -> list[list[int]] | None:
    """Token ids of each input: strings are tokenized, token-id lists kept; None: bad shape."""
    if isinstance(value, str):
        return embedder.tokenize([value])
    if isinstance(value, list) and value and all(isinstance(t, int) for t in value):
        return [list(value)]
    if isinstance(value, list) and value:
        if all(isinstance(v, str) for v in value):
            return embedder.tokenize(value)
        if all(isinstance(v, list) and all(isinstance(t, int) for t in v) for v in value):
            return [list(v) for v in value]
    return None


def app(embedder: OnnxEmbedder, alias: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    def error(status: int, message: str, type_: str) -> JSONResponse:
        return JSONResponse({"error": {"code": status, "message": message, "type": type_}}, status)

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def tokenize(request: Request) -> JSONResponse:
        body = await request.json()
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, str):
            return error(400, "content: a string is required", "invalid_request_error")
        ids = embedder.tokenize([content], bool(body.get("add_special", False)))[0]
        return JSONResponse({"tokens": ids})

    async def embeddings(request: Request) -> JSONResponse:
        body = await request.json()
        batch = _inputs(embedder, body.get("input")) if isinstance(body, dict) else None
        if batch is None:
            return error(
                400, "input: a string, a list of strings or of token-id lists", "invalid_request_error"
            )
        if any(len(ids) > embedder.context for ids in batch):
            message = f"input is larger than the max context size ({embedder.context} tokens). skipping"
            return error(400, message, "exceed_context_size_error")
        vectors = await asyncio.to_thread(embedder.embed, batch)
        tokens = sum(len(ids) for ids in batch)
        return JSONResponse(
            {
                "model": alias,
                "object": "list",
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/tokenize", tokenize, methods=["POST"]),
        Route("/v1/embeddings", embeddings, methods=["POST"]),
        Route("/embeddings", embeddings, methods=["POST"]),
    ]
    return Starlette(routes=routes)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m serving._onnx_child")
    ap.add_argument("--model", required=True, help="the .onnx file")
    ap.add_argument("--tokenizer", required=True, help="its tokenizer.json")
    ap.add_argument("--alias", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ctx", type=int, required=True, help="tokens per input")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)

    import uvicorn

    embedder = OnnxEmbedder(args.model, args.tokenizer, args.threads, args.ctx)
    sys.stderr.write(f"serving {args.alias} at http://{args.host}:{args.port}/v1 (ONNX Runtime)\n")
    uvicorn.run(app(embedder, args.alias), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
