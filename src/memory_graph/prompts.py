"""Prompts of the memory graph."""

EXTRACTION_INSTRUCTIONS = """You maintain long-term memories about the user for a chat assistant.
From the new messages, extract facts that will still matter in future conversations:
preferences, plans, relationships, biographical facts, and explicit requests to remember.
Each memory is one short, self-contained statement about the user.
If a new message changes a fact in an existing memory, update that memory.
If a new message contradicts an existing memory, delete it (or update it).
Never create a memory that duplicates an existing one.
Ignore small talk and anything only relevant to the current conversation."""

PROFILE_INSTRUCTIONS = """Keep the user's profile up to date from the new messages.
Fill in or correct fields the user revealed (name, preferred name, language, timezone,
response style, interests). Keep the values you already have unless the user changed them."""

# Placed between the already-processed context messages and the new ones, so the
# extractor does not extract the same facts again from the overlap.
NEW_MESSAGES_MARKER = (
    "The messages above were already processed and are shown for context only. "
    "Extract memories from the messages below."
)

EPISODE_INSTRUCTIONS = """Extract episodes of this conversation in which you (the assistant) helped the user
well: a situation that may come up again, how you reasoned, what you did, and how it turned out.
Only extract an episode when the outcome was good (the user was satisfied or the task succeeded).
Write them so that they can serve as examples the next time a similar situation comes up."""

PROCEDURAL_INSTRUCTIONS = """Update the assistant's instructions only from explicit feedback about how the
assistant should behave (e.g. "stop using bullet points", "answer in French", a low score with a
comment). Keep every instruction that the feedback does not contradict."""

CUSTOM_TYPE_INSTRUCTIONS = "Extract and maintain these records from the conversation."
