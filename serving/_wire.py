"""Wire shapes of the bundled front: requests it validates itself, OpenAI-shaped errors.

Chat and completion bodies are passed to the backend untouched; embeddings, rerank and score
are validated here so that a bad request gets one 400 naming the field, whatever the backend.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from agentteams import AgentTeamsError
from serving._capabilities import CAPABILITIES, Capability

__all__ = ["CAPABILITIES", "Capability"]  # re-exported: the front's wire names them
# OpenAI's own limit for one embeddings request
MAX_INPUTS = 2048


class ApiError(AgentTeamsError):
    """An error the front answers in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.type = type or ("invalid_request_error" if status < 500 else "server_error")

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: StrictStr | None = None
    truncate_prompt_tokens: StrictInt | None = Field(default=None, gt=0)


class EmbeddingsRequest(_Body):
    input: StrictStr | list[StrictStr]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = None
    user: StrictStr | None = None

    def texts(self) -> list[str]:
        texts = [self.input] if isinstance(self.input, str) else list(self.input)
        if not texts:
            raise ApiError(
                400, "input: must be a non-empty string or a non-empty list of strings", param="input"
            )
        if len(texts) > MAX_INPUTS:
            raise ApiError(
                400, f"input: {len(texts):,} items; at most {MAX_INPUTS} per request", param="input"
            )
        for i, text in enumerate(texts):
            if not text:
                where = "input" if isinstance(self.input, str) else f"input[{i}]"
                raise ApiError(400, f"{where}: must not be an empty string", param="input")
        return texts


class RerankRequest(_Body):
    query: StrictStr
    documents: list[StrictStr]
    top_n: StrictInt = Field(default=0, ge=0, description="0: every document")
    return_documents: bool = True

    def checked(self) -> RerankRequest:
        if not self.query:
            raise ApiError(400, "query: must not be an empty string", param="query")
        if not self.documents:
            raise ApiError(400, "documents: must be a non-empty list of strings", param="documents")
        if len(self.documents) + 1 > MAX_INPUTS:
            raise ApiError(
                400, f"documents: {len(self.documents):,} items; at most {MAX_INPUTS - 1}", param="documents"
            )
        if self.top_n > len(self.documents):
            raise ApiError(
                400,
                f"top_n: {self.top_n} is more than the {len(self.documents)} documents given "
                "(0 returns every document)",
                param="top_n",
            )
        for i, doc in enumerate(self.documents):
            if not doc:
                raise ApiError(400, f"documents[{i}]: must not be an empty string", param="documents")
        return self


class ScoreRequest(_Body):
    text_1: StrictStr | list[StrictStr]
    text_2: StrictStr | list[StrictStr]
    encoding_format: Literal["float"] = "float"

    def pairs(self) -> list[tuple[str, str]]:
        """vLLM's rules: 1 x 1, 1 x N (text_1 against each of text_2), or N x N pairwise."""
        first = [self.text_1] if isinstance(self.text_1, str) else list(self.text_1)
        second = [self.text_2] if isinstance(self.text_2, str) else list(self.text_2)
        for name, texts in (("text_1", first), ("text_2", second)):
            if not texts:
                raise ApiError(400, f"{name}: must be a non-empty string or list of strings", param=name)
            if any(not t for t in texts):
                raise ApiError(400, f"{name}: must not contain an empty string", param=name)
        if len(first) == 1:
            return [(first[0], t) for t in second]
        if len(first) != len(second):
            raise ApiError(
                400,
                f"text_1 has {len(first)} texts and text_2 {len(second)}: give one text_1, "
                "or as many as text_2 (scored pairwise)",
                param="text_2",
            )
        if len(first) + len(second) > MAX_INPUTS:
            raise ApiError(400, f"text_1, text_2: at most {MAX_INPUTS // 2} pairs", param="text_1")
        return list(zip(first, second, strict=True))


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "list[str]", "int", "function-after[checked(), RerankRequest]"):
            continue  # the union member pydantic tried, not a field
        else:
            out += ("." if out else "") + part
    return out or "body"


def validation_error(exc: ValidationError, model: type[BaseModel]) -> ApiError:
    """The first problem pydantic found, as one line that names the field."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    where = _loc(first["loc"])
    if first["type"] == "extra_forbidden":
        valid = ", ".join(model.model_fields)
        return ApiError(400, f"{where}: unknown field; valid fields: {valid}", param=where)
    if first["type"] == "missing":
        return ApiError(400, f"{where}: required", param=where)
    # a union (str | list[str]) reports each member; say what the field takes instead
    members = [e for e in errors if _loc(e["loc"]) == where]
    if len(members) > 1 or len({_loc(e["loc"]) for e in errors}) > 1:
        annotation = model.model_fields.get(where.split("[")[0].split(".")[0])
        if annotation is not None and "list" in str(annotation.annotation):
            return ApiError(400, f"{where}: must be a string or a list of strings", param=where)
    return ApiError(400, f"{where}: {first['msg']}", param=where)
