"""RoleLastContext keeps the current turn's tool exchange after the role instruction."""

from __future__ import annotations

from autogen_core import FunctionCall
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    SystemMessage,
    UserMessage,
)

from agents import RoleLastContext


async def test_turns_render_as_role_then_reply_and_the_own_role_comes_last() -> None:
    roles = {"guide": "You suggest places.", "clock": "You tell the time."}
    context = RoleLastContext(
        UnboundedChatCompletionContext(), "You tell the time.", name="clock", roles=roles
    )
    await context.add_message(UserMessage(content="What time is it in Seoul?", source="user"))
    await context.add_message(UserMessage(content="Visit Gyeongbokgung.", source="guide"))
    await context.add_message(AssistantMessage(content="It was noon.", source="clock"))
    await context.add_message(UserMessage(content="And now?", source="user"))
    assert await context.get_messages() == [
        UserMessage(content="What time is it in Seoul?", source="user"),
        SystemMessage(content="You suggest places."),
        AssistantMessage(content="Visit Gyeongbokgung.", source="guide"),
        SystemMessage(content="You tell the time."),
        AssistantMessage(content="It was noon.", source="clock"),
        UserMessage(content="And now?", source="user"),
        SystemMessage(content="You tell the time."),
    ]


async def test_the_current_tool_exchange_follows_the_own_role() -> None:
    context = RoleLastContext(UnboundedChatCompletionContext(), "You tell the time.", name="clock", roles={})
    await context.add_message(UserMessage(content="What time is it in Seoul?", source="user"))
    call = FunctionCall(id="1", name="get_current_time", arguments='{"timezone": "Asia/Seoul"}')
    await context.add_message(AssistantMessage(content=[call], source="clock"))
    result = FunctionExecutionResult(content="12:00", call_id="1", name="get_current_time", is_error=False)
    await context.add_message(FunctionExecutionResultMessage(content=[result]))

    messages = await context.get_messages()
    assert [type(m).__name__ for m in messages] == [
        "UserMessage",
        "SystemMessage",
        "AssistantMessage",
        "FunctionExecutionResultMessage",
    ]
    state = await context.save_state()
    restored = RoleLastContext(UnboundedChatCompletionContext(), "You tell the time.", name="clock", roles={})
    await restored.load_state(state)
    assert await restored.get_messages() == messages
