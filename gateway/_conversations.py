"""Conversations (the Responses API's saved state): a conversation is a thread of the shared
database, its items are the thread's messages, each assistant message naming its agent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response as HTTPResponse
from openai.types.conversations import Conversation, ConversationDeletedResource, ConversationItemList
from openai.types.conversations import Message as ConversationMessage
from openai.types.responses import ResponseInputText, ResponseOutputText

from ._auth import Caller
from ._errors import GatewayError
from ._responses_schemas import (
    ConversationCreate,
    ConversationUpdate,
    InputItem,
    ItemsCreate,
    MessageItem,
    ReasoningItem,
    item_text,
)
from ._service import Gateway, caller, gateway
from ._store import MessageRow, ThreadRow

__all__ = ["add_items", "conversation_row", "idle", "router", "turns_of"]

router = APIRouter(prefix="/v1/conversations")

GatewayDep = Annotated[Gateway, Depends(gateway)]
CallerDep = Annotated[Caller, Depends(caller)]

Turn = tuple[Literal["user", "assistant"], str, str | None]  # role, text, agent


def _json(model: Any) -> HTTPResponse:
    return HTTPResponse(model.model_dump_json(exclude_unset=True), media_type="application/json")


def turns_of(items: Sequence[InputItem], param: str) -> tuple[list[Turn], list[str]]:
    """Messages and echoed reasoning items as (role, text, agent) turns; system and developer
    messages as instructions. Echoed tool calls and outputs are dropped: the agents' messages
    already carry what the tools returned."""
    turns: list[Turn] = []
    instructions: list[str] = []
    for item in items:
        if isinstance(item, ReasoningItem):
            turns.append(("assistant", item_text(item), item.agent))
        elif isinstance(item, MessageItem):
            text = item_text(item)
            if item.role in ("system", "developer"):
                if text.strip():
                    instructions.append(text)
            elif text:
                turns.append(("user" if item.role == "user" else "assistant", text, item.agent))
    if not turns and not instructions:
        raise GatewayError(400, f"{param} has no message with text", "invalid_input", param=param)
    return turns, instructions


def conversation_out(row: ThreadRow) -> Conversation:
    return Conversation(id=row.id, object="conversation", created_at=row.created_at, metadata=row.metadata)


def item_out(row: MessageRow) -> ConversationMessage:
    content: Any = (
        ResponseInputText(type="input_text", text=row.content)
        if row.role == "user"
        else ResponseOutputText(type="output_text", text=row.content, annotations=[])
    )
    # `agent` (who wrote it) and `response_id` are extra fields: the SDK keeps extras
    extra: dict[str, Any] = {"agent": row.agent, "response_id": row.run_id}
    return ConversationMessage(
        id=row.id,
        type="message",
        role=row.role,
        status="completed",
        content=[content],
        **extra,
    )


def _items(rows: list[MessageRow], has_more: bool) -> ConversationItemList:
    data: list[Any] = [item_out(r) for r in rows]
    return ConversationItemList(
        object="list",
        data=data,
        first_id=rows[0].id if rows else "",
        last_id=rows[-1].id if rows else "",
        has_more=has_more,
    )


async def conversation_row(
    gw: Gateway, conversation_id: str, who: Caller, param: str | None = None
) -> ThreadRow:
    row = await gw.store.get_thread(conversation_id)
    if row is None or row.key_id != who.key_id:  # another key's conversation does not exist for this one
        raise GatewayError(
            404, f"Conversation with id '{conversation_id}' not found.", "conversation_not_found", param=param
        )
    return row


async def idle(gw: Gateway, thread_id: str) -> None:
    """409 while a response (or thread run) of this conversation is active."""
    active = await gw.store.active_run(thread_id)
    if active is not None:
        raise GatewayError(
            409,
            f"Conversation {thread_id} already has an active response {active.id}; wait for it or cancel it.",
            "conversation_locked",
            param="conversation",
        )


async def add_items(gw: Gateway, thread_id: str, turns: list[Turn]) -> list[MessageRow]:
    return [
        await gw.store.add_message(
            thread_id, role, text, agent=agent, metadata={"agent": agent} if agent else {}
        )
        for role, text, agent in turns
    ]


def _no_instructions(instructions: list[str]) -> None:
    if instructions:
        raise GatewayError(
            400,
            "a conversation keeps user and assistant messages; give system or developer text as a"
            " response's `instructions`",
            "invalid_input",
            param="items",
        )


@router.post("")
async def create_conversation(body: ConversationCreate, gw: GatewayDep, who: CallerDep) -> HTTPResponse:
    items = body.items or []
    if len(items) > gw.config.max_messages:
        raise GatewayError(
            400,
            f"too many items: {len(items)} > {gw.config.max_messages}",
            "too_many_messages",
            param="items",
        )
    turns, instructions = turns_of(items, "items") if items else ([], [])
    _no_instructions(instructions)
    row = await gw.store.create_thread(who.key_id, body.metadata or {}, prefix="conv")
    await add_items(gw, row.id, turns)
    return _json(conversation_out(row))


@router.get("/{conversation_id}")
async def get_conversation(conversation_id: str, gw: GatewayDep, who: CallerDep) -> HTTPResponse:
    return _json(conversation_out(await conversation_row(gw, conversation_id, who)))


@router.post("/{conversation_id}")
async def update_conversation(
    conversation_id: str, body: ConversationUpdate, gw: GatewayDep, who: CallerDep
) -> HTTPResponse:
    await conversation_row(gw, conversation_id, who)
    await gw.store.update_thread_metadata(conversation_id, body.metadata)
    return _json(conversation_out(await conversation_row(gw, conversation_id, who)))


@router.delete("/{conversation_id}")
async def delete_conversation(conversation_id: str, gw: GatewayDep, who: CallerDep) -> HTTPResponse:
    await conversation_row(gw, conversation_id, who)
    await idle(gw, conversation_id)
    await gw.store.delete_thread(conversation_id)
    return _json(ConversationDeletedResource(id=conversation_id, object="conversation.deleted", deleted=True))


@router.get("/{conversation_id}/items")
async def list_items(
    conversation_id: str,
    gw: GatewayDep,
    who: CallerDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    after: str | None = None,
    include: Annotated[list[str] | None, Query()] = None,
) -> HTTPResponse:
    await conversation_row(gw, conversation_id, who)
    rows = await gw.store.list_messages(conversation_id, limit=limit + 1, order=order, after=after)
    return _json(_items(rows[:limit], len(rows) > limit))


@router.post("/{conversation_id}/items")
async def create_items(
    conversation_id: str,
    body: ItemsCreate,
    gw: GatewayDep,
    who: CallerDep,
    include: Annotated[list[str] | None, Query()] = None,
) -> HTTPResponse:
    await conversation_row(gw, conversation_id, who)
    await idle(gw, conversation_id)
    if len(body.items) > gw.config.max_messages:
        raise GatewayError(
            400, f"too many items: {len(body.items)} > {gw.config.max_messages}", "too_many_messages"
        )
    turns, instructions = turns_of(body.items, "items")
    _no_instructions(instructions)
    return _json(_items(await add_items(gw, conversation_id, turns), False))


@router.get("/{conversation_id}/items/{item_id}")
async def get_item(conversation_id: str, item_id: str, gw: GatewayDep, who: CallerDep) -> HTTPResponse:
    await conversation_row(gw, conversation_id, who)
    row = await gw.store.get_message(conversation_id, item_id)
    if row is None:
        raise GatewayError(404, f"Item with id '{item_id}' not found.", "item_not_found")
    return _json(item_out(row))
