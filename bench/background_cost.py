"""Prompt tokens and model calls the memory graph spends on a scripted 100-turn conversation.

A deterministic 100-turn conversation (200 messages with ids: a 15-40 word user message with
a fact every third turn, and an assistant reply) is handed to the real ``memory_graph``
after every 5th turn, 20 runs in all, in two modes on fresh in-memory stores:

* ours: the graph as shipped. Its cursor (in the store) makes each run send only the new
  messages, plus ``overlap_messages`` already-seen ones, to the model.
* template: what langchain-ai/memory-template does, every run extracting from ALL messages
  so far in one call. Emulated with the same graph by deleting the cursor item before each
  run and passing ``max_messages_per_batch=200``.

The chat model is a ``ScriptedChatModel``: the extraction call (tools include ``Memory``)
answers with one ``Memory`` call about the newest user message; the profile call creates a
profile once (``UserProfile``) and afterwards (``PatchDoc``) answers without tool calls.
Prompt tokens are estimated as the characters of the messages sent to the model divided by
4; tool schemas are not counted (they are the same in both modes).
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langgraph.store.memory import InMemoryStore
from tests.support.fakes import HashedEmbeddings, ScriptedChatModel, tool_call

import memory_graph.graph
from bench import Section, progress
from memory.records import cursor_namespace
from memory_graph.context import MemoryContext

USER_ID = "u"
CHAT_THREAD_ID = "bench"
TURNS = 100
EVERY = 5
FACT_EVERY = 3

_FACTS = [
    "By the way, my name is Sam Okafor, but everyone at work just calls me Sammy, so feel free to do the same.",
    "I moved to Lisbon last spring for a new job at a small climate startup, and honestly I am still "
    "learning Portuguese, which makes ordering at the local bakery an adventure every single morning.",
    "Just so you know, I am allergic to peanuts and shellfish, so please never suggest recipes that use them.",
    "My sister Maria is getting married in September in Porto, and I promised to give a short speech at "
    "the dinner, even though speaking in front of more than ten people makes me really nervous.",
    "I usually prefer short answers with bullet points, because I read most of your replies on my phone.",
    "I have been training for a half marathon in October and I try to run four times a week before work, "
    "usually along the river, although my left knee has started complaining on the longer runs lately.",
    "My daughter Lena turns seven next month and she is completely obsessed with dinosaurs and volcanoes.",
    "I work as a data engineer, mostly writing Python and SQL, and I am trying to learn Rust in my spare time.",
    "I am vegetarian since about five years ago, although I still eat eggs and cheese now and then.",
    "We adopted a rescue greyhound called Biscuit in January, and he is terrified of the washing machine.",
    "I am in the Lisbon timezone, so anything you schedule for me should use Western European time please.",
    "My partner Joao is a nurse who works night shifts, so our weekends are often split in strange ways.",
    "I play jazz piano in a small amateur band with three friends from my old job, and we have our first "
    "real paid gig at a local bar in June, so I am practising every evening after dinner.",
    "I am saving up to buy an electric cargo bike so that I can take Lena to school without the car.",
    "I really dislike long phone calls, so whenever possible I would rather handle things by email or chat.",
    "My mother lives alone in Lagos and I call her every Sunday evening, which is a fixed point in my week.",
    "I started a small balcony garden this year with tomatoes, basil and chillies, and the chillies are thriving.",
    "I want to read more fiction this year, especially science fiction by authors I have not read before.",
    "I get migraines when I sleep badly, so I try to keep my evenings calm and avoid screens after ten.",
    "Our team switched to a four-day week in March, and I now keep Fridays for family and long runs.",
]
_REQUESTS = [
    "Can you explain how compound interest works when the rate changes every year, using a simple example?",
    "What is a good way to structure a short wedding speech so that it is funny but still heartfelt?",
    "Could you suggest three quick weeknight dinners that take less than thirty minutes to prepare?",
    "How do I write a SQL query that returns the second highest salary in each department of a table?",
    "What are some gentle stretches I can do after a long run to avoid stiffness the next morning?",
    "Can you summarise the main differences between ownership in Rust and garbage collection in Python?",
    "Please give me a simple plan to practise Portuguese for fifteen minutes every day on the train.",
    "Which board games work well for a seven year old and two adults on a rainy Sunday afternoon?",
    "How can I keep a greyhound calm during fireworks, and is there anything I should buy in advance?",
    "What should I check before buying a second-hand electric bike from someone I found online?",
    "Could you help me draft a polite but firm email asking my landlord to fix the heating before winter "
    "starts? I already asked twice in October and he keeps promising to send someone next week.",
    "What is the difference between a Roth account and a traditional retirement account, in short?",
    "Give me a few ideas for a dinosaur themed birthday party that does not cost a fortune please.",
    "How do chord voicings in jazz piano differ from the basic triads I learned as a child?",
    "Can you recommend some science fiction novels with optimistic views of the future of cities?",
    "What are good habits to reduce screen time in the evening without feeling like I miss out?",
    "Explain how to grow chillies on a balcony, including watering, sunlight and when to harvest them.",
    "How should I prepare in the week before a half marathon, in terms of food, sleep and training, if I "
    "also have a busy week at work and probably cannot sleep more than seven hours a night?",
]
_SMALL_TALK = [
    "Thanks, that was really helpful, I will try it tonight and let you know how it goes tomorrow.",
    "Haha, fair enough. It has been a long day and my brain is a bit slow right now, sorry about that.",
    "Okay, that makes sense now. Let me think about it for a while before I decide anything final.",
    "Interesting, I never thought about it that way before, but it sounds reasonable enough to me.",
]
_REPLIES = [
    "Sure. Here is a short answer with the key points first, followed by a couple of practical tips "
    "you can apply right away. Let me know if you would like more detail on any part of it.",
    "Good question. In short, it depends on a few factors, but the simplest approach is usually the "
    "best starting point. I have listed the main steps below so that you can follow them easily.",
    "Thanks for telling me, I will keep that in mind for future suggestions. Is there anything "
    "specific you would like help with right now, or should we continue where we left off?",
    "Here are three options, ordered from the quickest to the most involved. Each one should fit "
    "into a normal evening, and none of them needs special equipment or ingredients.",
    "That sounds like a great plan. A small tip: write down what worked and what did not after each "
    "attempt, because it makes the next step much easier to choose.",
]


def conversation(turns: int = TURNS, seed: int = 11) -> list[AnyMessage]:
    """``turns`` user/assistant exchanges with ids ``h{i}``/``a{i}``; a fact every third turn."""
    rng = random.Random(seed)
    facts = iter(_FACTS * (turns // (FACT_EVERY * len(_FACTS)) + 1))
    messages: list[AnyMessage] = []
    for turn in range(turns):
        if turn % FACT_EVERY == 0:
            user = next(facts)
        elif rng.random() < 0.25:
            user = rng.choice(_SMALL_TALK)
        else:
            user = rng.choice(_REQUESTS)
        messages.append(HumanMessage(user, id=f"h{turn}"))
        messages.append(AIMessage(rng.choice(_REPLIES), id=f"a{turn}"))
    return messages


def prompt_chars(messages: Sequence[BaseMessage]) -> int:
    """Characters of a prompt: message contents, plus the arguments of any tool calls."""
    chars = 0
    for message in messages:
        chars += len(message.content) if isinstance(message.content, str) else len(str(message.content))
        if isinstance(message, AIMessage):
            chars += sum(len(str(call["args"])) for call in message.tool_calls)
    return chars


class _Extractor:
    """The scripted memory model's answers; ``newest`` is the latest user message of the run."""

    def __init__(self) -> None:
        self.newest = ""

    def respond(self, messages: Sequence[BaseMessage], tool_names: list[str]) -> AIMessage:
        if "Memory" in tool_names:
            return tool_call("Memory", content=f"User said: {self.newest[:200]}")
        if "UserProfile" in tool_names:
            return tool_call("UserProfile", name="Sam Okafor", preferred_name="Sammy")
        return AIMessage(content="No profile change.")


