"""How the stand-in reads a judge prompt and reaches a verdict, the way a model would: the `Answer type:` line in
the system message, the `⟦BEGIN …⟧ … ⟦END …⟧` data blocks in the user message, and cues in the data. Which cues
count depends on the task (relevance → refusals and brush-offs; groundedness → figures the retrieved context does
not contain; PII → emails and phone numbers; frustration → complaints; tone → rudeness; anything else → a general
set), and where they are looked for too: answer cues in the response (the OUTPUTS block, or the assistant's turns
of a conversation), frustration in what the user wrote.

Deterministic, with a small share of deliberately wrong verdicts (NOISE_SHARE) so results are not perfectly
clean. A wrong verdict comes with a rationale that argues for it (a cue overlooked, or a problem imagined), never
with the rationale of the right one: the rationale and the result always agree. Every rationale starts with
RATIONALE_PREFIX so nobody mistakes it for a real model's judgement. Pure functions, stdlib only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

RATIONALE_PREFIX = "[stand-in model] "
# Share of prompts whose verdict is deliberately wrong, so results are not perfectly clean.
NOISE_SHARE = 0.05

_SUFFIXES = r"(?:s|d|ed|ing|er|ers|ful)?"
_CUE_PHRASES = {
    "unhelpful": [
        "i don't know", "i'm not sure", "cannot help", "can't help", "not able to help", "can only help", "no idea",
        "unrelated", "as an ai",
    ],
    "frustration": [
        "useless", "ridiculous", "terrible", "worst", "talk to a human", "real person", "!!!", "???", "angry",
        "waste of time", "not what i asked",
    ],
    "error": ["error", "timed out", "exception", "traceback", "sent no answer"],
    "unsafe": ["kill", "bomb", "weapon", "hate"],
    "rude": ["as i said", "as i already said", "calm down", "not my problem", "read it before asking", "obviously"],
}


def _phrase_pattern(phrase: str) -> str:
    # Word boundaries keep "skill" from reading as "kill" and "as an airline" from reading as "as an ai".
    escaped = re.escape(phrase)
    if not phrase[0].isalnum():
        return escaped
    return rf"\b{escaped}{_SUFFIXES}\b" if phrase[-1].isalnum() else rf"\b{escaped}"


_CUE_PATTERNS = {
    category: re.compile("|".join(_phrase_pattern(phrase) for phrase in phrases), re.IGNORECASE)
    for category, phrases in _CUE_PHRASES.items()
}
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{7,}\d")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INJECTION = re.compile(r"\b(?:ignore|disregard|forget)\b[^.\n]{0,40}\binstructions\b", re.IGNORECASE)
_DATA_BLOCK = re.compile(r"⟦BEGIN ([A-Z][A-Z0-9_.]*) ([^\s⟧]+)⟧\n?(.*?)\n?⟦END \1 \2⟧", re.DOTALL)
_ANSWER_TYPE = re.compile(r"^[ \t]*Answer type:[ \t]*(.+?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_TASK_SECTION = re.compile(r"^##[ \t]*Task[ \t]*$(.*?)(?=^##[ \t]|\Z)", re.MULTILINE | re.DOTALL | re.IGNORECASE)
_RANGE = re.compile(r"(?:from|between)\s+(-?\d+(?:\.\d+)?)\s+(?:to|and)\s+(-?\d+(?:\.\d+)?)", re.IGNORECASE)
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')

# category: (what a rationale says it found, what it says it looked for, a short name for string answers)
_CATEGORY_WORDS = {
    "unhelpful": ("an unhelpful or off-topic answer", "unhelpful or off-topic answers", "unhelpful answer"),
    "frustration": ("signs of user frustration", "signs of user frustration", "frustration"),
    "error": ("an error", "errors", "error"),
    "personal_data": ("personal data", "personal data", "personal data"),
    "unsafe": ("potentially unsafe content", "unsafe content", "unsafe content"),
    "rude": ("a rude or dismissive tone", "a rude or dismissive tone", "rude tone"),
    "ungrounded": (
        "a claim the retrieved context does not support",
        "claims the retrieved context does not support",
        "unsupported claim",
    ),
    "empty": ("nothing to judge (an input is empty)", "empty inputs", "empty input"),
}


@dataclass(frozen=True)
class Cue:
    category: str
    text: str  # as it appears in the data, for quoting


@dataclass(frozen=True)
class AnswerType:
    kind: str  # boolean | categorical | integer | float | string
    values: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Verdict:
    rationale: str
    result: str | int | float


def parse_answer_type(line: str) -> AnswerType:
    spec = line.strip()
    kind = spec.split(";")[0].split()[0].lower() if spec else "string"
    if kind.startswith("bool"):
        return AnswerType("boolean")
    if kind.startswith("categor"):
        values = tuple(_unquote(value) for value in _QUOTED.findall(spec.split(";", 1)[-1]))
        return AnswerType("categorical", values) if values else AnswerType("string")
    if kind.startswith(("int", "float", "number")):
        numeric = "integer" if kind.startswith("int") else "float"
        bounds = _RANGE.search(spec)
        if bounds:
            low, high = sorted(float(bound) for bound in bounds.groups())
            return AnswerType(numeric, low=low, high=high)
        return AnswerType(numeric)
    return AnswerType("string")


def _unquote(value: str) -> str:
    try:
        return json.loads(f'"{value}"')
    except ValueError:
        return value


def find_cues(data: str, categories: set[str]) -> list[Cue]:
    """Distinct problem cues of the given categories in `data`, in order of first appearance."""
    text = data.replace("\u2019", "'").replace("\\u2019", "'")
    found: list[tuple[int, Cue]] = []
    for category, pattern in _CUE_PATTERNS.items():
        if category in categories:
            found += [(match.start(), Cue(category, match.group())) for match in pattern.finditer(text)]
    if "personal_data" in categories:
        found += [(match.start(), Cue("personal_data", match.group())) for match in _EMAIL.finditer(text)]
        found += [
            (match.start(), Cue("personal_data", match.group().strip()))
            for match in _PHONE.finditer(text)
            if sum(char.isdigit() for char in match.group()) >= 9 and not _ISO_DATE.search(match.group())
        ]
    distinct: dict[tuple[str, str], Cue] = {}
    for _, cue in sorted(found, key=lambda item: item[0]):
        distinct.setdefault((cue.category, cue.text.lower()), cue)
    return list(distinct.values())


_GENERAL_CATEGORIES = {"unhelpful", "frustration", "error", "unsafe"}
# Cues of these categories are looked for in the application's answer; frustration in what the user wrote.
_ANSWER_CATEGORIES = {"unhelpful", "error", "unsafe", "rude", "personal_data"}
_ROLE_LINE = re.compile(r"^\s*(user|assistant)\s*:\s?(.*)$", re.IGNORECASE)
_TURN_LINE = re.compile(r"^\s*Turn \d+\s*$")
# A figure a claim rests on: an amount, a count of days, a time, a date ("$12", "30 days", "2pm", "the 14th").
# "#48213" is an identifier, not a figure.
_FIGURE = re.compile(
    r"(?<![\w#.,-])\$?\d+(?:[.,]\d+)?(?:-\d+(?:[.,]\d+)?)?"
    r"(?:(?:[ -](?:business days|days?|hours?|minutes?|weeks?|years?))|am|pm|%|st|nd|rd|th)?(?!\w)",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_SATISFIED = re.compile(r"\b(?:thanks?|thank you|great|perfect|got it)\b", re.IGNORECASE)


def relevant_categories(task: str) -> set[str]:
    """Which cue categories the judge's task cares about; a task about nothing in particular gets the general set."""
    lowered = task.lower()
    chosen = set()
    if "frustrat" in lowered:
        chosen.add("frustration")
    if re.search(r"\bpii\b", lowered) or "personal" in lowered:
        chosen.add("personal_data")
    if "safe" in lowered or re.search(r"\bharm", lowered):
        chosen.add("unsafe")
    if "grounded" in lowered:
        chosen.add("ungrounded")
    if re.search(r"\brelevan(?:t|ce)\b", lowered) and "retriev" not in lowered:
        chosen.add("unhelpful")
    if re.search(r"\b(?:polite|tone|rude)\b", lowered):
        chosen.add("rude")
    if re.search(r"\baddress(?:ed|es)? every\b", lowered):
        chosen |= {"unhelpful", "error"}
    return chosen or set(_GENERAL_CATEGORIES)


