"""What a stream reports, chunk by chunk: the request argument that makes OpenAI Chat report usage at all, and the
accumulator that keeps each provider's last word on the usage (``streams.wrap_stream`` feeds it every chunk)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .extract import usage_from_response
from .extract._common import get, get2
from .extract.anthropic import PROVIDER as ANTHROPIC
from .extract.anthropic import AnthropicUsage


def with_stream_usage(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of Chat Completions arguments that asks OpenAI for the usage of a stream.

    ``client.chat.completions.create(**with_stream_usage(kwargs))``: when ``stream=True`` and the caller did not
    set ``stream_options["include_usage"]``, it is set to True (other ``stream_options`` are kept); a caller's
    own ``include_usage`` (even False) is kept as given. Without ``stream=True`` nothing is added, because OpenAI
    refuses ``stream_options`` on a request that does not stream. The Responses API always reports usage and
    takes no such option.
    """
    out = dict(kwargs)
    if out.get("stream") is not True:
        return out
    options = out.get("stream_options")
    if isinstance(options, Mapping):
        if "include_usage" not in options:
            out["stream_options"] = {**options, "include_usage": True}
    elif not options:  # absent, None, or the SDK's NOT_GIVEN / omit sentinels (falsy)
        out["stream_options"] = {"include_usage": True}
    return out


class UsageAccumulator:
    """Keeps what a stream's chunks say about usage; converts it once, in :meth:`fields`.

    Per chunk it only keeps a reference (or, for Anthropic, a few ints): the conversion runs once at the end.
    """

    __slots__ = ("_anthropic", "_last", "_model", "_named", "_provider", "_seen", "add")

    def __init__(self, provider: str | None = None) -> None:
        self._provider = provider
        self._last: Any = None  # the chunk (or Responses' response) whose usage is the final one so far
        self._seen: Any = None  # the first such object naming a model, usage or not: it names model and provider
        self._named = False  # whether _seen names its model (Azure's first chunk names none: look further)
        self._model: Any = None  # Anthropic's, from message_start
        self._anthropic: AnthropicUsage | None = None
        self.add: Callable[[Any], None] = self._first

    def _first(self, chunk: Any) -> None:
        """Learn the stream's provider from its first chunk that shows it, then read every chunk with that one."""
        if get(chunk, "object") == "chat.completion.chunk":
            self.add = self._openai_chat
        else:
            kind = get(chunk, "type")
            if kind == "chunk":  # the SDK's chat.completions.stream() helper: each raw chunk is an event's .chunk
                self.add = self._openai_chat_helper
            elif isinstance(kind, str) and kind.startswith("response."):
                self.add = self._openai_responses
            elif isinstance(kind, str) and kind.startswith(("message_", "content_block_")):
                self.add = self._anthropic_event
            elif get2(chunk, "usage_metadata", "usageMetadata") is not None or get(chunk, "candidates") is not None:
                self.add = self._gemini
            else:
                return  # a ping or an unknown event: look again at the next chunk
        self.add(chunk)

    def _saw(self, source: Any) -> None:
        """Keep ``source`` to name the call should no usage come, until one such object names its model."""
        self._seen = source
        self._named = bool(_model_of(source))

    def _openai_chat(self, chunk: Any) -> None:
        if get(chunk, "usage") is not None:
            self._last = chunk
        elif not self._named:
            self._saw(chunk)

    def _openai_chat_helper(self, event: Any) -> None:
        if get(event, "type") == "chunk":
            self._openai_chat(get(event, "chunk"))

    def _openai_responses(self, event: Any) -> None:
        response = get(event, "response")
        if response is not None:
            if get(response, "usage") is not None:
                self._last = response
            elif not self._named:
                self._saw(response)

    def _anthropic_event(self, event: Any) -> None:
        kind = get(event, "type")
        if kind == "message_start":
            message = get(event, "message")
            self._model = get(message, "model")
            self._anthropic = AnthropicUsage.read(get(message, "usage"))
        elif kind == "message_delta":
            if self._anthropic is None:
                self._anthropic = AnthropicUsage()
            self._anthropic.update(get(event, "usage"))  # cumulative: overwrite, never add

    def _gemini(self, chunk: Any) -> None:
        if get2(chunk, "usage_metadata", "usageMetadata") is not None:
            self._last = chunk
        elif not self._named:
            self._saw(chunk)

    def fields(self) -> dict[str, Any]:
        """The event fields reported so far (model and provider alone when no usage arrived)."""
        if self._anthropic is not None:
            fields: dict[str, Any] = {}
            if isinstance(self._model, str) and self._model:
                fields["model"] = self._model
            fields["provider"] = self._provider or ANTHROPIC
            return self._anthropic.fields(fields)
        source = self._last if self._last is not None else self._seen
        if source is not None:
            return usage_from_response(source, self._provider)
        return {"provider": self._provider} if self._provider else {}

    @property
    def reported(self) -> bool:
        """Whether any chunk carried usage (an OpenAI Chat stream without ``include_usage`` has none)."""
        return self._anthropic is not None or self._last is not None

    def named(self) -> dict[str, Any]:
        """The model (the ledger requires one) and provider the chunks named: what is left if :meth:`fields` fails."""
        fields: dict[str, Any] = {"provider": self._provider} if self._provider else {}
        model = self._model or _model_of(self._last) or _model_of(self._seen)
        if isinstance(model, str) and model:
            fields["model"] = model
        return fields


def _model_of(source: Any) -> Any:
    return get(source, "model") or get2(source, "model_version", "modelVersion")  # Gemini: model_version
