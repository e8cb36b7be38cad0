"""`manage.py demo`: an experiment full of realistic customer-support agent traces, to explore the app with.

Everything is written through `ingest_traces`, so the demo exercises the same path as the API and OTLP.
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.utils import timezone

from judges.actions import create_endpoint, create_judge
from judges.models import Judge, ModelEndpoint
from traces.actions import create_experiment, ingest_traces
from traces.models import Experiment, Trace
from traces.records import SpanIn, TraceIn

MODEL = "gpt-4.1-mini"
STANDIN_URL = "http://127.0.0.1:8910/v1"
STANDIN_ENDPOINT = "Stand-in model (not a real LLM)"
DEMO_JUDGES: dict[str, dict[str, Any]] = {
    "relevance_to_query": {"builtin_key": "RelevanceToQuery"},
    "pii_leakage": {"builtin_key": "PIILeakage"},
    "retrieval_groundedness": {
        "builtin_key": "RetrievalGroundedness",
        "sample_rate": 0.5,
        "filter_string": "metadata.environment = 'production'",
    },
    "polite_tone": {
        "instructions": (
            "Is {{ outputs }} polite and professional in tone, as a reply to {{ inputs }}? "
            "Blunt is fine; rude, sarcastic or dismissive is not."
        ),
        "output_type": "boolean",
    },
    "answer_quality": {
        "instructions": "Rate how well {{ outputs }} resolves the customer's request in {{ inputs }}, 1 (not at all) to 5 (fully).",
        "output_type": "integer",
        "min_value": 1,
        "max_value": 5,
    },
    "user_frustration": {"scope": "session", "builtin_key": "UserFrustration", "session_idle_seconds": 120},
    "conversation_completeness": {"scope": "session", "builtin_key": "ConversationCompleteness"},
}
BATCH_SIZE = 200
SESSION_SHARE = 0.4
SYSTEM_PROMPT = "You are ShopWise's support assistant. Answer from the help-center articles; be brief and kind."
PRODUCTS = ["trail running shoes", "rain jacket", "merino hoodie", "espresso grinder", "yoga mat", "desk lamp"]
TOOLS = {"order": "lookup_order", "refund": "issue_refund", "product": "check_stock"}
HELP_ARTICLES = {
    "order": ("help/orders/tracking", "Orders ship within 1-2 business days; tracking is emailed on dispatch."),
    "refund": ("help/returns/policy", "Returns are free within 30 days. Refunds reach the card 5-10 days later."),
    "shipping": ("help/shipping/rates", "We ship to the US, Canada and the EU. Express (1-2 days) costs $12."),
    "account": ("help/account/password", "Password reset emails can take 10 minutes and may land in spam."),
    "product": ("help/products/stock", "Stock updates hourly. Use 'notify me' on a product page for restocks."),
}
# (topic, question, a good answer). Placeholders: {order}, {product}.
QUESTIONS = [
    ("order", "Where is my order #{order}?", "Order #{order} shipped yesterday with UPS; it arrives within 2 days."),
    ("order", "My order #{order} still hasn't shipped, what's going on?",
     "Order #{order} is packed and leaves our warehouse today; tracking follows by email."),
    ("order", "Can I change the delivery address on order #{order}?",
     "Yes, until it ships. Reply with the new address and I'll update #{order}."),
    ("order", "I ordered the wrong size {product}, can I cancel order #{order}?",
     "Order #{order} hadn't shipped, so I've cancelled it; you can reorder the right size now."),
    ("refund", "How do I return the {product} I bought last week?",
     "Returns are free within 30 days: print the label under Orders > Return item and drop it at UPS."),
    ("refund", "I want a refund for order #{order}, the {product} arrived broken.",
     "Sorry about that! I've refunded #{order} in full; it reaches your card in 5-10 days."),
    ("refund", "It's been 10 days and I still haven't received my refund for #{order}.",
     "The refund for #{order} left us on the 3rd; banks can take up to 10 business days to show it."),
    ("refund", "Can I get store credit instead of a refund?", "Yes: pick 'store credit' when you start the return."),
    ("shipping", "Do you ship to Canada?", "Yes, in 4-7 business days, with duties included at checkout."),
    ("shipping", "How much is express shipping?", "Express is $12 and takes 1-2 business days; free over $150."),
    ("shipping", "What's the cut-off time for next-day delivery?", "Order Express before 2pm on a weekday."),
    ("shipping", "Can I pick up my order in store?", "Yes, choose Click & Collect; it's usually ready in 4 hours."),
    ("account", "I can't log in to my account, the reset email never arrives.",
     "Reset emails can take 10 minutes and sometimes land in spam; I've just sent a fresh one."),
    ("account", "How do I change the email address on my account?",
     "Go to Account > Profile > Email, enter the new address and confirm it from the link we send."),
    ("account", "Please delete my account and all my data.", "Done: your data is erased within 30 days."),
    ("account", "Why was my card declined at checkout?",
     "Declines come from your bank; check the billing address matches, or pay with PayPal instead."),
    ("product", "Is the {product} in stock in size M?", "Yes, the {product} is in stock in M and ships today."),
    ("product", "Is the {product} waterproof?", "The {product} is water-resistant: fine in light rain, not a storm."),
    ("product", "When will the {product} be back in stock?", "The {product} is due back on the 14th."),
    ("product", "Does the {product} come with a warranty?", "Yes, a 2-year warranty against manufacturing defects."),
]
# Later turns of a session, per topic, in conversation order: (user turn, a good answer).
FOLLOW_UPS = {
    "order": [
        ("It says delivered but I don't have it.", "If it hasn't turned up by tomorrow I'll send a replacement."),
        ("Can you just send a replacement now?", "Sent by express; tracking follows within the hour."),
        ("Will I be charged for it?", "No, the replacement is free of charge."),
        ("And if the first one shows up?", "Keep it or return it with the free label, whichever you like."),
    ],
    "refund": [
        ("How long does the refund take?", "5-10 business days after the item reaches our warehouse."),
        ("Do I get the shipping cost back too?", "Yes, shipping is refunded when the item arrived damaged."),
        ("Can I just get a new one instead?", "Of course, I've switched the return to an exchange."),
        ("Do I still need to send the broken one back?", "No need, please recycle it."),
    ],
    "shipping": [
        ("How long does it take?", "4-7 business days standard, 2-3 with express."),
        ("Are there customs fees on top?", "No, duties are included in the price at checkout."),
        ("Can I track it the whole way?", "Yes, the tracking link works until the parcel is at your door."),
        ("What if nobody is home?", "The carrier leaves it at the nearest pickup point for 7 days."),
    ],
    "account": [
        ("I tried that already, nothing arrives.", "I've resent it from our backup mail server."),
        ("Still nothing, I checked spam too.", "I've verified you manually; log in with a one-time code now."),
        ("Got the code, I'm in.", "Great! Please set a new password under Account > Security."),
        ("Will my saved addresses still be there?", "Yes, nothing on your account has changed."),
    ],
    "product": [
        ("What about size L?", "Size L is out of stock; it's due back next week."),
        ("Can you notify me when it's back?", "Done, you'll get an email the moment size L is back."),
        ("Is there a similar one in stock?", "The 2024 model is very similar and in stock in L."),
        ("Can I return it if it doesn't fit?", "Yes, free returns within 30 days."),
    ],
}
CLOSERS = [  # the last one is how a frustrated customer leaves
    ("ok thanks", "You're welcome, have a great day!"),
    ("perfect, thank you!", "Happy to help!"),
    ("this is useless, I want to talk to a human", "I'm sorry. A colleague will email you within 24 hours."),
]
UNHELPFUL_ANSWERS = [
    "I'm sorry, I can only help with questions about ShopWise products and orders.",
    "Please refer to our help center for more information.",
    "Our summer collection has arrived! Check out the new trail running shoes in five colours.",
    "I understand your frustration. Is there anything else I can help you with?",
]
PII_IN_ANSWERS = [
    " Anything else? Write to our returns lead at maria.lopez@shopwise-example.com.",
    " You can also call our warehouse directly on +1 (415) 555-0132.",
]
PII_IN_QUESTIONS = [" My email is jane.doe@example.com.", " Call me back on 555-867-5309 please."]
RUDE_OPENERS = ["This is ridiculous. ", "Third time asking!!! ", "Your service is terrible. "]
TOOL_ERRORS = ["{tool} timed out after 10000 ms", "{tool} failed: upstream service returned 502"]
MODEL_ERRORS = [f"OpenAI API error 429: rate limit exceeded for {MODEL}", "model request timed out after 30 s"]
# Relative traffic per hour of day (UTC), so charts show a daily rhythm.
HOURLY_RHYTHM = [2, 1, 1, 1, 1, 2, 3, 5, 7, 9, 10, 10, 9, 9, 10, 10, 9, 8, 8, 7, 6, 5, 4, 3]


@dataclass
class Turn:
    topic: str
    question: str
    answer: str  # the good answer; build_trace sometimes gives a bad one instead


class Command(BaseCommand):
    help = "Create a demo experiment of realistic customer-support agent traces, and a demo login."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--experiment", default="demo-agent", help="experiment name (default: demo-agent)")
        parser.add_argument("--traces", type=int, default=400, help="how many traces to add (default: 400)")
        parser.add_argument("--seed", type=int, default=7, help="the same seed gives the same content")
        parser.add_argument("--if-missing", action="store_true", help="do nothing if the experiment has traces")
        parser.add_argument("--reset", action="store_true", help="delete the experiment and its traces first")
        parser.add_argument("--user", default="demo", help="login to create if missing (default: demo)")
        parser.add_argument("--password", default="demo", help="its password; an existing user's is never changed")
        parser.add_argument(
            "--standin-url",
            default=os.environ.get("EVALAPP_STANDIN_URL", STANDIN_URL),
            help="api_base of the stand-in model server (manage.py standin_llm)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.ensure_user(options["user"], options["password"])
        self.ensure_user("viewer", "viewer", editor=False)  # to see what a read-only colleague sees
        name: str = options["experiment"]
        if options["reset"]:
            Experiment.objects.filter(name=name).delete()
        experiment = Experiment.objects.filter(name=name).first() or create_experiment(
            name, "Demo data: an e-commerce customer-support agent."
        )
        self.ensure_judges(experiment, self.ensure_standin_endpoint(options["standin_url"]))
        if options["if_missing"] and experiment.traces.exists():
            self.stdout.write(f"Experiment {name!r} already has traces; no demo data added.")
            return
        seed: int = options["seed"]
        id_prefix = f"demo-{seed}-"
        traces = build_traces(random.Random(seed), options["traces"], id_prefix, next_free_number(id_prefix))
        for start in range(0, len(traces), BATCH_SIZE):
            ingest_traces(experiment, traces[start : start + BATCH_SIZE])
        sessions = len({trace.session_id for trace in traces if trace.session_id})
        errors = sum(1 for trace in traces if trace.spans[0].status == "ERROR")
        self.stdout.write(
            f"Experiment {name!r} (id {experiment.pk}): added {len(traces)} traces ({errors} errors, "
            f"{sessions} sessions); it now has {experiment.traces.count()} traces."
        )

    def ensure_standin_endpoint(self, api_base: str) -> ModelEndpoint:
        endpoint = ModelEndpoint.objects.filter(name=STANDIN_ENDPOINT).first()
        if endpoint is None:
            endpoint = create_endpoint(
                name=STANDIN_ENDPOINT,
                model="openai/evalapp-standin",
                api_base=api_base,
                api_key="standin-demo-key",
                max_concurrency=16,
                timeout_seconds=30,
                # Priced like a small real model, so cost charts and caps have something to show.
                input_cost_per_million="0.40",
                output_cost_per_million="1.60",
                context_window=128_000,
                is_standin=True,
            )
            self.stdout.write(f"Created model endpoint {STANDIN_ENDPOINT!r} -> {api_base}")
        return endpoint

    def ensure_judges(self, experiment: Experiment, endpoint: ModelEndpoint) -> None:
        for name, fields in DEMO_JUDGES.items():
            if not Judge.objects.filter(experiment=experiment, name=name).exists():
                create_judge(experiment, name=name, endpoint=endpoint, active=True, **fields)

    def ensure_user(self, username: str, password: str, *, editor: bool = True) -> None:
        User = get_user_model()
        if User.objects.filter(username=username).exists():
            return
        User.objects.create_user(username=username, password=password, is_staff=editor)
        role = "an editor (staff)" if editor else "a viewer (can read and give feedback, not change judges)"
        self.stdout.write(f"Created user {username!r}, {role}: log in as {username} / {password}")


def next_free_number(id_prefix: str) -> int:
    """One past the highest `<id_prefix><n>` stored in any experiment (trace ids are global), so a second run
    adds new traces instead of colliding with the first."""
    numbers = [
        int(suffix)
        for trace_id in Trace.objects.filter(trace_id__startswith=id_prefix).values_list("trace_id", flat=True)
        if (suffix := trace_id[len(id_prefix) :]).isdigit()
    ]
    return max(numbers, default=-1) + 1


def build_traces(rng: random.Random, count: int, id_prefix: str, first_number: int) -> list[TraceIn]:
    """`count` traces, about SESSION_SHARE of them in sessions of 2-6 turns. The rng is drawn from the same
    number of times whatever the clock says, so a seed always gives the same content."""
    now = timezone.now()
    session_target = round(count * SESSION_SHARE)
    lengths: list[int] = []
    while session_target - sum(lengths) >= 2:
        lengths.append(min(rng.randint(2, 6), session_target - sum(lengths)))
    lengths += [1] * (count - sum(lengths))
    rng.shuffle(lengths)
    hour_weights = [recency_weight(age) * HOURLY_RHYTHM[(now - timedelta(hours=age + 0.5)).hour] for age in range(168)]
    traces: list[TraceIn] = []
    for position, length in enumerate(lengths):
        number = first_number + len(traces)
        turns = conversation(rng, length)
        gaps = [timedelta(seconds=rng.randint(40, 300)) for _ in turns[1:]]
        if position < max(2, count // 80):  # a few in the last hour, so "recent" views aren't empty
            start = now - timedelta(minutes=rng.uniform(1, 55))
        else:
            start = now - timedelta(hours=rng.choices(range(168), weights=hour_weights)[0] + rng.random())
        start = min(start, now - sum(gaps, timedelta(minutes=1)))
        context: dict[str, Any] = {
            "session_id": f"{id_prefix}session-{number}" if length > 1 else None,
            "user_id": f"customer-{rng.randint(1000, 9999)}" if length > 1 or rng.random() < 0.6 else None,
            "metadata": {
                "environment": "production" if rng.random() < 0.75 else "staging",
                "app_version": rng.choice(["1.4.0", "1.5.0", "1.5.0"]),
            },
            "tags": {"team": "support"} if rng.random() < 0.6 else {},
        }
        history: list[dict[str, Any]] = []
        for turn, gap in zip(turns, [*gaps, timedelta()]):
            trace = build_trace(rng, f"{id_prefix}{first_number + len(traces)}", turn, history, start, context)
            traces.append(trace)
            agent = trace.spans[0]
            history.append(agent.inputs["messages"][-1])
            if agent.outputs:
                history.append({"role": "assistant", "content": agent.outputs["content"]})
            start += gap
    return traces


def recency_weight(age_hours: int) -> float:
    return math.exp(-age_hours / 96)  # today is about five times as busy as a week ago


def conversation(rng: random.Random, length: int) -> list[Turn]:
    topic, question, answer = rng.choice(QUESTIONS)
    filled = {"order": str(rng.randint(10000, 99999)), "product": rng.choice(PRODUCTS)}
    frustrated = rng.random() < 0.1
    opener = rng.choice(RUDE_OPENERS) if frustrated else ""
    turns = [Turn(topic, opener + question.format(**filled), answer.format(**filled))]
    turns += [Turn(topic, *follow_up) for follow_up in FOLLOW_UPS[topic][: max(0, length - 2)]]
    if length > 1:
        turns.append(Turn(topic, *(CLOSERS[-1] if frustrated else rng.choice(CLOSERS))))
    return turns


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
    turn: Turn,
    history: list[dict[str, Any]],
    start: datetime,
    context: dict[str, Any],
) -> TraceIn:
    question = turn.question + (rng.choice(PII_IN_QUESTIONS) if rng.random() < 0.04 else "")
    answer = turn.answer if rng.random() < 0.75 else rng.choice(UNHELPFUL_ANSWERS)
    answer += rng.choice(PII_IN_ANSWERS) if rng.random() < 0.06 else ""
    tool = TOOLS.get(turn.topic) if not history and rng.random() < 0.65 else None
    failing = rng.random() < 0.1
    tool_error = rng.choice(TOOL_ERRORS).format(tool=tool) if failing and tool and rng.random() < 0.6 else ""
    model_error = rng.choice(MODEL_ERRORS) if failing and not tool_error else ""
    messages = [*history, {"role": "user", "content": question}]

    root_id = f"{trace_id}-agent"
    children = ChildSpans(rng, trace_id, root_id, start)
    path, article = HELP_ARTICLES[turn.topic]
    documents = [{"page_content": article, "metadata": {"source": path}}]
    if rng.random() < 0.5:  # retrieval is not perfect: an unrelated article often comes along
        other_path, other_article = rng.choice([HELP_ARTICLES[t] for t in HELP_ARTICLES if t != turn.topic])
        documents.append({"page_content": other_article, "metadata": {"source": other_path}})
    children.add("search_help_center", "RETRIEVER", 60, 600, inputs={"query": question}, outputs=documents)
    context_text = "\n".join(document["page_content"] for document in documents)
    prompt = [{"role": "system", "content": f"{SYSTEM_PROMPT}\n\n{context_text}"}, *messages]
    first_reply = tool_call(tool, question) if tool else assistant(answer)
    children.chat(prompt, None if model_error else first_reply, model_error)
    if tool and not model_error:
        tool_input, tool_output = tool_io(rng, tool, question)
        low, high = (8000, 10000) if tool_error else (40, 1500)
        span = children.add(tool, "TOOL", low, high, inputs=tool_input, outputs=None if tool_error else tool_output)
        if tool_error:
            span.status, span.status_message = "ERROR", tool_error
        else:
            prompt += [first_reply["choices"][0]["message"], {"role": "tool", "content": json.dumps(tool_output)}]
            children.chat(prompt, assistant(answer))
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
        outputs=None if error else {"content": answer},
    )
    return TraceIn(trace_id=trace_id, spans=[agent, *children.spans], **context)


def assistant(content: str) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": content}}]}


def tool_call(tool: str, question: str) -> dict[str, Any]:
    call = {"type": "function", "function": {"name": tool, "arguments": json.dumps({"question": question})}}
    return {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}


def tool_io(rng: random.Random, tool: str, question: str) -> tuple[dict[str, Any], dict[str, Any]]:
    order_id = next((word.strip("#?.,") for word in question.split() if word.startswith("#")), "")
    order_id = order_id or str(rng.randint(10000, 99999))
    if tool == "lookup_order":
        status = rng.choice(["processing", "shipped", "shipped", "delivered"])
        return {"order_id": order_id}, {"order_id": order_id, "status": status, "carrier": "UPS", "eta_days": 2}
    if tool == "issue_refund":
        amount = round(rng.uniform(15, 240), 2)
        refund = {"refund_id": f"R-{rng.randint(100000, 999999)}", "status": "pending", "amount": amount}
        return {"order_id": order_id, "amount": amount, "reason": "damaged item"}, refund
    sku = f"SKU-{rng.randint(1000, 9999)}"
    quantity = rng.choice([0, 0, 3, 12, 40])
    stock = {"sku": sku, "in_stock": quantity > 0, "quantity": quantity}
    return {"sku": sku, "size": rng.choice(["S", "M", "L"])}, stock