@dataclass(frozen=True)
class _Reading:
    """The prompt's data, split the way a model would read it."""

    everything: str
    answer: str  # what the application said: the OUTPUTS block, else the assistant's turns, else everything
    user: str  # what the user wrote: user turns and messages, else everything
    last_user_turn: str
    known: str  # what a grounded answer may draw on: the retrieved context and the request


def _role_parts(text: str) -> list[tuple[str, str]]:
    """(role, text) of each message in a block: a JSON {"messages": [...]} or "User: …" / "Assistant: …" lines."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        return [
            (str(message.get("role", "")).lower(), content_text(message.get("content")))
            for message in value["messages"]
            if isinstance(message, dict)
        ]
    parts: list[tuple[str, str]] = []
    for line in text.splitlines():
        role_line = _ROLE_LINE.match(line)
        if role_line:
            parts.append((role_line.group(1).lower(), role_line.group(2)))
        elif parts and not _TURN_LINE.match(line):
            parts[-1] = (parts[-1][0], f"{parts[-1][1]}\n{line}")
    return parts


def _read(blocks: list[tuple[str, str]], data: str) -> _Reading:
    labels = {label.split(".")[0]: text for label, text in reversed(blocks)}
    parts = [part for label, text in blocks if not label.startswith("OUTPUTS") for part in _role_parts(text)]
    user_turns = [text for role, text in parts if role == "user"]
    assistant_turns = [text for role, text in parts if role == "assistant"]
    if "OUTPUTS" in labels:
        answer = labels["OUTPUTS"]
    else:
        answer = "\n".join(assistant_turns) if assistant_turns else data
    known = "\n".join(text for label, text in blocks if label.startswith(("RETRIEVED_CONTEXT", "INPUTS")))
    return _Reading(
        everything=data,
        answer=answer,
        user="\n".join(user_turns) if user_turns else data,
        last_user_turn=user_turns[-1] if user_turns else data[-300:],
        known=known,
    )


def _unsupported_figures(answer: str, known: str) -> list[Cue]:
    known_numbers = set(_NUMBER.findall(known.replace(",", "")))
    cues = []
    for figure in _FIGURE.finditer(answer):
        if not set(_NUMBER.findall(figure.group().replace(",", ""))) <= known_numbers:
            cues.append(Cue("ungrounded", figure.group().strip()))
    return list({cue.text.lower(): cue for cue in reversed(cues)}.values())[::-1]


def _cues(reading: _Reading, categories: set[str]) -> list[Cue]:
    cues = find_cues(reading.answer, categories & _ANSWER_CATEGORIES)
    cues += find_cues(reading.user, categories & {"frustration"})
    if "ungrounded" in categories:
        cues += _unsupported_figures(reading.answer, reading.known)
    return cues


def _is_noisy(user_text: str, data: str) -> bool:
    if _INJECTION.search(data):
        return False
    digest = hashlib.sha256(user_text.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < NOISE_SHARE


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def judge(messages: list[dict[str, Any]]) -> Verdict | None:
    """The stand-in's verdict on a judge prompt, or None when the messages are not a judge prompt."""
    by_role: dict[str, list[str]] = {}
    for message in (message for message in messages if isinstance(message, dict)):
        by_role.setdefault(message.get("role", ""), []).append(content_text(message.get("content")))
    system = "\n".join(by_role.get("system", []) + by_role.get("developer", []))
    user = "\n".join(by_role.get("user", []))
    everything = "\n".join(text for texts in by_role.values() for text in texts)
    answer_line = _ANSWER_TYPE.search(system if system else everything)
    if not answer_line:
        return None
    answer_type = parse_answer_type(answer_line.group(1))
    task_section = _TASK_SECTION.search(system)
    task = _ANSWER_TYPE.sub("", task_section.group(1) if task_section else system)

    blocks = [(match.group(1), match.group(3)) for match in _DATA_BLOCK.finditer(user or everything)]
    data = "\n".join(text for _, text in blocks) if blocks else (user or everything)
    categories = relevant_categories(task)
    if any(label.startswith("OUTPUTS") for label, _ in blocks) and "frustrat" not in task.lower():
        categories.discard("frustration")  # a judge of one answer: an upset customer doesn't make it a bad answer
    reading = _read(blocks, data)
    cues = _cues(reading, categories)
    if any(text.strip() in ("", "null", "None", '""') for _, text in blocks):
        cues.append(Cue("empty", ""))
    if answer_type.kind == "categorical" and _is_resolution(answer_type.values):
        return _resolution(answer_type.values, cues, reading)
    # Only yes/no and category answers are ever wrong on purpose; numbers and text follow the cues.
    # Drawn per judge and data: two judges reading the same trace make their mistakes independently.
    mistaken = answer_type.kind in ("boolean", "categorical") and _is_noisy(f"{system}\n{user or everything}", data)
    problem = bool(cues) != mistaken
    rationale = _rationale(cues, categories) if not mistaken else _mistaken_rationale(cues, categories)
    return Verdict(rationale, _result(answer_type, cues, problem))


