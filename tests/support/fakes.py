"""In-process stand-ins at the model boundary: a scripted chat model and hashed embeddings."""

import uuid
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableBinding
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from tests.support.fake_openai import embed_text


class HashedEmbeddings(Embeddings):
    """The fake OpenAI server's embeddings, in-process, counting the texts embedded."""

    def __init__(self, dims: int = 1536) -> None:
        self.dims = dims
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed texts."""
        self.calls += len(texts)
        return [embed_text(text, self.dims) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        """Embed one query."""
        return self.embed_documents([text])[0]


Responder = Callable[[Sequence[BaseMessage], list[str]], AIMessage]


def tool_call(tool_name: str, /, **args: Any) -> AIMessage:
    """An AIMessage calling one tool."""
    return AIMessage(content="", tool_calls=[{"name": tool_name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}"}])


class ScriptedChatModel(BaseChatModel):
    """A chat model whose answer is computed by ``respond(messages, offered_tool_names)``.

    Every call is recorded in ``calls`` (messages and tool names) so tests can assert what
    reached the model, e.g. that a remembered fact was in the prompt.
    """

    respond: Responder
    calls: list[tuple[list[BaseMessage], list[str]]] = Field(default_factory=list)
    tool_names: list[str] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> RunnableBinding:
        """Remember which tools are offered; the script decides what to call.

        Returns a binding like real models do (trustcall reaches through ``.bound``).
        """
        names = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
        return RunnableBinding(bound=self.model_copy(update={"tool_names": names}), kwargs={})

    def with_structured_output(self, schema: Any, *, include_raw: bool = False, **kwargs: Any) -> Any:
        """Structured output through a forced tool call, whatever ``method`` the caller asks for."""
        return super().with_structured_output(schema, include_raw=include_raw)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.calls.append((list(messages), list(self.tool_names)))
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages, self.tool_names))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, None, **kwargs)
