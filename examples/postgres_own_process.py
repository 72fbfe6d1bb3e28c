"""Both graphs in your own process, on Postgres: a conversation and memories that outlive it.

    python3 -m uv run --frozen python examples/postgres_own_process.py

Uses ``$POSTGRES_URI``, or without it an embedded PostgreSQL in ``.pgdata/`` (started and
stopped by the script). Needs a model: ``OPENAI_API_KEY`` (or ``OPENAI_BASE_URL``), as the
server does. Each run adds one turn to the same conversation; run it twice to see the
thread and the memories come back from the database.
"""

import asyncio
import uuid

from langchain_core.runnables import RunnableConfig

from deployment.persistence import postgres_graphs

USER_ID = "example-user"
# The same thread on every run, so the conversation continues where the last run left it.
THREAD_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "langgraph-memory-service/examples/postgres_own_process"))


async def main() -> None:
    """Send one turn, then show what the database holds for this thread and user."""
    async with postgres_graphs() as graphs:
        config: RunnableConfig = {"configurable": {"thread_id": THREAD_ID}}
        previous = await graphs.agent.aget_state(config)
        print(f"Thread {THREAD_ID} had {len(previous.values.get('messages', []))} messages.")

        # Outside a server, the memory graph runs in-process right after the turn.
        result = await graphs.agent.ainvoke(
            {"messages": [{"role": "user", "content": "Please remember that I'm vegetarian."}]},
            config,
            context={"user_id": USER_ID},
        )
        print(f"Assistant: {result['messages'][-1].content}")

        state = await graphs.agent.aget_state(config)
        print(f"Thread {THREAD_ID} now has {len(state.values['messages'])} messages.")
        for item in await graphs.store.asearch(("memories", USER_ID), query="diet", limit=5):
            print(f"Memory {item.key}: {item.value['content']}")


if __name__ == "__main__":
    asyncio.run(main())
