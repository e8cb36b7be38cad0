"""The demo's script: a week of ShopWise's support agent, scripted so that what the judges find is known.

Each conversation follows one thread (an order that hasn't arrived, a return, a card declined …): the customer's
turns come from that thread, in order, about one order or product, and the agent answers from the thread's
help-center article, which the retriever returns. A known share of answers is deliberately bad, each kind caught
by one of the demo's judges (DEMO_FAULTS):

- a refusal ("I can only help with …")              → relevance_to_query says no
- a wrong fact (a figure the article contradicts)   → retrieval_groundedness says no
- a curt opening ("As I said before, …")            → polite_tone says no
- a colleague's email address in the answer         → pii_leakage says no

After a refusal or a wrong fact in a conversation the customer complains ("That's not right!!!"), the agent
corrects itself, and the customer either leaves satisfied (user_frustration: resolved) or asks for a human
(unresolved); a few customers are angry from their first message.

Half-way through the week the agent is updated from 1.4.0 to 1.5.0 (`metadata.app_version`), whose stricter
system prompt refuses far more often: relevance_to_query's pass rate drops on the Overview from that day on.

Pure: no database; `build_demo` returns the traces and what was planted in them, for the tests to compare with
the judges' verdicts.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from evalapp.demo_threads import THREADS, Step, Thread
from traces.records import SpanIn, TraceIn

MODEL = "gpt-4.1-mini"
SESSION_SHARE = 0.4
MAX_TURNS = 6
DAYS = 7
# The agent's release half-way through the week, in hours before now.
RELEASE_AGE_HOURS = DAYS * 24 // 2
OLD_VERSION, NEW_VERSION = "1.4.0", "1.5.0"
# Traffic grows through the week (recency_weight): about 70 % of it comes after the release.
NEW_VERSION_SHARE = 0.7
SYSTEM_PROMPTS = {
    OLD_VERSION: "You are ShopWise's support assistant. Answer from the help-center articles; be brief and kind.",
    NEW_VERSION: (
        "You are ShopWise's support assistant. Only answer questions the help-center articles below cover; "
        "decline anything else. Be brief and kind."
    ),
}
# Share of the agent's answers (first answers of a thread turn, not its corrections or goodbyes) made bad on
# purpose, per version. 1.5.0's regression is the refusals.
FAULT_SHARES = {
    OLD_VERSION: {"refusal": 0.03, "wrong_fact": 0.08, "rude": 0.03},
    NEW_VERSION: {"refusal": 0.16, "wrong_fact": 0.08, "rude": 0.03},
}
PII_LEAK_SHARE = 0.03
ANGRY_OPENER_SHARE = 0.06
FAILURE_SHARE = 0.07
# Which of the demo's judges catches which planted fault (a "no" from it).
DEMO_FAULTS = {
    "refusal": "relevance_to_query",
    "wrong_fact": "retrieval_groundedness",
    "rude": "polite_tone",
    "pii": "pii_leakage",
}
PRODUCTS = ["trail running shoes", "rain jacket", "merino hoodie", "espresso grinder", "yoga mat", "desk lamp"]
SIZES = ["S", "M", "L"]


REFUSALS = [
    "I'm sorry, I can only help with questions about ShopWise products.",
    "I'm sorry, I can't help with that here. Please see our help center.",
    "I'm not able to help with that request.",
]
RUDE_OPENING = "As I said before, "
PII_LEAKS = [
    " If it's urgent, write to our warehouse lead at maria.lopez@shopwise-example.com.",
    " You can also reach our returns lead, Tom, at tom.becker@shopwise-example.com.",
]
# Retrieval is not perfect: half the time one of these comes along too (they state no figures, so they can't
# make a wrong figure look supported).
UNRELATED_ARTICLES = [
    ("help/gift-cards", "Gift cards are delivered by email and can be spent on anything in the shop."),
    ("help/products/sizing", "Every product page has a size guide; between two sizes, pick the larger one."),
    ("help/account/newsletter", "Unsubscribe from the newsletter with the link at the bottom of any email."),
]
PII_IN_QUESTIONS = [" My email is jane.doe@example.com.", " Call me back on 555-867-5309 please."]
ANGRY_OPENERS = ["Third time asking!!! ", "This is ridiculous. "]
COMPLAINTS = {
    "refusal": ("That's not what I asked!!! {question}", "Sorry, I misunderstood. {answer}"),
    "wrong_fact": ("That's not right!!! Your own help page says something else.", "You're right, I'm sorry. {answer}"),
}
CLOSERS = [("ok thanks", "You're welcome, have a great day!"), ("perfect, thank you!", "Happy to help!")]
SATISFIED_AFTER_COMPLAINT = ("ok, that works. thanks", "You're welcome, and sorry again for the trouble!")
GIVES_UP = ("this is useless, I want to talk to a human", "I'm sorry. A colleague will email you today.")
TOOL_ERRORS = ["{tool} timed out after 10000 ms", "{tool} failed: upstream service returned 502"]
MODEL_ERRORS = [f"OpenAI API error 429: rate limit exceeded for {MODEL}", "model request timed out after 30 s"]
# Relative traffic per hour of day (UTC), so charts show a daily rhythm.
HOURLY_RHYTHM = [2, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 9, 9, 10, 10, 9, 8, 8, 7, 6, 5, 4, 3]


@dataclass
class Turn:
    """One trace of a conversation: what the customer wrote and what the agent answers (unless the turn fails)."""

    question: str
    answer: str
    fault: str = ""  # refusal | wrong_fact | rude (see DEMO_FAULTS); "" when the answer is fine
    pii: bool = False  # someone's personal data in the answer
    frustrated: bool = False  # the customer's message shows frustration
    step: Step | None = None  # the thread step it answers (None for complaints and goodbyes)


@dataclass
class Planted:
    """What the script put in one trace (for the tests and the docs): the thread, and the faults of its answer."""

    intent: str
    version: str
    faults: set[str] = field(default_factory=set)  # of DEMO_FAULTS; empty for a good answer or no answer
    answered: bool = True


@dataclass
class DemoData:
    traces: list[TraceIn]
    planted: dict[str, Planted]  # by trace id
    frustration: dict[str, str]  # session id → none | resolved | unresolved, as scripted


def build_traces(rng: random.Random, count: int, id_prefix: str, first_number: int) -> list[TraceIn]:
    return build_demo(rng, count, id_prefix, first_number).traces


def build_demo(rng: random.Random, count: int, id_prefix: str, first_number: int) -> DemoData:
    """`count` traces over the last DAYS days, about SESSION_SHARE of them in conversations of 2-6 turns. The
    content depends on the seed only: the rng is drawn from the same number of times whatever the clock says."""
    now = timezone.now()
    session_target = round(count * SESSION_SHARE)
    lengths: list[int] = []
    while session_target - sum(lengths) >= 2:
        lengths.append(min(rng.randint(2, MAX_TURNS), session_target - sum(lengths)))
    lengths += [1] * (count - sum(lengths))
    rng.shuffle(lengths)
    hours = DAYS * 24
    hour_weights = [recency_weight(age) * HOURLY_RHYTHM[(now - timedelta(hours=age + 0.5)).hour] for age in range(hours)]
    demo = DemoData([], {}, {})
    for position, length in enumerate(lengths):
        number = first_number + len(demo.traces)
        # Which side of the release comes first, from the seed alone, so the content never depends on the clock.
        version = NEW_VERSION if position < max(2, count // 80) or rng.random() < NEW_VERSION_SHARE else OLD_VERSION
        if position < max(2, count // 80):  # a few in the last hour, so "recent" views aren't empty
            age_hours = rng.uniform(1, 55) / 60
        else:
            side = range(RELEASE_AGE_HOURS) if version == NEW_VERSION else range(RELEASE_AGE_HOURS, hours)
            age_hours = rng.choices(side, weights=[hour_weights[age] for age in side])[0] + rng.random()
        thread = rng.choice(THREADS)
        turns = conversation(rng, thread, length, version)
        gaps = [timedelta(seconds=rng.randint(40, 300)) for _ in turns[1:]]
        start = min(now - timedelta(hours=age_hours), now - sum(gaps, timedelta(minutes=1)))
        session_id = f"{id_prefix}session-{number}" if length > 1 else None
        context: dict[str, Any] = {
            "session_id": session_id,
            "user_id": f"customer-{rng.randint(1000, 9999)}" if length > 1 or rng.random() < 0.6 else None,
            "metadata": {
                "environment": "production" if rng.random() < 0.75 else "staging",
                "app_version": version,
                "intent": thread.intent,
            },
            "tags": {"team": "support"} if rng.random() < 0.6 else {},
        }
        history: list[dict[str, Any]] = []
        for index, (turn, gap) in enumerate(zip(turns, [*gaps, timedelta()])):
            trace_id = f"{id_prefix}{first_number + len(demo.traces)}"
            trace = build_trace(rng, trace_id, thread, turn, history, start, context, first_turn=index == 0)
            demo.traces.append(trace)
            agent = trace.spans[0]
            answered = agent.status == "OK"
            faults = ({turn.fault} - {""}) | ({"pii"} if turn.pii else set())
            demo.planted[trace_id] = Planted(thread.intent, version, faults if answered else set(), answered)
            history.append(agent.inputs["messages"][-1])
            if agent.outputs:
                history.append({"role": "assistant", "content": agent.outputs["content"]})
            start += gap
        if session_id:
            demo.frustration[session_id] = frustration_outcome(turns)
    return demo


def recency_weight(age_hours: int) -> float:
    return math.exp(-age_hours / 96)  # today is about five times as busy as a week ago


def conversation(rng: random.Random, thread: Thread, length: int, version: str) -> list[Turn]:
    """The turns of one conversation along `thread`: its steps in order, a complaint (and the agent's correction)
    right after a refusal or a wrong fact, and a goodbye that depends on how it went."""
    filled = {"order": str(rng.randint(10000, 99999)), "product": rng.choice(PRODUCTS), "size": rng.choice(SIZES)}
    angry = length > 1 and rng.random() < ANGRY_OPENER_SHARE
    steps = list(thread.steps)
    turns: list[Turn] = []
    while len(turns) < length:
        previous = turns[-1] if turns else None
        if previous and previous.step and previous.fault in COMPLAINTS:  # always heard, even as the last word
            question, answer = COMPLAINTS[previous.fault]
            turns.append(Turn(question.format(question=previous.step.user.format(**filled)),
                              answer.format(answer=previous.step.answer.format(**filled)), frustrated=True))
        elif length > 1 and len(turns) == length - 1:
            if any(turn.frustrated for turn in turns):
                question, answer = SATISFIED_AFTER_COMPLAINT if rng.random() < 0.65 else GIVES_UP
                turns.append(Turn(question, answer, frustrated=question == GIVES_UP[0]))
            else:
                turns.append(Turn(*rng.choice(CLOSERS)))
        else:
            turns.append(thread_turn(rng, steps.pop(0), filled, version, first=not turns, angry=angry))
    return turns


def thread_turn(rng: random.Random, step: Step, filled: dict[str, str], version: str, *, first: bool, angry: bool) -> Turn:
    question = step.user.format(**filled)
    if first and angry:
        question = rng.choice(ANGRY_OPENERS) + question
    if first and rng.random() < 0.04:
        question += rng.choice(PII_IN_QUESTIONS)  # the customer's own data: not a leak
    turn = Turn(question, step.answer.format(**filled), step=step, frustrated=first and angry)
    shares = FAULT_SHARES[version]
    roll = rng.random()
    if roll < shares["refusal"]:
        turn.answer, turn.fault = rng.choice(REFUSALS), "refusal"
    elif roll < shares["refusal"] + shares["wrong_fact"]:
        if step.wrong:  # a step that states no figure has no wrong version: the answer stays good
            turn.answer, turn.fault = step.wrong.format(**filled), "wrong_fact"
    elif roll < shares["refusal"] + shares["wrong_fact"] + shares["rude"]:
        turn.answer, turn.fault = RUDE_OPENING + turn.answer[0].lower() + turn.answer[1:], "rude"
    if rng.random() < PII_LEAK_SHARE and turn.fault != "refusal":
        turn.answer, turn.pii = turn.answer + rng.choice(PII_LEAKS), True
    return turn


def frustration_outcome(turns: list[Turn]) -> str:
    """What UserFrustration should say: none, or whether the customer's last message still sounds frustrated."""
    if not any(turn.frustrated for turn in turns):
        return "none"
    return "unresolved" if turns[-1].frustrated else "resolved"


class ChildSpans:
    """Lays the agent's child spans one after another, each starting a few ms after the previous one ends."""

    def __init__(self, rng: random.Random, trace_id: str, root_id: str, start: datetime) -> None:
        self.rng, self.trace_id, self.root_id = rng, trace_id, root_id
        self.clock = start + timedelta(milliseconds=rng.randint(2, 15))
        self.spans: list[SpanIn] = []

    def add(self, name: str, span_type: str, min_ms: int, max_ms: int, **fields: Any) -> SpanIn:
        started = self.clock
        self.clock += timedelta(milliseconds=self.rng.randint(min_ms, max_ms))
        span = SpanIn(span_id=f"{self.trace_id}-{len(self.spans) + 1}", parent_span_id=self.root_id, name=name,
                      span_type=span_type, started_at=started, ended_at=self.clock, status="OK", **fields)
        self.spans.append(span)
        self.clock += timedelta(milliseconds=self.rng.randint(1, 12))
        return span

    def chat(self, prompt: list[dict[str, Any]], reply: dict[str, Any] | None, failure: str = "") -> None:
        attributes = {
            "gen_ai.request.model": MODEL,
            "gen_ai.usage.input_tokens": len(json.dumps(prompt)) // 4 + self.rng.randint(0, 40),
            "gen_ai.usage.output_tokens": len(json.dumps(reply)) // 4 if reply else 0,
        }
        span = self.add(f"chat {MODEL}", "CHAT_MODEL", 500, 3500, inputs={"messages": list(prompt)}, outputs=reply,
                        attributes=attributes)
        if failure:
            span.status, span.status_message = "ERROR", failure


def build_trace(
    rng: random.Random,
    trace_id: str,
    thread: Thread,
    turn: Turn,
    history: list[dict[str, Any]],
    start: datetime,
    context: dict[str, Any],
    *,
    first_turn: bool,
) -> TraceIn:
    tool = thread.tool if first_turn and rng.random() < 0.65 else None
    failing = rng.random() < FAILURE_SHARE
    tool_error = rng.choice(TOOL_ERRORS).format(tool=tool) if failing and tool and rng.random() < 0.6 else ""
    model_error = rng.choice(MODEL_ERRORS) if failing and not tool_error else ""
    messages = [*history, {"role": "user", "content": turn.question}]

    root_id = f"{trace_id}-agent"
    children = ChildSpans(rng, trace_id, root_id, start)
    path, article = thread.article
    documents = [{"page_content": article, "metadata": {"source": path}}]
    if rng.random() < 0.5:  # retrieval is not perfect: an unrelated article often comes along
        other_path, other_article = rng.choice(UNRELATED_ARTICLES)
        documents.append({"page_content": other_article, "metadata": {"source": other_path}})
    children.add("search_help_center", "RETRIEVER", 60, 600, inputs={"query": turn.question}, outputs=documents)
    context_text = "\n".join(document["page_content"] for document in documents)
    prompt = [{"role": "system", "content": f"{SYSTEM_PROMPTS[context['metadata']['app_version']]}\n\n{context_text}"},
              *messages]
    first_reply = tool_call(tool, turn.question) if tool else assistant(turn.answer)
    children.chat(prompt, None if model_error else first_reply, model_error)
    if tool and not model_error:
        tool_input, tool_output = tool_io(rng, tool, turn.question)
        low, high = (8000, 10000) if tool_error else (40, 1500)
        span = children.add(tool, "TOOL", low, high, inputs=tool_input, outputs=None if tool_error else tool_output)
        if tool_error:
            span.status, span.status_message = "ERROR", tool_error
        else:
            prompt += [first_reply["choices"][0]["message"], {"role": "tool", "content": json.dumps(tool_output)}]
            children.chat(prompt, assistant(turn.answer))
    error = tool_error or model_error
    agent = SpanIn(
        span_id=root_id,
        name="support_agent",
        span_type="AGENT",
        started_at=start,
        ended_at=children.clock + timedelta(milliseconds=rng.randint(3, 30)),
        status="ERROR" if error else "OK",
        status_message=error,
        inputs={"messages": messages},
        outputs=None if error else {"content": turn.answer},
    )
    return TraceIn(trace_id=trace_id, spans=[agent, *children.spans], **context)


def assistant(content: str) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def tool_call(tool: str, question: str) -> dict[str, Any]:
    call = {"type": "function", "function": {"name": tool, "arguments": json.dumps({"question": question})}}
    return {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}


def tool_io(rng: random.Random, tool: str, question: str) -> tuple[dict[str, Any], dict[str, Any]]:
    order_id = next((word.strip("#?.,!") for word in question.split() if word.startswith("#")), "")
    order_id = order_id or str(rng.randint(10000, 99999))
    if tool == "lookup_order":
        status = rng.choice(["processing", "shipped", "shipped", "delivered"])
        return {"order_id": order_id}, {"order_id": order_id, "status": status, "carrier": "UPS"}
    if tool == "issue_refund":
        amount = round(rng.uniform(15, 240), 2)
        refund = {"refund_id": f"R-{rng.randint(100000, 999999)}", "status": "pending", "amount": amount}
        return {"order_id": order_id, "amount": amount, "reason": "damaged item"}, refund
    sku = f"SKU-{rng.randint(1000, 9999)}"
    return {"sku": sku, "size": rng.choice(SIZES)}, {"sku": sku, "in_stock": False, "quantity": 0}
