"""Speaker selection whose model answer can only be one of the allowed names.

AutoGen's SelectorGroupChat asks the model in free text, searches the reply for a name,
retries with feedback and after `max_selector_attempts` falls back to the previous speaker.
A server that decodes under a grammar cannot answer anything but a name from the list, so
here the same prompt is sent constrained to exactly the candidates:

- llama.cpp: a GBNF `grammar` whose only sentences are the names. The model was asked for
  the bare name, so its own first choice of token is nearly always allowed and llama.cpp
  skips the costly pass of the grammar over the whole vocabulary (a JSON schema makes it
  start with `{"`, against the model's wish, and cost several times more per pick on CPU).
- any other server (vLLM, OpenAI, ...): OpenAI's `response_format` with a strict JSON
  schema `{"speaker": <enum of the names>}`, which vLLM's structured outputs enforce.

The class plugs into SelectorGroupChat as its `selector_func` (the pick) and
`candidate_func` (what AutoGen's own selection may choose from if the constrained call
fails), so AutoGen's parsing stays the fallback. `SpeakerCandidates` is that candidate
function alone, for an unconstrained team whose spec has `speaks_after`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage
from autogen_core.models import ChatCompletionClient, ModelFamily, SystemMessage, UserMessage

logger = logging.getLogger(__name__)

# Names are identifiers of at most 64 characters; the JSON around one is a few tokens more.
_MAX_TOKENS = 96


@dataclass(frozen=True)
class SelectorPick:
    """One constrained selection: what could be picked, what the model said, what was taken."""

    candidates: tuple[str, ...]
    answer: str
    speaker: str | None  # None: the answer led nowhere and AutoGen's own selection ran
    seconds: float


def choice_format(names: Sequence[str]) -> dict[str, Any]:
    """An OpenAI `response_format` that admits exactly `{"speaker": <one of names>}`."""
    return {
        "type": "json_schema",
        "json_schema": {
            "name": "next_speaker",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"speaker": {"type": "string", "enum": list(names)}},
                "required": ["speaker"],
                "additionalProperties": False,
            },
        },
    }


def choice_grammar(names: Sequence[str]) -> str:
    """A llama.cpp GBNF grammar that admits exactly one of `names` (identifiers: no escaping)."""
    return "root ::= " + " | ".join(json.dumps(n) for n in names)


def _history(thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
    # as AutoGen renders it: "source: text", one blank line between messages
    lines = [
        f"{m.source}: {m.to_model_text()}".rstrip() + "\n\n" for m in thread if isinstance(m, BaseChatMessage)
    ]
    return "\n".join(lines)


class SpeakerCandidates:
    """Who may speak next: every participant, less the previous speaker unless repeats are
    allowed, less any whose `speaks_after` agents have not all spoken since the latest user
    message (if that leaves nobody, the rule is dropped for this pick rather than stall)."""

    def __init__(
        self,
        names: Sequence[str],
        *,
        allow_repeated_speaker: bool,
        speaks_after: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.names = list(names)
        self._allow_repeat = allow_repeated_speaker
        self._after = {name: set(before) for name, before in (speaks_after or {}).items() if before}

    def __call__(self, thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> list[str]:
        messages = [m for m in thread if isinstance(m, BaseChatMessage)]
        last_user = max((i for i, m in enumerate(messages) if m.source == "user"), default=-1)
        spoken = {m.source for m in messages[last_user + 1 :]}
        previous = next((m.source for m in reversed(messages) if m.source in self.names), None)
        allowed = self.names if self._allow_repeat else [n for n in self.names if n != previous]
        allowed = allowed or list(self.names)
        ready = [n for n in allowed if self._after.get(n, set()) <= spoken]
        return ready or allowed


class ConstrainedSelector:
    """`selector_func` and `candidate_func` for a SelectorGroupChat over `participants`."""

    def __init__(
        self,
        client: ChatCompletionClient,
        *,
        participants: Sequence[tuple[str, str]],  # (name, description), in team order
        prompt: str,
        candidates: SpeakerCandidates,
        engine: str | None = None,  # "llamacpp": a GBNF grammar; otherwise a JSON schema
    ) -> None:
        self._client = client
        self._grammar = engine == "llamacpp"
        self._roles = "\n".join(re.sub(r"\s+", " ", f"{n}: {d}").strip() for n, d in participants)
        self._prompt = prompt
        self.candidates = candidates
        self.picks: list[SelectorPick] = []

    async def select(self, thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> str | None:
        candidates = self.candidates(thread)
        if len(candidates) == 1:
            return candidates[0]
        text = self._prompt.format(roles=self._roles, participants=str(candidates), history=_history(thread))
        message = (
            SystemMessage(content=text)
            if ModelFamily.is_openai(self._client.model_info["family"])
            else UserMessage(content=text, source="user")
        )
        started = time.perf_counter()
        answer = ""
        speaker: str | None = None
        # `extra_body` replaces the client's, so the pick goes without the engine's repetition
        # penalty: every name is in the prompt, and a penalty there only adds noise to the choice
        constraint: dict[str, Any] = (
            {"extra_body": {"grammar": choice_grammar(candidates)}}
            if self._grammar
            else {"response_format": choice_format(candidates), "extra_body": {}}
        )
        try:
            result = await self._client.create(
                [message], extra_create_args={**constraint, "max_tokens": _MAX_TOKENS}
            )
            answer = result.content if isinstance(result.content, str) else str(result.content)
            picked = answer.strip() if self._grammar else json.loads(answer).get("speaker")
            speaker = picked if picked in candidates else None
        except (ValueError, AttributeError):
            pass  # not the JSON asked for: the server ignored the schema
        except Exception as exc:  # e.g. a server that rejects response_format: AutoGen's way then
            answer = f"{type(exc).__name__}: {exc}"
        pick = SelectorPick(tuple(candidates), answer, speaker, round(time.perf_counter() - started, 3))
        self.picks.append(pick)
        if speaker is None:
            logger.warning(
                "the constrained speaker selection gave %r (candidates %s); using AutoGen's selection",
                answer[:200],
                ", ".join(candidates),
                extra={"selector_pick": pick},
            )
        else:
            logger.debug("selected %s from %s", speaker, ", ".join(candidates), extra={"selector_pick": pick})
        return speaker
