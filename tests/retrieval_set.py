"""An offline retrieval set for memory recall: memories, queries and the memories that answer them.

One user's memory namespace, generated from templates with a seed, so it is varied but the
same on every run. ``build_retrieval_set()`` (seed ``DEFAULT_SEED``) is the set the tests use;
other seeds give variants of the same design, which the benchmark tunes the weights on:

* facts about the user and three other people (sister, partner, best friend): home city,
  job, favourite food, car, allergies, ... Each queried fact answers one query; facts about the
  other people are also hard distractors for the user's own queries ("my home city" vs
  "my sister's home city") and the other way round;
* updated facts (20 per set): an older statement of an attribute (90 to 720 days old) and a
  newer one (1 to 60 days old), sometimes with a version in between, all with equal importance.
  Only the newest answers the query; the older ones are listed in ``Query.superseded``;
* chit-chat: low-importance remarks, 0 to 365 days old, that share the queries' words
  ("User asked which city is best for a weekend away");
* filler: unrelated background memories ("User's neighbour collects vintage cameras ...").

About one memory in seven has no importance, like the ones langmem's manage tool writes on the
hot path. The set is built to contain the failure modes of similarity-only recall, so its
figures say how well ranking repairs them, not how often they happen in real use.

Every answer restates the key words of its query ("What is my home city?" / "User's home city
is Paris."): the tests embed with ``HashedEmbeddings``, a bag of words, which could not match
"Where do I live?" to "User lives in Paris" at all. The words around them differ, and updates
are wordier ("User moved recently, so User's home city is now Berlin."), which is what makes the
newest version lose on similarity alone. Real embeddings would change the absolute numbers.

``load_into_store`` writes a set into a store with controlled timestamps; ``score`` computes
recall@k, MRR@k and the "newer wins" rate of a ranking.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from langgraph.store.base import BaseStore, PutOp

from memory.records import memory_record

DEFAULT_SEED = 2024
NO_IMPORTANCE_RATE = 0.15

Kind = Literal["fact", "superseded", "chit_chat", "filler"]


@dataclass(frozen=True)
class EvalMemory:
    """One stored memory: its text, importance (None: field absent) and age in days."""

    id: str
    text: str
    importance: float | None
    age_days: float
    kind: Kind

    def value(self) -> dict[str, Any]:
        """The stored value: the shared record, with ``importance`` only when known (hot-path memories lack it)."""
        return (
            memory_record(self.text)
            if self.importance is None
            else memory_record(self.text, importance=self.importance)
        )


@dataclass(frozen=True)
class Query:
    """A query, the ids of the memories that answer it, and the older versions they replaced."""

    id: str
    text: str
    answers: tuple[str, ...]
    superseded: tuple[str, ...] = ()

    @property
    def updated(self) -> bool:
        """Whether this is an updated-fact query: the newest version must beat the older ones."""
        return bool(self.superseded)


@dataclass(frozen=True)
class RetrievalSet:
    """Memories and queries of one generated set."""

    seed: int
    memories: tuple[EvalMemory, ...]
    queries: tuple[Query, ...]

    def text_of(self, memory_id: str) -> str:
        """The text of a memory, for failure messages."""
        return next(memory.text for memory in self.memories if memory.id == memory_id)


@dataclass(frozen=True)
class _Subject:
    """How one person is named in memories (third person) and in queries (first person)."""

    name: str  # memory subject: "User", "User's sister"
    possessive: str  # memory possessive: "User's", "User's sister's"
    query_subject: str  # "I", "my sister"
    query_possessive: str  # "my", "my sister's"
    do: str  # "do", "does"
    be: str  # "am", "is"

    def memory_fields(self) -> dict[str, str]:
        return {"S": self.name, "P": self.possessive}

    def query_fields(self) -> dict[str, str]:
        return {"s": self.query_subject, "p": self.query_possessive, "do": self.do, "be": self.be}


USER = _Subject("User", "User's", "I", "my", "do", "am")
OTHERS = (
    _Subject("User's sister", "User's sister's", "my sister", "my sister's", "does", "is"),
    _Subject("User's partner", "User's partner's", "my partner", "my partner's", "does", "is"),
    _Subject("User's best friend", "User's best friend's", "my best friend", "my best friend's", "does", "is"),
)


@dataclass(frozen=True)
class _Attribute:
    """A kind of fact, with templates for stating it, updating it, asking for it and chatting near it.

    Memory templates use ``{S}``/``{P}`` (subject, possessive) and ``{v}`` (the value); query
    templates use ``{s}``, ``{p}``, ``{do}``, ``{be}``. Chit-chat templates are about the user and
    may use ``{v}`` (any value from the pool, never an answer by construction).
    """

    name: str
    fact: str
    query: str
    values: tuple[str, ...]
    chit_chat: tuple[str, ...]
    update: str | None = None  # None: the attribute does not change over time
    others: bool = False  # also asked about the other people
    importance: tuple[float, float] = (0.5, 0.9)
    user_values: int = 1  # how many values the user has at once (answers of one query)


CITIES = ("Paris", "Berlin", "Lisbon", "Madrid", "Oslo", "Vienna", "Prague", "Dublin", "Lyon", "Porto", "Munich")
NAMES = ("Sam", "Alex", "Jordan", "Maria", "Tom", "Priya", "Kenji", "Lena", "Omar", "Chloe", "Ines", "Marek")

ATTRIBUTES: tuple[_Attribute, ...] = (
    _Attribute(
        "home_city",
        fact="{P} home city is {v}.",
        update="{S} moved recently, so {P} home city is now {v}.",
        query="What is {p} home city?",
        values=CITIES,
        chit_chat=(
            "User asked which city is best for a weekend away.",
            "User said {v} is a lovely city in spring.",
            "User said the city traffic was terrible on the way home tonight.",
            "User asked what the weather is like in {v} this week.",
        ),
        others=True,
    ),
    _Attribute(
        "job",
        fact="{P} job is working as {v}.",
        update="{S} changed careers; {P} job is now working as {v}.",
        query="What is {p} job?",
        values=(
            "a nurse",
            "a data engineer",
            "a teacher",
            "an architect",
            "a chef",
            "a lawyer",
            "an accountant",
            "a journalist",
        ),
        chit_chat=(
            "User complained that every job advert asks for five years of experience.",
            "User asked what {v} does in a typical working day.",
            "User said a friend got a new job and is very happy.",
            "User asked how to answer a job interview question about weaknesses.",
        ),
        others=True,
    ),
    _Attribute(
        "favourite_food",
        fact="{P} favourite food is {v}.",
        update="{P} favourite food these days is {v}.",
        query="What is {p} favourite food?",
        values=("sushi", "lasagna", "ramen", "tacos", "paella", "curry", "dumplings", "risotto"),
        chit_chat=(
            "User said the food at the office canteen was bland today.",
            "User asked what food to bring to a picnic.",
            "User said they tried {v} for the first time and it was fine.",
            "User asked which food is good for a quick lunch.",
        ),
        others=True,
    ),
    _Attribute(
        "car",
        fact="{P} car is a {v}.",
        update="{S} sold the old car; {P} car is now a {v}.",
        query="What is {p} car?",
        values=("Toyota Corolla", "Tesla Model 3", "VW Golf", "Volvo XC40", "Renault Clio", "Fiat 500", "Mini Cooper"),
        chit_chat=(
            "User rented a car for a weekend trip and found it hard to drive.",
            "User asked whether an electric car is worth it.",
            "User asked how often a car needs a service.",
            "User said a neighbour's car alarm went off all night.",
        ),
        others=True,
    ),
    _Attribute(
        "sport",
        fact="{S} plays {v} every week.",
        update="{S} gave up the old sport and now plays {v} every week.",
        query="Which sport {do} {s} play every week?",
        values=("tennis", "football", "squash", "badminton", "volleyball", "basketball", "table tennis"),
        chit_chat=(
            "User watched a {v} match on TV and enjoyed it.",
            "User asked which sport burns the most calories.",
            "User asked which sport is good for bad knees.",
            "User said the kids' sport day was chaotic.",
        ),
        others=True,
    ),
    _Attribute(
        "diet",
        fact="{S} follows a {v} diet.",
        update="{S} now follows a {v} diet.",
        query="What diet {do} {s} follow?",
        values=("vegetarian", "vegan", "pescatarian", "low-carb", "gluten-free", "Mediterranean"),
        chit_chat=(
            "User said a friend is trying a strange new diet.",
            "User asked whether a {v} diet is healthy.",
            "User asked whether a diet soda counts as water.",
            "User said their diet goes out the window at Christmas.",
        ),
        others=True,
    ),
    _Attribute(
        "allergy",
        fact="{S} is allergic to {v}.",
        query="What {be} {s} allergic to?",
        values=("peanuts", "shellfish", "penicillin", "cats", "pollen", "wasp stings", "latex"),
        chit_chat=(
            "User sneezed all morning and wondered what they are allergic to.",
            "User read that many people are allergic to {v}.",
            "User asked whether dogs can be allergic to grass.",
            "User said a coworker is allergic to almost everything.",
        ),
        others=True,
        importance=(0.85, 1.0),
        user_values=2,
    ),
    _Attribute(
        "birthday",
        fact="{P} birthday is on {v}.",
        query="When is {p} birthday?",
        values=("3 March", "14 July", "22 November", "9 January", "30 May", "17 August", "5 October"),
        chit_chat=(
            "User went to a colleague's birthday party last night.",
            "User asked for birthday cake ideas.",
            "User bought a birthday card for a coworker.",
            "User asked what to write in a birthday message.",
        ),
        others=True,
        importance=(0.7, 0.95),
    ),
    _Attribute(
        "hobby",
        fact="{P} favourite hobby is {v}.",
        query="What is {p} favourite hobby?",
        values=("birdwatching", "pottery", "woodworking", "chess", "gardening", "photography", "knitting"),
        chit_chat=(
            "User said they need a new hobby for the winter.",
            "User asked whether {v} is an expensive hobby.",
            "User said their hobby budget is out of control this month.",
        ),
        others=True,
        importance=(0.4, 0.7),
    ),
    _Attribute(
        "dog",
        fact="{P} dog is named {v}.",
        query="What is the name of {p} dog?",
        values=("Biscuit", "Rex", "Luna", "Milo", "Pepper", "Nala", "Olive"),
        chit_chat=(
            "User laughed at a video of a dog chasing its tail.",
            "User asked for a good name for a dog.",
            "User asked what the name of the dog in a film was.",
            "User said a dog barked outside all night.",
        ),
        others=True,
        importance=(0.5, 0.8),
    ),
    _Attribute(
        "coffee",
        fact="User's coffee order is {v}.",
        update="User switched; User's coffee order is now {v}.",
        query="What is my coffee order?",
        values=("black", "a flat white", "an oat milk latte", "a cappuccino", "a double espresso"),
        chit_chat=(
            "User said the office coffee machine broke again.",
            "User asked how to make cold brew coffee.",
            "User said their coffee order at the airport took twenty minutes.",
            "User asked what a cortado is.",
        ),
    ),
    _Attribute(
        "phone",
        fact="User's phone is a {v}.",
        update="User bought a new phone, a {v}.",
        query="What phone do I have?",
        values=("iPhone 13", "Pixel 8", "Galaxy S23", "Fairphone 5", "iPhone 15"),
        chit_chat=(
            "User dropped their phone but the screen survived.",
            "User asked which phone has the best camera.",
            "User asked how to free up storage on a phone.",
            "User said their phone battery dies by lunchtime.",
        ),
    ),
    _Attribute(
        "language",
        fact="User is learning the {v} language.",
        update="User switched to learning the {v} language.",
        query="Which language am I learning?",
        values=("Spanish", "Japanese", "German", "Italian", "Korean", "Portuguese"),
        chit_chat=(
            "User said learning a language as an adult is hard.",
            "User asked which language is easiest for English speakers.",
            "User asked what language is spoken in Belgium.",
            "User said they heard a language they could not recognise on the train.",
        ),
    ),
    _Attribute(
        "band",
        fact="User's favourite band is {v}.",
        update="User's favourite band is now {v}.",
        query="What is my favourite band?",
        values=("Radiohead", "ABBA", "Daft Punk", "The Beatles", "Arctic Monkeys", "Fleetwood Mac"),
        chit_chat=(
            "User heard a new band on the radio and liked it.",
            "User asked for tickets to see a band.",
            "User said a band played too loud at a wedding.",
            "User asked what the best band of the nineties was.",
        ),
    ),
    _Attribute(
        "manager",
        fact="User's manager is {v}.",
        update="After a reorganisation, User's manager is now {v}.",
        query="Who is my manager?",
        values=NAMES,
        chit_chat=(
            "User said their manager's manager ran a very long meeting.",
            "User asked how to give feedback to a manager.",
            "User asked what a manager should do in a first week.",
            "User said a shop manager was very helpful.",
        ),
    ),
    _Attribute(
        "timezone",
        fact="User's timezone is {v}.",
        update="User's timezone is now {v}.",
        query="What is my timezone?",
        values=("Europe/Paris", "America/New_York", "Asia/Tokyo", "Europe/London", "America/Chicago"),
        chit_chat=(
            "User asked which timezone a conference call was scheduled in.",
            "User asked what the time difference is between London and Tokyo.",
            "User said the timezone change after a flight left them tired.",
        ),
    ),
    _Attribute(
        "commute",
        fact="User commutes to work by {v}.",
        update="User now commutes to work by {v}.",
        query="How do I commute to work?",
        values=("bike", "train", "bus", "car", "scooter", "tram"),
        chit_chat=(
            "User said the commute to work was slow because of roadworks.",
            "User asked how to make a long work commute productive.",
            "User said they listen to podcasts at work.",
            "User asked how to stay focused at work after lunch.",
        ),
    ),
    _Attribute(
        "wake_time",
        fact="User wakes up at {v} on weekdays.",
        update="User now wakes up at {v} on weekdays.",
        query="What time do I wake up on weekdays?",
        values=("6:00", "6:30", "7:00", "7:30", "8:00"),
        chit_chat=(
            "User woke up late today and missed the bus.",
            "User asked what time to wake up for an early flight.",
            "User said their neighbours wake up at dawn on weekdays.",
            "User asked what time the shops open on Sunday.",
        ),
    ),
    _Attribute(
        "book",
        fact="User is reading the book {v}.",
        update="User finished the last book and is now reading {v}.",
        query="What book am I reading?",
        values=("Dune", "Middlemarch", "The Hobbit", "Sapiens", "Piranesi", "Beloved"),
        chit_chat=(
            "User asked for a book recommendation for the beach.",
            "User said reading before bed helps them sleep.",
            "User said a book club meeting ran late.",
            "User asked what book to give a ten-year-old.",
        ),
    ),
    _Attribute(
        "answer_style",
        fact="User prefers {v} answers.",
        update="User now prefers {v} answers.",
        query="How do I like my answers?",
        values=("short", "detailed", "bullet-point", "formal", "casual"),
        chit_chat=(
            "User said an answer from a support chatbot was too long.",
            "User asked for answers to a quiz.",
            "User said they like short emails from colleagues.",
            "User asked for detailed instructions to assemble a shelf.",
        ),
        importance=(0.7, 0.9),
    ),
    _Attribute(
        "reply_language",
        fact="User wants replies in {v}.",
        update="User now wants replies in {v}.",
        query="Which language should replies be in?",
        values=("English", "French", "German", "Spanish", "Dutch"),
        chit_chat=(
            "User replied to an email from a client in a hurry.",
            "User asked which language is hardest to learn.",
            "User said replies to their forum post were rude.",
        ),
        importance=(0.7, 0.9),
    ),
    _Attribute(
        "doctor",
        fact="User's doctor is Dr {v}.",
        query="Who is my doctor?",
        values=("Moreau", "Schmidt", "Okafor", "Lindqvist", "Rossi", "Tanaka"),
        chit_chat=(
            "User said the doctor's waiting room was packed.",
            "User asked when to see a doctor for a cough.",
            "User said a doctor on TV gave odd advice.",
        ),
        importance=(0.6, 0.9),
    ),
    _Attribute(
        "gym",
        fact="User's gym membership is at {v}.",
        update="User cancelled the old gym membership; User's gym membership is now at {v}.",
        query="Where is my gym membership?",
        values=("FitHub on Main Street", "the university sports centre", "Iron Temple", "the YMCA downtown"),
        chit_chat=(
            "User skipped the gym today because of rain.",
            "User asked what to pack in a gym bag.",
            "User said the gym was packed after New Year.",
            "User asked whether a gym membership is worth it.",
        ),
    ),
    _Attribute(
        "school",
        fact="User's daughter goes to {v} school.",
        update="User's daughter changed school and now goes to {v} school.",
        query="Which school does my daughter go to?",
        values=("Riverside Primary", "Oak Hill", "St Mary's", "Greenfield", "Lakeside"),
        chit_chat=(
            "User asked when the school holidays start.",
            "User said their daughter loves drawing.",
            "User said the school run was chaotic this morning.",
            "User asked what their daughter could bring to a school bake sale.",
        ),
    ),
    _Attribute(
        "series",
        fact="User is watching the series {v}.",
        update="User is now watching the series {v}.",
        query="Which series am I watching?",
        values=("The Bear", "Severance", "Succession", "Dark", "Slow Horses"),
        chit_chat=(
            "User asked for a series to watch on a long flight.",
            "User said a new series everyone talks about is overrated.",
            "User asked how many seasons a series usually has.",
        ),
        importance=(0.3, 0.6),
    ),
    _Attribute(
        "shirt_size",
        fact="User wears size {v} shirts.",
        query="What shirt size do I wear?",
        values=("S", "M", "L", "XL"),
        chit_chat=(
            "User bought a shirt as a gift for a friend.",
            "User asked how to get a stain out of a white shirt.",
            "User said a size chart online was confusing.",
        ),
        importance=(0.4, 0.7),
    ),
    _Attribute(
        "anniversary",
        fact="User's wedding anniversary is on {v}.",
        query="When is my wedding anniversary?",
        values=("12 June", "2 September", "28 February", "19 April"),
        chit_chat=(
            "User went to a friend's wedding last weekend.",
            "User asked for anniversary gift ideas.",
            "User said the company anniversary party was fun.",
        ),
        importance=(0.8, 1.0),
    ),
    _Attribute(
        "restaurant",
        fact="User's favourite restaurant is {v}.",
        update="User's favourite restaurant is now {v}.",
        query="What is my favourite restaurant?",
        values=("Chez Louise", "the Golden Dragon", "Trattoria Sole", "Casa Lola", "the Blue Door"),
        chit_chat=(
            "User said a new restaurant opened near the office.",
            "User asked how much to tip at a restaurant.",
            "User said the restaurant near the station closed.",
            "User asked for a restaurant that takes large groups.",
        ),
    ),
    _Attribute(
        "laptop",
        fact="User's laptop is a {v}.",
        update="User replaced the old laptop; User's laptop is now a {v}.",
        query="What is my laptop?",
        values=("MacBook Air", "ThinkPad X1", "Dell XPS 13", "Framework 13", "Surface Laptop"),
        chit_chat=(
            "User said their laptop fan is noisy.",
            "User asked how to use a laptop as a second screen.",
            "User asked what laptop is good for a student.",
            "User said their old laptop is now in a drawer.",
        ),
    ),
    _Attribute(
        "holiday",
        fact="User's favourite holiday destination is {v}.",
        update="User's favourite holiday destination is now {v}.",
        query="What is my favourite holiday destination?",
        values=("Crete", "the Scottish Highlands", "Kyoto", "the Algarve", "Iceland"),
        chit_chat=(
            "User asked how to find a cheap holiday flight.",
            "User said a holiday in {v} sounds tempting.",
            "User said the holiday season traffic was awful.",
            "User asked what to pack for a beach holiday.",
        ),
        importance=(0.4, 0.7),
    ),
    _Attribute(
        "dentist",
        fact="User's dentist is Dr {v}.",
        query="Who is my dentist?",
        values=("Novak", "Fischer", "Adeyemi", "Costa", "Hughes"),
        chit_chat=(
            "User said the dentist appointment reminder came too late.",
            "User asked how often to see a dentist.",
            "User said their dentist bill was higher than expected.",
        ),
        importance=(0.5, 0.8),
    ),
    _Attribute(
        "emergency_contact",
        fact="User's emergency contact is {v}.",
        query="Who is my emergency contact?",
        values=NAMES,
        chit_chat=(
            "User asked what counts as an emergency for the out-of-hours line.",
            "User asked who to contact about a power cut.",
            "User said an emergency drill at the office took an hour.",
        ),
        importance=(0.85, 1.0),
    ),
)

_FILLER_SUBJECTS = (
    "User",
    "User's neighbour",
    "User's colleague",
    "User's cousin",
    "User's manager",
    "User's oldest friend",
)
_FILLER_VERBS = ("enjoys", "recommended", "wants to try", "gave up on", "collects", "writes about", "asked about")
_FILLER_OBJECTS = (
    "sourdough baking",
    "trail running",
    "jazz piano",
    "vintage cameras",
    "board games",
    "Japanese whisky",
    "watercolour painting",
    "fermented vegetables",
    "electric bikes",
    "the history of Rome",
    "houseplants",
    "sailing lessons",
    "science fiction novels",
    "yoga at dawn",
    "budget travel in Asia",
)
_FILLER_QUALIFIERS = (
    "since last year",
    "every Sunday morning",
    "with friends from university",
    "when the weather is bad",
    "on long train journeys",
    "as a way to relax",
    "mostly in the summer",
)
FILLER_COUNT = 70
UPDATED_COUNT = 20
THREE_VERSION_RATE = 0.25


class _Builder:
    """Accumulates memories and queries with sequential ids."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.memories: list[EvalMemory] = []
        self.queries: list[Query] = []
        self.texts: set[str] = set()

    def importance(self, low: float, high: float) -> float | None:
        if self.rng.random() < NO_IMPORTANCE_RATE:
            return None
        return round(self.rng.uniform(low, high), 2)

    def add(self, text: str, importance: float | None, age_days: float, kind: Kind) -> str:
        """Add a memory and return its id. Texts are unique by construction; a repeat is a template bug."""
        if text in self.texts:
            raise ValueError(f"Duplicate memory text: {text!r}")
        self.texts.add(text)
        memory = EvalMemory(f"m{len(self.memories):03d}", text, importance, round(age_days, 2), kind)
        self.memories.append(memory)
        return memory.id

    def query(self, text: str, answers: Sequence[str], superseded: Sequence[str] = ()) -> None:
        self.queries.append(Query(f"q{len(self.queries):02d}", text, tuple(answers), tuple(superseded)))


