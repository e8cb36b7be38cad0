"""The stand-in's verdicts, read straight from standin.verdicts (pure functions): the rationale always argues for
the result it comes with, the deliberately wrong ones included."""

from __future__ import annotations

import random
import re

import pytest

from standin import verdicts

TASKS = [
    "Decide whether the application's response is relevant to the user's request.",
    "Decide whether the response is free of personally identifiable information (PII).",
    "Decide whether the user showed frustration during the conversation.",
    "Is the reply polite and professional in tone?",
    "Decide whether the response is grounded in the retrieved documents.",
    "Is the assistant's answer helpful?",
]
USER_LINES = [
    "Where is my order #48213?", "Do you ship to Canada?", "This is useless, I want to talk to a human!!!",
    "My email is jane.doe@example.com.", "Can I return the yoga mat?", "Third time asking!!!",
]
ANSWERS = [
    "Returns are free within 30 days.", "I'm sorry, I can't help with that.", "Express costs $12.",
    "Express costs $25 and takes 5 days.", "As I said, read it before asking.",
    "Write to maria.lopez@shopwise-example.com.", "Order #48213 shipped yesterday.",
]
CONTEXT = "[1] (help/shipping/rates) Express (1-2 days) costs $12. Returns are free within 30 days."
SAYS_A_PROBLEM = re.compile(r"The data shows|reads to me like")
SAYS_ALL_IS_WELL = re.compile(r"found none in the data|doesn't amount to a problem")


def prompt(task: str, answer_type: str, user: str, answer: str) -> list[dict[str, str]]:
    system = f"You are a judge.\n\n## Task\n{task}\n\n## Answer format\nAnswer type: {answer_type}\nReply with JSON."
    blocks = [("INPUTS", f"User: {user}"), ("RETRIEVED_CONTEXT", CONTEXT), ("OUTPUTS", answer)]
    data = "\n\n".join(f"⟦BEGIN {label} 9a1f⟧\n{text}\n⟦END {label} 9a1f⟧" for label, text in blocks)
    return [{"role": "system", "content": system}, {"role": "user", "content": data}]


def generated_prompts(count: int) -> list[list[dict[str, str]]]:
    rng = random.Random(3)
    return [
        prompt(
            rng.choice(TASKS),
            rng.choice(['boolean (answer "yes" or "no")', 'categorical; allowed values: "good", "poor"']),
            f"{rng.choice(USER_LINES)} (ticket {number})",  # each prompt differs, so each draws its own noise
            rng.choice(ANSWERS),
        )
        for number in range(count)
    ]


def test_rationale_always_argues_for_the_verdict_it_comes_with():
    results = [verdicts.judge(messages) for messages in generated_prompts(2000)]

    mismatched = []
    for verdict in results:
        problem = verdict.result in ("no", "poor")
        says_problem, says_fine = bool(SAYS_A_PROBLEM.search(verdict.rationale)), bool(SAYS_ALL_IS_WELL.search(verdict.rationale))
        if says_problem == says_fine or says_problem != problem:
            mismatched.append(verdict)
    assert mismatched == []
    # The deliberate mistakes are there, at about their share, and they too come with their own rationale.
    mistakes = [verdict for verdict in results if re.search(r"reads to me like|doesn't amount", verdict.rationale)]
    assert 0.03 < len(mistakes) / len(results) < 0.07
    assert verdicts.NOISE_SHARE == 0.05


@pytest.mark.parametrize(
    ("task", "answer", "expected", "quoted"),
    [
        (TASKS[4], "Express costs $25 and takes 5 days.", "no", '"$25"'),  # a figure the context doesn't have
        (TASKS[4], "Express costs $12 and takes 1-2 days.", "yes", None),
        (TASKS[4], "Express takes 3-5 days for order #48213.", "no", '"3-5 days"'),  # a range, not the order number
        (TASKS[0], "I'm sorry, I can't help with that.", "no", "\"can't help\""),
        (TASKS[0], "Returns are free within 30 days.", "yes", None),
        (TASKS[3], "As I said, read it before asking.", "no", '"As I said"'),
    ],
)
def test_each_task_looks_for_its_own_problems_in_the_answer(task, answer, expected, quoted):
    verdict = verdicts.judge(prompt(task, 'boolean (answer "yes" or "no")', "Where is my order #48213?", answer))

    assert verdict.result == expected
    if quoted:
        assert quoted in verdict.rationale


@pytest.mark.parametrize("task", [TASKS[0], TASKS[5]])
def test_a_frustrated_question_does_not_make_the_answer_bad(task):
    messages = prompt(task, 'boolean (answer "yes" or "no")', "Third time asking!!! Where is #48213?", "It shipped yesterday.")

    verdict = verdicts.judge(messages)

    assert (verdict.result, "frustration" in verdict.rationale) == ("yes", False)


def test_two_judges_reading_the_same_trace_err_independently():
    def mistaken(task: str) -> set[int]:
        return {
            number
            for number in range(1000)
            if "reads to me like" in verdicts.judge(prompt(task, 'boolean (answer "yes" or "no")', f"Order {number}?", "It ships today.")).rationale
        }

    relevance, pii = mistaken(TASKS[0]), mistaken(TASKS[1])

    assert relevance and pii
    assert len(relevance & pii) < 0.3 * min(len(relevance), len(pii))
