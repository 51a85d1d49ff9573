"""The `knowledge:` section at run time: open each knowledge base an agent names as a tool,
and `python -m scenarios index` to build or refresh them all."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from agents import ResolvedModel
from mcp_servers.search import (
    KnowledgeBase,
    KnowledgeError,
    KnowledgeSpec,
    ModelTarget,
    knowledge_tool,
    open_knowledge,
)
from scenarios._loader import LoadedSpec

log = logging.getLogger(__name__)

AUTO = "auto"


def embedding_target(
    loaded: LoadedSpec,
    knowledge: KnowledgeSpec,
    resolved: Mapping[str, ResolvedModel],
    base_override: str | None = None,
    key_override: str | None = None,
) -> ModelTarget:
    """Where a knowledge base embeds: its `embedding_model` entry, else the chat models' server.

    An `auto` URL reuses the server the scenario already resolved for `auto`, so one run never
    starts a second bundled server.
    """
    spec = loaded.spec
    auto_url = next(
        (r.base_url for n, r in resolved.items() if spec.models[n].base_url.strip() == AUTO), None
    )
    if knowledge.embedding_model is None:
        first = spec.used_model_names()[0]
        if first in resolved:
            return ModelTarget(resolved[first].base_url, AUTO, resolved[first].api_key)
        model_spec = spec.models[first]
        return ModelTarget(base_override or model_spec.base_url, AUTO, key_override or model_spec.api_key)
    model_spec = spec.models[knowledge.embedding_model]
    base = base_override or model_spec.base_url
    if base.strip() == AUTO and auto_url:
        base = auto_url
    return ModelTarget(base, model_spec.model, key_override or model_spec.api_key)


def reindex_hint(loaded: LoadedSpec) -> str:
    return f"python -m scenarios index {loaded.file} --rebuild"


async def open_knowledge_tools(
    loaded: LoadedSpec,
    resolved: Mapping[str, ResolvedModel],
    overrides: tuple[str | None, str | None, str | None],
    stack: AsyncExitStack,
) -> dict[str, Any]:
    """search_NAME tools for the knowledge bases agents name; indexes one on first use."""
    spec = loaded.spec
    base_override, _, key_override = overrides
    tools: dict[str, Any] = {}
    for name, knowledge in spec.knowledge.items():
        if not any(name in agent.tools for agent in spec.agents):
            continue
        target = embedding_target(loaded, knowledge, resolved, base_override, key_override)
        kb = await _open(loaded, name, knowledge, target, stack, index=None)
        tools[name] = knowledge_tool(kb, knowledge.description)
    return tools


async def _open(
    loaded: LoadedSpec,
    name: str,
    knowledge: KnowledgeSpec,
    target: ModelTarget,
    stack: AsyncExitStack,
    *,
    index: bool | None,
    progress: Any = None,
) -> KnowledgeBase:
    try:
        return await stack.enter_async_context(
            open_knowledge(
                name,
                knowledge,
                target,
                base_dir=None,
                index=index,
                progress=progress,
                reindex_hint=reindex_hint(loaded),
            )
        )
    except KnowledgeError as exc:
        raise loaded.error_at(("knowledge", name), f"knowledge {name!r}: {exc}", at_key=True) from exc


async def index_scenario(
    loaded: LoadedSpec,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    rebuild: bool = False,
    console: Any = None,
) -> int:
    """Build or refresh every knowledge base the scenario declares, with a progress bar."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = console or Console(stderr=True, highlight=False)
    spec = loaded.spec
    if not spec.knowledge:
        console.print(f"{loaded.file}: no `knowledge:` section, nothing to index")
        return 0
    for name, knowledge in spec.knowledge.items():
        target = embedding_target(loaded, knowledge, {}, base_url, api_key)
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("units"),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as bar:
            task = bar.add_task(f"{name}: embedding", total=None, rate="")

            def progress(done: int, total: int, task: Any = task, bar: Progress = bar) -> None:
                elapsed = bar.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:.1f}/s" if elapsed > 0 and done else ""
                bar.update(task, completed=done, total=total, rate=rate)

            async with AsyncExitStack() as stack:
                kb = await _open(loaded, name, knowledge, target, stack, index=False)
                try:
                    report = await kb.refresh(progress, rebuild=rebuild)
                except KnowledgeError as exc:
                    raise loaded.error_at(
                        ("knowledge", name), f"knowledge {name!r}: {exc}", at_key=True
                    ) from exc
                location = kb.store.location
        console.print(f"{name}: {report.summary()} ({location})")
    return 0
