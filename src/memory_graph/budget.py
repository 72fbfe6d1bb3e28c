"""What one memory run may spend on the model, what it spent, and how a failed call stops.

Every model call of a memory run goes through ``MeteredChatModel``, which counts calls and
tokens against the run's ``RunBudget`` and refuses calls once it is spent.

It is also where a failed call stops. trustcall (under langmem's extractors) answers any
exception raised by a model call with another "Fix the validation error" turn, so an outage,
a timeout or a budget stop raised there would go back to the model as something to fix, again
and again. Instead the wrapper records the cause in the extraction's ``CallLog`` and answers
with an empty message, which ends the extraction; ``CallLog.raise_failure`` then raises the
cause where the memory graph can act on it. Retrying 429 and 5xx with backoff is the
provider client's job (see ``models.load_chat_model``), before the error ever gets here.

Those retries are invisible from here, so the wrapper also counts the HTTP requests each call
sent (``models.counting_requests``): a call the client retried counts as one model call and
as every request it sent. The budget bounds model calls, not requests: a limit on requests
would stop a call halfway through its client's retries, and each call's requests are already
bounded by the client's ``max_retries``.
"""

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, RunnableLambda
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from memory_graph.models import counting_requests

T = TypeVar("T")


class ExtractionError(RuntimeError):
    """An extraction failed for a reason the model or its provider caused; the batch may be retried."""


class ModelCallFailed(ExtractionError):
    """The provider did not answer, after the client's own retries."""


class BudgetExceeded(ExtractionError):
    """The run spent its budget of model calls or prompt tokens."""


class UnusableOutput(ExtractionError):
    """The model answered, but nothing it answered could be used."""


@dataclass
class Usage:
    """Model calls, requests and tokens spent; tokens as the provider reported them (estimated if it did not).

    ``requests`` counts the HTTP requests sent to the provider, its client's retries included;
    where the client's requests cannot be seen (providers that are not OpenAI-compatible), a
    call that reached the model counts as one.
    """

    model_calls: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        """The usage as stored in the run's state and output."""
        return {
            "model_calls": self.model_calls,
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }

    @classmethod
    def from_dict(cls, value: dict[str, int] | None) -> "Usage":
        """The usage stored by ``as_dict`` (zero for None)."""
        return cls(**(value or {}))


@dataclass
class RunBudget:
    """The limits of one memory run, and what it used so far (shared by concurrent extractions)."""

    max_model_calls: int
    max_prompt_tokens: int
    used: Usage = field(default_factory=Usage)

    def spent(self) -> bool:
        """True once either limit is reached: no further call is made."""
        return self.used.model_calls >= self.max_model_calls or self.used.prompt_tokens >= self.max_prompt_tokens

    def describe(self) -> str:
        """What was spent against which limits, for errors and logs."""
        return (
            f"{self.used.model_calls} of {self.max_model_calls} model calls, "
            f"{self.used.prompt_tokens} of {self.max_prompt_tokens} prompt tokens"
        )


@dataclass
class CallLog:
    """Why the model calls of one extraction stopped, if they did."""

    provider_error: Exception | None = None
    over_budget: str | None = None
    unusable: list[str] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        """True once no further call of this extraction may reach the provider."""
        return self.provider_error is not None or self.over_budget is not None

    def raise_failure(self, *, nothing_extracted: bool) -> None:
        """Raise why the extraction failed, if it did; unusable answers count only if nothing came of them."""
        if self.provider_error is not None:
            error = self.provider_error
            raise ModelCallFailed(f"The model call failed: {type(error).__name__}: {error}") from error
        if self.over_budget is not None:
            raise BudgetExceeded(
                f"The memory run reached its budget ({self.over_budget}). If runs legitimately need more, "
                "raise `max_model_calls` or `max_prompt_tokens` in the memory graph's settings."
            )
        if self.unusable and nothing_extracted:
            raise UnusableOutput(f"The model's answers could not be used: {'; '.join(self.unusable[-3:])}")


def _tool_names(tools: Sequence[Any]) -> list[str]:
    return [convert_to_openai_tool(tool)["function"]["name"] for tool in tools]


