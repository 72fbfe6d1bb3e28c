"""The LLM judge: is a generated answer the gold answer, CORRECT or WRONG?

Modelled on the judge of mem0's LoCoMo evaluation (``ACCURACY_PROMPT`` in
``evaluation/metrics/llm_judge.py`` of github.com/mem0ai/mem0, used for the "J" scores of
arXiv:2504.19413): the same inputs, the same generous reading of topic and dates, and the
same one-key JSON label, so our J is comparable to the published ones. The wording is ours.
"""

import json
import re

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

JUDGE_SYSTEM = "You grade answers to questions against a gold (ground truth) answer."

JUDGE_PROMPT = """Label a generated answer to a question as CORRECT or WRONG, given:
  (1) the question, which one person asks another about their earlier conversations,
  (2) the gold answer (the ground truth), usually short and naming the topic,
  (3) the generated answer.

Be generous. The generated answer may be longer than the gold one: it is CORRECT when it is
about the same thing as the gold answer. For questions about time, the gold answer is a date,
month, year or period; the generated answer is CORRECT when it refers to the same date or
period, whatever the format ("May 7th" and "7 May" are the same date) and even when it says
it relatively ("the week before 9 June").

Question: {question}
Gold answer: {gold_answer}
Generated answer: {generated_answer}

Give one short sentence of reasoning, then the label as JSON with the key "label", for
example {{"label": "CORRECT"}}. Never write both labels."""

_LABEL = re.compile(r'"label"\s*:\s*"(CORRECT|WRONG)"', re.IGNORECASE)
_BARE = re.compile(r"\b(CORRECT|WRONG)\b")


class VerdictError(ValueError):
    """The judge's reply holds no label (or both): the call is retried like a failed one."""


def parse_label(raw: str) -> str:
    """The label of a judge's reply: its JSON "label", else the one bare label word it wrote."""
    if match := _LABEL.search(raw):
        return match[1].upper()
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if isinstance(value, dict) and str(value.get("label", "")).upper() in ("CORRECT", "WRONG"):
        return str(value["label"]).upper()
    words = set(_BARE.findall(raw))
    if len(words) == 1:
        return words.pop()
    raise VerdictError(f"The judge's reply has no CORRECT/WRONG label: {raw[:200]!r}")


async def judge(model: BaseChatModel, question: str, gold_answer: str, generated_answer: str) -> tuple[str, str]:
    """Ask the judge; returns its raw reply and the label in it."""
    prompt = JUDGE_PROMPT.format(question=question, gold_answer=gold_answer, generated_answer=generated_answer)
    reply = await model.ainvoke([SystemMessage(JUDGE_SYSTEM), HumanMessage(prompt)])
    return reply.text, parse_label(reply.text)