def build_retrieval_set(seed: int = DEFAULT_SEED) -> RetrievalSet:
    """Generate the set: the same memories, ages, importances and queries for the same seed."""
    rng = random.Random(seed)
    build = _Builder(rng)

    # Who is asked about what: the user for every attribute, 2 of the 3 others for shared ones.
    pairs: list[tuple[_Subject, _Attribute]] = []
    distractor_pairs: list[tuple[_Subject, _Attribute]] = []
    for attribute in ATTRIBUTES:
        pairs.append((USER, attribute))
        if attribute.others:
            asked = rng.sample(OTHERS, 2)
            pairs.extend((other, attribute) for other in asked)
            distractor_pairs.extend((other, attribute) for other in OTHERS if other not in asked)
    updatable = [index for index, (_, attribute) in enumerate(pairs) if attribute.update is not None]
    updated = set(rng.sample(updatable, UPDATED_COUNT))

    for index, (subject, attribute) in enumerate(pairs):
        fields = subject.memory_fields()
        query_text = attribute.query.format(**subject.query_fields())
        if index in updated and attribute.update is not None:
            versions = 3 if rng.random() < THREE_VERSION_RATE else 2
            values = rng.sample(attribute.values, versions)
            importance = build.importance(*attribute.importance)
            newest_age, *older_ages = sorted((rng.uniform(1, 60), *(rng.uniform(90, 720) for _ in range(versions - 1))))
            # The newest and any middle version are updates; the oldest is the original statement.
            templates = [attribute.update] * (versions - 1) + [attribute.fact]
            ids = [
                build.add(template.format(v=value, **fields), importance, age, "fact" if version == 0 else "superseded")
                for version, (template, value, age) in enumerate(
                    zip(templates, values, [newest_age, *older_ages], strict=True)
                )
            ]
            newest, *older = ids
            build.query(query_text, [newest], older)
        else:
            count = attribute.user_values if subject is USER else 1
            answers = [
                build.add(
                    attribute.fact.format(v=value, **fields),
                    build.importance(*attribute.importance),
                    rng.uniform(1, 720),
                    "fact",
                )
                for value in rng.sample(attribute.values, count)
            ]
            build.query(query_text, answers)

    for subject, attribute in distractor_pairs:
        text = attribute.fact.format(v=rng.choice(attribute.values), **subject.memory_fields())
        build.add(text, build.importance(*attribute.importance), rng.uniform(1, 720), "fact")

    for attribute in ATTRIBUTES:
        for template in attribute.chit_chat:
            text = template.format(v=rng.choice(attribute.values))
            build.add(text, build.importance(0.05, 0.3), rng.uniform(0, 365), "chit_chat")

    combos = [
        (who, verb, obj, qualifier)
        for who in _FILLER_SUBJECTS
        for verb in _FILLER_VERBS
        for obj in _FILLER_OBJECTS
        for qualifier in _FILLER_QUALIFIERS
    ]
    for who, verb, obj, qualifier in rng.sample(combos, FILLER_COUNT):
        build.add(f"{who} {verb} {obj} {qualifier}.", build.importance(0.2, 0.7), rng.uniform(1, 720), "filler")

    return RetrievalSet(seed=seed, memories=tuple(build.memories), queries=tuple(build.queries))


