"""A stand-in backend for the front's tests: llama.cpp's embedding endpoints, or a vLLM pooling
server that echoes what it got, or a minimal chat server. Standard library only, so that it
also runs as a process (`python fake_backend.py KIND PORT`) behind a real `serving._bundle`.

Embeddings are bags of words hashed into 64 dimensions and normalised, so texts that share
words are close; a "token" is a whitespace-separated word, plus [CLS] and [SEP].
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLS, SEP, CONTEXT = 101, 102, 32
DIMS = 4096  # few hash collisions: texts without a common word score 0


def token_ids(text: str) -> list[int]:
    return (
        [CLS]
        + [1000 + int(hashlib.sha256(w.lower().encode()).hexdigest(), 16) % 1_000_000 for w in text.split()]
        + [SEP]
    )


def vector(ids: list[int]) -> list[float]:
    v = [0.0] * DIMS
    for i in ids:
        if i not in (CLS, SEP):
            v[i % DIMS] += 1.0
    norm = math.sqrt(sum(x * x for x in v)) or 1.0
    return [x / norm for x in v]


class Handler(BaseHTTPRequestHandler):
    kind = "embedding"
    model = "fake-model"
    received: list[tuple[str, Any]]

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        if self.path == "/health":
            self._send(200, {"status": "ok"})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": "not found"}})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
        self.received.append((self.path, body))
        if self.kind == "hang":
            if len(sys.argv) > 4:  # tell the test the request arrived
                with open(sys.argv[4], "a") as f:
                    f.write(f"{self.path}\n")
            time.sleep(3600)  # a backend that never answers; the process ends on SIGTERM
        if self.kind == "vllm":
            self._send(200, {"echo_path": self.path, "echo_body": body})
        elif self.kind == "chat" and self.path == "/v1/chat/completions" and body.get("stream"):
            # one chunk, then nothing: the test kills the process mid-stream
            chunk = {
                "object": "chat.completion.chunk",
                "model": self.model,
                "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}],
            }
            self.protocol_version = "HTTP/1.1"  # chunked, as llama.cpp streams: a death is a cut body
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            event = b"data: " + json.dumps(chunk).encode() + b"\n\n"
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()
            time.sleep(3600)
        elif self.kind == "chat" and self.path == "/v1/chat/completions":
            reply = {"role": "assistant", "content": f"chat from {self.model}"}
            self._send(
                200,
                {
                    "object": "chat.completion",
                    "model": self.model,
                    "choices": [{"index": 0, "message": reply, "finish_reason": "stop"}],
                },
            )
        elif self.kind == "embedding" and self.path == "/tokenize":
            self._send(200, {"tokens": token_ids(body["content"])})
        elif self.kind == "embedding" and self.path == "/v1/embeddings":
            inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
            ids = [x if isinstance(x, list) else token_ids(x) for x in inputs]
            if any(len(i) > CONTEXT for i in ids):
                message = f"input is larger than the max context size ({CONTEXT} tokens). skipping"
                self._send(
                    400, {"error": {"code": 400, "message": message, "type": "exceed_context_size_error"}}
                )
                return
            data = [{"index": n, "embedding": vector(i)} for n, i in enumerate(ids)]
            tokens = sum(len(i) for i in ids)
            self._send(
                200,
                {
                    "model": self.model,
                    "object": "list",
                    "data": data,
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                },
            )
        else:
            self._send(404, {"error": {"message": f"no {self.path} on this fake"}})

    def log_message(self, *args: object) -> None:
        pass


def serve(kind: str, model: str, port: int = 0) -> tuple[ThreadingHTTPServer, list[tuple[str, Any]]]:
    received: list[tuple[str, Any]] = []
    handler = type("H", (Handler,), {"kind": kind, "model": model, "received": received})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    return server, received


def start_in_thread(kind: str, model: str) -> tuple[ThreadingHTTPServer, list[tuple[str, Any]], str]:
    server, received = serve(kind, model)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, received, f"http://127.0.0.1:{server.server_address[1]}/v1"


if __name__ == "__main__":
    kind, model, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if "--fail-if" in sys.argv:  # a backend that cannot start any more once this file exists
        marker = sys.argv[sys.argv.index("--fail-if") + 1]
        try:
            with open(marker) as f:
                sys.stderr.write(f"error: {f.read().strip()}\n")
                sys.exit(3)
        except FileNotFoundError:
            pass
    serve(kind, model, port)[0].serve_forever()
