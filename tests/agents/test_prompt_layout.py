"""The shared-prefix layout: every agent's prompt extends the one before it."""

from __future__ import annotations

from typing import Any

import pytest

from scenarios import load_scenario
from serving.testing import Reply, ScriptedModelServer, message_text


def _rendered(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(m["role"], message_text(m)) for m in messages]


QWEN = "qwen2.5-coder-1.5b-instruct-q4_k_m"  # its template takes system messages anywhere


@pytest.mark.parametrize(
    ("layout", "model", "role"),
    [
        ("shared_prefix", QWEN, "system"),
        ("shared_prefix", "one-system-message-only", "user"),
        ("system_first", QWEN, "system"),
    ],
)
async def test_layouts_put_the_role_instruction_where_they_say(layout: str, model: str, role: str) -> None:
    replies = [Reply.text("plan"), Reply.text("local"), Reply.text("phrases"), Reply.text("final TERMINATE")]
    async with ScriptedModelServer(replies, model=model) as server:
        scenario = load_scenario("travel_planning", base_url=server.base_url, model=server.model)
        scenario.spec = scenario.spec.model_copy(update={"prompt_layout": layout})
        async with scenario:
            await scenario.run()
    server.assert_complete()  # every scripted reply was used, no more
    prompts = [_rendered(r["messages"]) for r in server.requests]
    assert len(prompts) == 4
    if layout == "system_first":
        assert all(p[0][0] == "system" and "system" not in [r for r, _ in p[1:]] for p in prompts)
        return
    assert prompts[0] == [("user", "Plan a 3 day trip to Nepal."), (role, prompts[0][1][1])]
    assert "trip planner" in prompts[0][1][1] and "final travel plan" in prompts[3][-1][1]
    # each prompt is the previous prompt, the reply generated for it, and the next role:
    # one growing prefix the server's prompt cache already holds
    for before, after, reply in zip(prompts, prompts[1:], ["plan", "local", "phrases"], strict=False):
        assert after[: len(before)] == before
        assert after[len(before)] == ("assistant", reply)
        assert [r for r, _ in after[len(before) + 1 :]] == [role]


async def test_profile_default_layout_is_used_for_a_known_model() -> None:
    from serving import model_info_for

    lookup = model_info_for("qwen2.5-coder-1.5b-instruct-q4_k_m")
    assert lookup.known and lookup.prompt_layout == "shared_prefix"
    replies = [Reply.text("a"), Reply.text("b"), Reply.text("c"), Reply.text("d")]
    async with ScriptedModelServer(replies, model="qwen2.5-coder-1.5b-instruct-q4_k_m") as server:
        async with load_scenario("travel_planning", base_url=server.base_url, model="auto") as scenario:
            assert scenario.endpoints["default"].model == "qwen2.5-coder-1.5b-instruct-q4_k_m"
            await scenario.run()
    server.assert_complete()  # every scripted reply was used, no more
    assert server.requests[0]["messages"][-1]["role"] == "system"
