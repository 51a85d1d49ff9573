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


async def test_instruction_goes_after_the_transcript_and_before_the_tool_exchange() -> None:
    context = RoleLastContext(UnboundedChatCompletionContext(), "You tell the time.")
    await context.add_message(UserMessage(content="What time is it in Seoul?", source="user"))
    await context.add_message(AssistantMessage(content="Earlier answer.", source="clock"))
    call = FunctionCall(id="1", name="get_current_time", arguments='{"timezone": "Asia/Seoul"}')
    await context.add_message(AssistantMessage(content=[call], source="clock"))
    result = FunctionExecutionResult(content="12:00", call_id="1", name="get_current_time", is_error=False)
    await context.add_message(FunctionExecutionResultMessage(content=[result]))

    messages = await context.get_messages()
    assert [type(m).__name__ for m in messages] == [
        "UserMessage",
        "UserMessage",
        "SystemMessage",
        "AssistantMessage",
        "FunctionExecutionResultMessage",
    ]
    assert messages[0].content == "[user]\nWhat time is it in Seoul?"
    assert messages[1].content == "[clock]\nEarlier answer."  # own words, shown like everyone's
    assert isinstance(messages[2], SystemMessage) and messages[2].content == "You tell the time."
    state = await context.save_state()
    restored = RoleLastContext(UnboundedChatCompletionContext(), "You tell the time.")
    await restored.load_state(state)
    assert await restored.get_messages() == messages