@dataclass
class ModeResult:
    """What one mode cost over the whole conversation."""

    name: str
    runs: int
    calls: int
    extraction_calls: int
    total_chars: int
    largest_chars: int
    first_run_chars: int
    last_run_chars: int
    memories: int
    reported_calls: int
    reported_prompt_tokens: int
    reported_seconds: float


async def _run_mode(name: str, template: bool, messages: list[AnyMessage]) -> ModeResult:
    store = InMemoryStore(index={"embed": HashedEmbeddings(), "dims": 1536, "fields": ["content"]})
    extractor = _Extractor()
    model = ScriptedChatModel(respond=extractor.respond)
    context = MemoryContext(user_id=USER_ID, max_messages_per_batch=200) if template else MemoryContext(user_id=USER_ID)

    def load_model(spec: str, **client: object) -> BaseChatModel:
        return model

    run_chars: list[int] = []
    reports: list[dict[str, Any]] = []
    with patch.object(memory_graph.graph, "load_chat_model", load_model):
        graph = memory_graph.graph.builder.compile(store=store)
        for turns_done in range(EVERY, TURNS + 1, EVERY):
            so_far = messages[: 2 * turns_done]
            extractor.newest = so_far[-2].text
            if template:
                await store.adelete(cursor_namespace(USER_ID), CHAT_THREAD_ID)
            before = len(model.calls)
            result = await graph.ainvoke({"messages": so_far, "chat_thread_id": CHAT_THREAD_ID}, context=context)
            reports.append(result["report"])
            run_chars.append(sum(prompt_chars(sent) for sent, _ in model.calls[before:]))
    sizes = [prompt_chars(sent) for sent, _ in model.calls]
    memories = await store.asearch(("memories", USER_ID), limit=1000)
    return ModeResult(
        name=name,
        runs=len(run_chars),
        calls=len(model.calls),
        extraction_calls=sum("Memory" in tools for _, tools in model.calls),
        total_chars=sum(sizes),
        largest_chars=max(sizes),
        first_run_chars=run_chars[0],
        last_run_chars=run_chars[-1],
        memories=len(memories),
        reported_calls=sum(report["model_calls"] for report in reports),
        reported_prompt_tokens=sum(report["prompt_tokens"] for report in reports),
        reported_seconds=sum(report["duration_seconds"] for report in reports),
    )