async def load_into_store(
    store: BaseStore, namespace: tuple[str, ...], memories: Sequence[EvalMemory], now: datetime | None = None
) -> datetime:
    """Put ``memories`` into ``store`` (indexed as usual), then backdate each to ``now - age_days``.

    Stores stamp ``created_at``/``updated_at`` themselves on every put, with no way to pass a
    time. For ``InMemoryStore``, ``get`` returns the stored ``Item`` object itself, so the
    timestamps are set on it after the put; searches build their results from that object, so
    they report the backdated times. This is an implementation detail of ``InMemoryStore``,
    hence the check afterwards: if a future version returned copies, loading fails loudly
    instead of silently leaving every memory "just written". Returns the ``now`` used.
    """
    moment = now if now is not None else datetime.now(UTC)
    await store.abatch([PutOp(namespace, memory.id, memory.value()) for memory in memories])
    for memory in memories:
        item = await store.aget(namespace, memory.id)
        if item is None:
            raise RuntimeError(f"Memory {memory.id} was not stored.")
        item.created_at = item.updated_at = moment - timedelta(days=memory.age_days)
    for memory in memories:
        item = await store.aget(namespace, memory.id)
        expected = moment - timedelta(days=memory.age_days)
        if item is None or item.updated_at != expected:
            raise RuntimeError(f"{type(store).__name__} did not keep the backdated timestamp of {memory.id}.")
    return moment


