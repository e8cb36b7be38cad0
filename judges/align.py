"""align(): better instructions for a judge, learnt from people's labels and checked on labels it never saw.

1. **Split** — the current version's labelled pairs (judges.labels: an item's first label against the version's
   latest verdict) are split by a hash of the item's id (`is_held_out`): 60% train, 40% held-out. The split
   depends on the id alone, so an item stays on its side across runs and as labels are added; the two sides never
   overlap.
2. **Candidates** — from the train pairs where the person disagreed with the judge: (a) "few-shot", the current
   instructions plus up to MAX_EXAMPLES of those corrections as worked examples; (b) "rewritten", instructions
   rewritten by a model (an endpoint the user picks; default the judge's own) that reads the train
   disagreements.
3. **Held-out check** — the current instructions and each candidate judge every held-out item with the judge's
   own endpoint, through the same call path and limits as the workers (judges.align_calls), in background tasks
   (`run`, queued by `start_align`; a task that reaches `task_seconds()` queues the rest as a new one; the page
   and the API poll the AlignRun). Direct calls rather than manual evaluations: a candidate is not a version of
   the judge, and its verdicts must not land on the traces as the judge's.
4. **Scores** — each is compared with the people on the held-out items only: κ (weighted κ for whole numbers,
   MAE for decimals) with its 95% bootstrap interval and n (judges.agreement).

Cost: estimated before it starts (held-out items × the instructions tried × mean tokens of the version's verdicts
on those items × the endpoint's prices, plus the rewrite call), the actual cost summed from the calls after.
"Use this candidate" goes through `make_candidate_version` — the one place that decides what a pick becomes: a
shadow version (judges.shadow) that judges beside the live one until it is promoted."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction

from judges import tasks
from judges.align_work import (
    CURRENT,
    FEW_SHOT,
    MAX_EXAMPLES,
    MAX_REWRITE_EXAMPLES,
    MIN_HELD_OUT,
    REWRITTEN,
    TITLES,
    Pair,
    differs,
    few_shot_text,
    labelled_pairs,
    money,
    prepare_with,
    rewrite_messages,
    stalled,
    targets_of,
    with_examples,
)
from judges.errors import ConfigError
from judges.holdout import HELD_OUT_SHARE, split
from judges.llm import get_litellm
from judges.models import AlignRun, Judge, JudgeVersion, ModelEndpoint, OutputType, Scope
from traces.models import Assessment

__all__ = ["CURRENT", "FEW_SHOT", "HELD_OUT_SHARE", "MAX_EXAMPLES", "MIN_HELD_OUT", "REWRITTEN", "TITLES", "stalled", "split", "with_examples"]

DEFAULT_MIN_LABELS = 50
FALLBACK_OUTPUT_TOKENS = 150


@dataclass
class Plan:
    """What a run would do, known before it starts (the page shows it; `start_align` stores it)."""

    judge: Judge
    version: int
    min_labels: int
    rewrite_endpoint: ModelEndpoint | None
    pairs: dict[int, Pair] = field(default_factory=dict)
    train: list[int] = field(default_factory=list)
    held_out: list[int] = field(default_factory=list)
    corrections: list[Pair] = field(default_factory=list)  # train disagreements
    problem: str = ""
    estimate_usd: Decimal | None = None
    calls: int = 0
    mean_input_tokens: float = 0.0
    mean_output_tokens: float = 0.0

    @property
    def candidate_keys(self) -> list[str]:
        return [CURRENT, FEW_SHOT] + ([REWRITTEN] if self.rewrite_endpoint is not None else [])

    def as_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "pairs": len(self.pairs),
            "min_labels": self.min_labels,
            "train": len(self.train),
            "held_out": len(self.held_out),
            "held_out_share": HELD_OUT_SHARE,
            "train_disagreements": len(self.corrections),
            "problem": self.problem or None,
            "calls": self.calls,
            "estimate_usd": money(self.estimate_usd),
            "rewrite_endpoint": self.rewrite_endpoint.name if self.rewrite_endpoint else None,
        }


def _endpoint_problem(endpoint: ModelEndpoint, what: str) -> str:
    if endpoint.is_paused:
        return f"{what} {endpoint.name} is paused: {endpoint.paused_reason}"
    return ""


def plan_align(judge: Judge, *, min_labels: int = DEFAULT_MIN_LABELS, rewrite_endpoint: ModelEndpoint | None = None) -> Plan:
    """The split, the corrections, and the cost estimate — or, in `problem`, why a run can't start (too few labels,
    and how many more; a text judge; a paused judge or endpoint)."""
    version = judge.version
    plan = Plan(judge, version, min_labels, rewrite_endpoint)
    if judge.output_type == OutputType.STRING:
        plan.problem = "align needs answers that can be compared with people's: yes/no, categories or numbers, not free text."
        return plan
    if judge.is_paused:
        plan.problem = f"{judge.name} is paused: {judge.paused_reason}"
        return plan
    plan.problem = _endpoint_problem(judge.endpoint, "The judge's endpoint") or (
        _endpoint_problem(rewrite_endpoint, "The rewrite endpoint") if rewrite_endpoint else ""
    )
    if plan.problem:
        return plan
    plan.pairs = labelled_pairs(judge, version)
    plan.train, plan.held_out = split({pk: pair.item_id for pk, pair in plan.pairs.items()})
    noun = "conversations" if judge.scope == Scope.SESSION else "traces"
    n = len(plan.pairs)
    if n < min_labels:
        plan.problem = (
            f"Too few labels: {judge.name} v{version} has {n} labelled {noun} with a verdict of this version; align needs at "
            f"least {min_labels}. Label {min_labels - n} more."
        )
        return plan
    if len(plan.held_out) < MIN_HELD_OUT:
        more = math.ceil((MIN_HELD_OUT - len(plan.held_out)) / HELD_OUT_SHARE)
        plan.problem = (
            f"Too few held-out labels: the split (by a hash of the item id, {HELD_OUT_SHARE:.0%} held out) puts {len(plan.held_out)} "
            f"of the {n} labelled {noun} in held-out, and agreement needs {MIN_HELD_OUT}. Label about {more} more."
        )
        return plan
    plan.corrections = [plan.pairs[pk] for pk in plan.train if differs(judge, plan.pairs[pk].human, plan.pairs[pk].judge)]
    if not plan.corrections:
        plan.problem = f"The judge agrees with all {len(plan.train)} train labels: there are no corrections to learn from."
        return plan
    plan.calls = len(plan.held_out) * len(plan.candidate_keys) + (1 if rewrite_endpoint else 0)
    _estimate(plan)
    return plan


def price(endpoint: ModelEndpoint, input_tokens: float, output_tokens: float) -> Decimal | None:
    """What `input_tokens` in and `output_tokens` out cost at the endpoint's prices (its own, else litellm's);
    None when the model's price is unknown."""
    if endpoint.input_cost_per_million is not None or endpoint.output_cost_per_million is not None:
        cost = Decimal(str(input_tokens)) * (endpoint.input_cost_per_million or 0) / 1_000_000
        cost += Decimal(str(output_tokens)) * (endpoint.output_cost_per_million or 0) / 1_000_000
        return cost.quantize(Decimal("0.00000001"))
    try:
        prompt, completion = get_litellm().cost_per_token(model=endpoint.model, prompt_tokens=int(input_tokens), completion_tokens=int(output_tokens))
    except Exception:  # a model litellm has no price for
        return None
    return Decimal(str(prompt + completion)).quantize(Decimal("0.00000001"))