def _tokens(chars: int) -> str:
    return f"{chars / 4:,.0f}"


async def run(quick: bool) -> Section:
    """Process the conversation in both modes and compare what reached the model.

    The run is cheap (no real model), so ``quick`` does the same work as the full run.
    """
    messages = conversation()
    progress("background_cost: ours (cursor, new messages only)")
    ours = await _run_mode("ours (cursor)", False, messages)
    progress("background_cost: template (all messages every run)")
    template = await _run_mode("template (all msgs)", True, messages)
    user_words = [len(m.text.split()) for m in messages if isinstance(m, HumanMessage)]
    section = Section(
        title="2. Background memory cost: 100-turn conversation, memory graph run every 5 turns",
        columns=[
            "mode",
            "runs",
            "model calls",
            "extraction calls",
            "prompt tokens (est.)",
            "largest prompt",
            "1st run",
            "20th run",
            "memories",
        ],
    )
    for result in (ours, template):
        section.rows.append(
            [
                result.name,
                str(result.runs),
                str(result.calls),
                str(result.extraction_calls),
                _tokens(result.total_chars),
                _tokens(result.largest_chars),
                _tokens(result.first_run_chars),
                _tokens(result.last_run_chars),
                str(result.memories),
            ]
        )
    section.rows.append(
        [
            "template / ours",
            "",
            f"{template.calls / ours.calls:.2f}x",
            f"{template.extraction_calls / ours.extraction_calls:.2f}x",
            f"{template.total_chars / ours.total_chars:.2f}x",
            f"{template.largest_chars / ours.largest_chars:.2f}x",
            f"{template.first_run_chars / ours.first_run_chars:.2f}x",
            f"{template.last_run_chars / ours.last_run_chars:.2f}x",
            "",
        ]
    )
    section.notes += [
        f"{TURNS} turns = {len(messages)} messages; user messages {min(user_words)}-{max(user_words)} words, "
        f"a fact every {FACT_EVERY} turns; memory graph invoked after every {EVERY}th turn.",
        "Prompt tokens are estimated as characters of all messages sent to the model / 4 (tool schemas "
        "not counted), summed over all runs; 'largest prompt' is the biggest single model call; "
        "'1st run'/'20th run' are the prompt tokens of all calls of that run (extraction + profile).",
        "Each run makes one extraction call and one profile call per batch. 'ours' sends 10 new + "
        "2 overlap messages per run, so its prompts stay flat; 'template' resends the whole "
        "conversation, so its prompts grow linearly and its total quadratically with conversation length.",
        "The runs' own reports (their `report` output; prompt tokens estimated by langchain's "
        "count_tokens_approximately, since the scripted model reports no usage): "
        + "; ".join(
            f"{r.name}: {r.reported_calls} model calls, {r.reported_prompt_tokens:,} prompt tokens, "
            f"{r.reported_seconds:.1f} s"
            for r in (ours, template)
        )
        + ".",
        "Both prompts also carry up to 10 related existing memories (and the profile), which is the same "
        "in both modes; 'memories' = items in the store after the 20 runs.",
    ]
    return section
