"""Prompts of the memory graph."""

EXTRACTION_INSTRUCTIONS = """You maintain long-term memories about the user for a chat assistant.
From the new messages, extract facts that will still matter in future conversations:
preferences, plans, relationships, biographical facts, and explicit requests to remember.
Each memory is one short, self-contained statement about the user, in the third person ("User ...").
Only save what the user said; never guess, and never save the assistant's own suggestions.
If a new message changes a fact in an existing memory, update that memory with its full new text.
If a new message contradicts an existing memory, delete it (or update it).
Never create a memory that an existing one already says.
Ignore small talk, questions and anything only relevant to the current conversation.
If the new messages hold nothing worth remembering, call NothingToSave."""

PROFILE_INSTRUCTIONS = """Keep the user's profile up to date from the new messages.
Set or correct a field only when the user stated it in the new messages, in their own words;
leave every other field as it is. Never guess a value and never fill a field from a place, a
job or a question: a city is not a name, and a language is set only when the user asks for it.
If the new messages say nothing about the profile, change nothing."""

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