def _tokens(text: str) -> int:
    return len(text) // 3 + 1  # judges.prompting's conservative characters-per-token ratio


def _estimate(plan: Plan) -> None:
    judge = plan.judge
    verdicts = Assessment.objects.filter(pk__in=[plan.pairs[pk].verdict_pk for pk in plan.held_out])
    tokens = [(i, o) for i, o in verdicts.values_list("input_tokens", "output_tokens") if i is not None]
    if tokens:
        plan.mean_input_tokens = sum(i for i, _ in tokens) / len(tokens)
        plan.mean_output_tokens = sum(o or 0 for _, o in tokens) / len(tokens)
    else:  # no token counts recorded: the prompts of a few held-out items, measured
        sample = [prepare_with(judge, judge.instructions, target) for target in targets_of(judge, plan.held_out[:10]).values()]
        sizes = [sum(len(m["content"]) for m in p.prompt.messages) for p in sample if p.prompt is not None]
        plan.mean_input_tokens = _tokens("x" * int(sum(sizes) / len(sizes))) if sizes else 0
        plan.mean_output_tokens = FALLBACK_OUTPUT_TOKENS
    examples = few_shot_text(judge, plan.corrections[:MAX_EXAMPLES])
    per_candidate = {CURRENT: 0, FEW_SHOT: _tokens(examples), REWRITTEN: _tokens(judge.instructions) // 2}
    total = Decimal(0)
    for key in plan.candidate_keys:
        cost = price(judge.endpoint, plan.mean_input_tokens + per_candidate[key], plan.mean_output_tokens)
        if cost is None:
            plan.estimate_usd = None
            return
        total += cost * len(plan.held_out)
    if plan.rewrite_endpoint is not None:
        prompt = rewrite_messages(judge, plan.corrections[:MAX_REWRITE_EXAMPLES])
        cost = price(plan.rewrite_endpoint, _tokens("".join(m["content"] for m in prompt)), _tokens(judge.instructions) + 200)
        if cost is None:
            plan.estimate_usd = None
            return
        total += cost
    plan.estimate_usd = total


def start_align(judge: Judge, *, min_labels: int = DEFAULT_MIN_LABELS, rewrite_endpoint: ModelEndpoint | None = None, user=None) -> AlignRun:
    """Check, plan and queue a run (a worker does the calls: `run`). ConfigError, and nothing written, when it
    can't start: bad min_labels, too few labels (saying how many more), nothing to learn from."""
    if not isinstance(min_labels, int) or isinstance(min_labels, bool) or not MIN_HELD_OUT <= min_labels <= 100_000:
        raise ConfigError({"min_labels": f"a whole number from {MIN_HELD_OUT} to 100000"})
    plan = plan_align(judge, min_labels=min_labels, rewrite_endpoint=rewrite_endpoint)
    if plan.problem:
        raise ConfigError({"labels": plan.problem})
    with transaction.atomic():
        aligned = AlignRun.objects.create(
            id=uuid.uuid4(),
            judge=judge,
            judge_version=plan.version,
            rewrite_endpoint=rewrite_endpoint,
            min_labels=min_labels,
            created_by=user if getattr(user, "is_authenticated", False) else None,
            train=plan.train,
            held_out=plan.held_out,
            calls_total=plan.calls,
            estimate_usd=plan.estimate_usd,
        )
        tasks.enqueue_align(str(aligned.pk))
    return aligned


def run_json(aligned: AlignRun) -> dict[str, Any]:
    """The run as the API and the page show it: progress, cost (estimated and actual), each candidate's held-out
    agreement (κ or MAE with its 95% interval and n)."""
    current = next((c for c in aligned.candidates if c["key"] == CURRENT), None)
    candidates = []
    for candidate in aligned.candidates:
        entry = {
            "key": candidate["key"],
            "title": candidate["title"],
            "instructions": candidate["instructions"],
            "problem": candidate.get("problem") or None,
            "n": candidate.get("n"),
            "errors": candidate.get("errors"),
            "figure": candidate.get("figure"),
            "agreement": candidate.get("agreement"),
            "cost_usd": candidate.get("cost_usd"),
            "improvement": None,
        }
        if current is not None and candidate["key"] != CURRENT and entry["agreement"] and current.get("agreement"):
            mine, theirs = entry["agreement"].get(entry["figure"]), current["agreement"].get(entry["figure"])
            if mine and theirs and mine["value"] is not None and theirs["value"] is not None:
                entry["improvement"] = round(mine["value"] - theirs["value"], 4)
        candidates.append(entry)
    return {
        "id": str(aligned.pk),
        "judge": aligned.judge.name,
        "judge_version": aligned.judge_version,
        "status": aligned.status,
        "error": aligned.error or None,
        "min_labels": aligned.min_labels,
        "train": len(aligned.train),
        "held_out": len(aligned.held_out),
        "held_out_share": HELD_OUT_SHARE,
        "rewrite_endpoint": aligned.rewrite_endpoint.name if aligned.rewrite_endpoint else None,
        "progress": {"done": aligned.calls_done, "total": aligned.calls_total},
        "estimate_usd": money(aligned.estimate_usd),
        "cost_usd": money(aligned.cost_usd),
        "cost_unknown_calls": aligned.cost_unknown_calls,
        "candidates": candidates,
        "picked": aligned.picked or None,
        "picked_version": aligned.picked_version,
        "created_at": aligned.created_at,
        "finished_at": aligned.finished_at,
    }


def make_candidate_version(judge: Judge, instructions: str, *, user=None) -> JudgeVersion:
    """What "use this candidate" makes of the chosen instructions — the one switch point: a **shadow version**
    (judges.shadow), which judges the live version's sampled items beside it, counted nowhere, until someone
    promotes it on the shadow page. (Before shadow versions existed this was `update_judge`: a live new version.)
    ConfigError when the judge already has a shadow."""
    from judges.shadow import start_shadow

    return start_shadow(judge, instructions=instructions, by=user)


def use_candidate(aligned: AlignRun, key: str, *, user=None) -> int:
    """Make the chosen candidate's instructions the judge's shadow version; returns its version number. Refused
    when the run isn't done, the key is unknown, the candidate failed, the judge changed since the run, or it has
    a shadow already."""
    if aligned.status != AlignRun.Status.DONE:
        raise ConfigError({"candidate": "the run isn't finished yet"})
    found = next((c for c in aligned.candidates if c["key"] == key), None)
    if found is None or key == CURRENT:
        choices = ", ".join(c["key"] for c in aligned.candidates if c["key"] != CURRENT and not c.get("problem"))
        raise ConfigError({"candidate": f"no candidate {key!r} in this run; choose one of: {choices}"})
    if found.get("problem"):
        raise ConfigError({"candidate": f"{found['title']} could not be tried: {found['problem']}"})
    with transaction.atomic():
        judge = Judge.objects.select_for_update().get(pk=aligned.judge_id)
        if judge.version != aligned.judge_version:
            raise ConfigError({"candidate": f"{judge.name} has changed since this run (v{aligned.judge_version} → v{judge.version}); run align again"})
        version = make_candidate_version(judge, found["instructions"], user=user).version
        AlignRun.objects.filter(pk=aligned.pk).update(picked=key, picked_version=version)
    return version

