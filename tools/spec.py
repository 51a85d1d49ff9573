"""YAML model of the `tools` section: python callables agents may call."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PythonToolSpec(BaseModel):
    """A python function wrapped as a tool; its schema comes from its signature and docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["python"] = "python"
    function: str = Field(pattern=r"^[\w.]+:[\w.]+$", description="Import path, `package.module:function`.")
    description: str | None = Field(default=None, description="Defaults to the function's docstring.")