@dataclass(frozen=True)
class Scores:
    """Retrieval quality of one ranking over a set's queries.

    ``recall``: mean over queries of the share of answers in the top ``k``. ``mrr``: mean
    reciprocal rank of the first answer (0 when none is returned). ``newer_wins``: share of
    updated-fact queries whose newest version is returned above every older version returned.
    """

    recall: float
    mrr: float
    newer_wins: float


def newer_wins(returned: Sequence[str], query: Query) -> bool:
    """Whether the newest version is returned, above any older version that is returned too."""
    if not query.answers or query.answers[0] not in returned:
        return False
    position = returned.index(query.answers[0])
    return all(old not in returned[:position] for old in query.superseded)


def score(queries: Sequence[Query], returned: dict[str, list[str]], k: int) -> Scores:
    """Score the memory ids ``returned`` per query id (best first), cut at ``k``."""
    recalls, reciprocal_ranks, wins = [], [], []
    for query in queries:
        top = returned[query.id][:k]
        recalls.append(sum(answer in top for answer in query.answers) / len(query.answers))
        first = next((rank for rank, memory_id in enumerate(top, start=1) if memory_id in query.answers), None)
        reciprocal_ranks.append(1 / first if first else 0.0)
        if query.updated:
            wins.append(newer_wins(top, query))
    return Scores(
        recall=sum(recalls) / len(recalls),
        mrr=sum(reciprocal_ranks) / len(reciprocal_ranks),
        newer_wins=sum(wins) / len(wins) if wins else float("nan"),
    )