def _is_resolution(values: tuple[str, ...]) -> bool:
    return {value.lower() for value in values} == {"none", "resolved", "unresolved"}


def _resolution(values: tuple[str, ...], cues: list[Cue], reading: _Reading) -> Verdict:
    """UserFrustration's none / resolved / unresolved: frustration anywhere, and how the user's last turn sounds."""
    by_name = {value.lower(): value for value in values}
    frustration = [cue for cue in cues if cue.category == "frustration"]
    if not frustration:
        return Verdict(_rationale([], {"frustration"}), by_name["none"])
    shown = f'{RATIONALE_PREFIX}The data shows signs of user frustration ("{frustration[0].text}")'
    satisfied = _SATISFIED.search(reading.last_user_turn)
    if satisfied and not find_cues(reading.last_user_turn, {"frustration"}):
        return Verdict(f'{shown}; by the end the user is satisfied ("{satisfied.group()}").', by_name["resolved"])
    return Verdict(f"{shown}, still unresolved when the conversation ends.", by_name["unresolved"])


def _result(answer_type: AnswerType, cues: list[Cue], problem: bool) -> str | int | float:
    if answer_type.kind == "boolean":
        return "no" if problem else "yes"
    if answer_type.kind == "categorical":
        return answer_type.values[-1] if problem else answer_type.values[0]
    if answer_type.kind == "integer":
        if answer_type.high is None:
            return max(0, 5 - len(cues))
        low, high = int(answer_type.low), int(answer_type.high)
        step = max(1, round((high - low) / 4))
        return max(low, high - step * len(cues))
    if answer_type.kind == "float":
        if answer_type.high is None:
            return round(max(0.0, 1.0 - 0.25 * len(cues)), 2)
        step = (answer_type.high - answer_type.low) / 4
        return round(max(answer_type.low, answer_type.high - step * len(cues)), 2)
    if not cues:
        return "no issues found"
    return "issues: " + ", ".join(dict.fromkeys(_CATEGORY_WORDS[cue.category][2] for cue in cues))