def _problems(message: AIMessage, offered: Sequence[str]) -> list[str]:
    """What in an answer the extractor cannot use; trustcall drops some of it silently or loops on it."""
    problems = [
        f"a call of tool {c['name']!r}, which was not offered" for c in message.tool_calls if c["name"] not in offered
    ]
    problems += [f"tool call arguments that are not valid JSON ({c.get('error')})" for c in message.invalid_tool_calls]
    problems += [
        "a PatchDoc call without json_doc_id or without a list of patches"
        for c in message.tool_calls
        if c["name"] == "PatchDoc"
        and ("json_doc_id" not in c["args"] or not isinstance(c["args"].get("patches"), list))
    ]
    return problems


class MeteredChatModel(BaseChatModel):
    """A chat model that counts its calls against a run budget and stops cleanly (see module docstring)."""

    base: BaseChatModel
    budget: RunBudget
    log: CallLog
    bound: Runnable[LanguageModelInput, BaseMessage] | None = None
    """The base model with this binding's tools, if any."""
    offered: list[str] = Field(default_factory=list)
    force_tool_call: bool = False
    """Make every call that offers tools answer with one (``tool_choice`` "any" where the caller set none).

    trustcall leaves the first extraction's choice to the model. llama.cpp's server answers a
    free-form tool call that does not parse with a 500 (4 of 5 first profile extractions of a
    small model), while a forced call is constrained to parse; forcing is safe once the
    extractor is offered ``NothingToSave``."""

    @property
    def _llm_type(self) -> str:
        return f"metered-{self.base._llm_type}"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> RunnableBinding:
        """Bind the tools to the base model; trustcall reaches through ``.bound`` and binds again."""
        if self.force_tool_call and kwargs.get("tool_choice") is None:
            kwargs = {**kwargs, "tool_choice": "any"}
        bound = self.base.bind_tools(tools, **kwargs)
        return RunnableBinding(bound=self.model_copy(update={"bound": bound, "offered": _tool_names(tools)}), kwargs={})

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        """The base model's structured output (its own method, e.g. JSON schema), metered the same way."""
        structured = self.base.with_structured_output(schema, include_raw=True, **kwargs)

        async def call(prompt: LanguageModelInput, config: RunnableConfig) -> Any:
            if not self._admitted():
                raise BudgetExceeded(f"The memory run reached its budget ({self.log.over_budget}).")
            try:
                answer = await self._requesting(structured.ainvoke(prompt, config))
            except Exception as error:
                raise ModelCallFailed(f"The model call failed: {type(error).__name__}: {error}") from error
            answer = cast(dict[str, Any], answer)
            raw = answer["raw"]
            self._count(self.base._convert_input(prompt).to_messages(), raw if isinstance(raw, AIMessage) else None)
            if answer.get("parsed") is None:
                raise UnusableOutput(f"The model's answer did not match the schema: {answer.get('parsing_error')}")
            return answer["parsed"]

        def unsupported(prompt: LanguageModelInput) -> Any:
            raise NotImplementedError("The memory graph calls models asynchronously only.")

        return RunnableLambda(unsupported, afunc=call)

    def _admitted(self) -> bool:
        """Whether a call may go out now; counts it if so."""
        if self.log.stopped:
            return False
        if self.budget.spent():
            self.log.over_budget = self.budget.describe()
            return False
        self.budget.used.model_calls += 1
        return True

    async def _requesting(self, call: Awaitable[T]) -> T:
        """Await one admitted model call, counting the requests it sent, whether it succeeded or not.

        A client whose requests are not seen (see ``models.counting_requests``) counts as one.
        """
        with counting_requests() as sent:
            try:
                return await call
            finally:
                self.budget.used.requests += sent.sent or 1

    def _count(self, messages: Sequence[BaseMessage], answer: AIMessage | None) -> None:
        used = self.budget.used
        usage = answer.usage_metadata if answer is not None else None
        used.prompt_tokens += usage["input_tokens"] if usage else count_tokens_approximately(messages)
        used.completion_tokens += usage["output_tokens"] if usage else 0

    def _stop(self) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=""))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if not self._admitted():
            return self._stop()
        try:
            answer = await self._requesting((self.bound or self.base).ainvoke(messages, stop=stop, **kwargs))
        except Exception as error:
            # Not something the model can fix: stop here rather than let trustcall ask it to.
            self.log.provider_error = error
            return self._stop()
        message = answer if isinstance(answer, AIMessage) else AIMessage(content=answer.content)
        self._count(messages, message)
        self.log.unusable += _problems(message, self.offered)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("The memory graph calls models asynchronously only.")