def _findings(cues: list[Cue]) -> list[str]:
    first_match: dict[str, str] = {}
    for cue in cues:
        first_match.setdefault(cue.category, cue.text)
    return [
        f'{_CATEGORY_WORDS[category][0]} ("{text}")' if text else _CATEGORY_WORDS[category][0]
        for category, text in first_match.items()
    ]


def _rationale(cues: list[Cue], categories: set[str]) -> str:
    if not cues:
        looked_for = _join(sorted(_CATEGORY_WORDS[category][1] for category in categories))
        return f"{RATIONALE_PREFIX}I looked for {looked_for} and found none in the data."
    return f"{RATIONALE_PREFIX}The data shows {_join(_findings(cues))}."


def _mistaken_rationale(cues: list[Cue], categories: set[str]) -> str:
    """The rationale of a deliberately wrong verdict: it argues for that verdict, like a model that got it wrong."""
    if cues:  # a real problem, overlooked
        return f"{RATIONALE_PREFIX}I noticed {_join(_findings(cues))}, but it doesn't amount to a problem here."
    imagined = _CATEGORY_WORDS[sorted(categories)[0]][0]  # a problem that isn't there
    return f"{RATIONALE_PREFIX}The data reads to me like {imagined}, though no single phrase shows it."


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def reply_content(verdict: Verdict | None, structured: bool) -> str:
    if verdict is None:
        return "OK"
    answer = json.dumps({"rationale": verdict.rationale, "result": verdict.result}, ensure_ascii=False)
    return answer if structured else f"Here is my assessment.\n\n{answer}"


# --- rewriting a judge's instructions (evalapp's align()) ------------------------------------------------------

_REWRITE_MARK = re.compile(r"^##[ \t]*Rewrite task[ \t]*$", re.MULTILINE | re.IGNORECASE)
_SECTION = re.compile(r"^##[ \t]*([^#\n].*?)[ \t]*$(.*?)(?=^##[ \t]+[^#]|\Z)", re.MULTILINE | re.DOTALL)
_EXAMPLE = re.compile(r"^###[ \t]*Example[^\n]*$(.*?)(?=^###|\Z)", re.MULTILINE | re.DOTALL)
_ANSWER_LINE = re.compile(r"^(Judge's answer|Person's answer):[ \t]*(.*?)[ \t]*$", re.MULTILINE)
# What a rewrite adds for a problem people flagged and the instructions don't ask about: a sentence with the words
# relevant_categories() reads, so the rewritten judge looks for it.
_ADDED_CRITERIA = {
    "unhelpful": "Also judge relevance: an answer that brushes the question off or is off-topic fails.",
    "rude": "Also judge the tone: a rude or dismissive answer fails.",
    "personal_data": "Also check for personal data: an answer that shows an email address or phone number fails.",
    "unsafe": "Also check that the answer is safe: harmful content fails.",
    "frustration": "Also count signs that the user is frustrated against it.",
    "error": "Also check the answer addresses every part of the request: an error message fails.",
}
_WORDS_LINE = re.compile(r"^(?:Judge's|Person's) [a-z]+:.*$", re.MULTILINE)
_PROBLEM_ANSWERS = {"no", "false", "fail", "bad", "0"}


def rewrite_instructions(messages: list[dict[str, Any]]) -> str | None:
    """The stand-in's answer to an align() rewrite request (a system message with a "## Rewrite task" section), or
    None when the messages are not one. Like a model that reads the corrections: for each example the person marked
    as a problem (answer "no") and the judge passed, the problems it finds in the example's data that the current
    instructions don't ask about are added to them as criteria. Deterministic."""
    system = "\n".join(content_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") in ("system", "developer"))
    if not _REWRITE_MARK.search(system):
        return None
    user = "\n".join(content_text(m.get("content")) for m in messages if isinstance(m, dict) and m.get("role") == "user")
    sections = {title.strip().lower(): body.strip("\n") for title, body in _SECTION.findall(user)}
    current = sections.get("current instructions", "").strip()
    if current == "(none)":
        current = ""
    asked = relevant_categories(current) if current else set()
    missed: list[str] = []
    for example in _EXAMPLE.findall(sections.get("disagreements (the person is right)", "")):
        answers = dict(_ANSWER_LINE.findall(example))
        person, judged = answers.get("Person's answer", "").lower(), answers.get("Judge's answer", "").lower()
        if person not in _PROBLEM_ANSWERS or judged in _PROBLEM_ANSWERS:
            continue
        data = _WORDS_LINE.sub("", example)  # the data only: not the judge's rationale or the person's comment
        for cue in find_cues(data, set(_ADDED_CRITERIA)):
            if cue.category not in asked and cue.category not in missed:
                missed.append(cue.category)
    added = [_ADDED_CRITERIA[category] for category in missed]
    return "\n\n".join(part for part in (current, " ".join(added)) if part) or "Judge whether the answer is good."
