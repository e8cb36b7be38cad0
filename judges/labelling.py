"""A judge's labelling queue: which item a person labels next, and who holds which item right now.

Order: first a stratified sample by the judge's verdict (the verdict value with the fewest labelled items goes
next, until each has `STRATUM_QUOTA` or none is left, so a judge that says "yes" 95% of the time still gets its
"no"s checked), then items other people labelled where the labels disagree most (person vs person, then person vs
judge), then whatever is left. Within a stratum the item is the first from a random point among the verdicts'
ids: a random sample rather than the newest, found by an index walk.

Several people can label one queue: an item is held by a `LabelClaim` lease (`LEASE`) taken with a conditional
update (or an insert the unique constraint refuses), so nobody is handed an item someone else holds."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Min, Q
from django.utils import timezone

from judges.labels import JudgeLabels, human_labels, load_pairs, scale_of
from judges.models import Judge, LabelClaim, OutputType, Scope
from traces.models import Assessment, AssessmentSource

LEASE = timedelta(minutes=5)
STRATUM_QUOTA = 25


def claim(judge: Judge, target_pk: int, user: Any) -> bool:
    """Hold the item for `user` for `LEASE` (renewed if they hold it already); False when someone else holds it.
    A person holds at most one item of a queue: taking one lets go of the other."""
    now = timezone.now()
    taken = LabelClaim.objects.filter(Q(expires_at__lte=now) | Q(user=user), judge=judge, target_pk=target_pk).update(user=user, expires_at=now + LEASE)
    if not taken:
        try:
            with transaction.atomic():
                LabelClaim.objects.create(judge=judge, target_pk=target_pk, user=user, expires_at=now + LEASE)
        except IntegrityError:
            return False  # someone else took it first
    LabelClaim.objects.filter(judge=judge, user=user).exclude(target_pk=target_pk).delete()
    return True


def release(judge: Judge, user: Any) -> None:
    LabelClaim.objects.filter(judge=judge, user=user).delete()


def held_by_others(judge: Judge, user: Any):
    return LabelClaim.objects.filter(judge=judge, expires_at__gt=timezone.now()).exclude(user=user).values("target_pk")


def target_field(judge: Judge) -> str:
    return "session_id" if judge.scope == Scope.SESSION else "trace_id"


def current_verdicts(judge: Judge):
    """The judge's standing verdicts (its latest on each item, any version, no error): what the queue offers.
    By name, source type and valid first: the (name, source_type, valid) index."""
    return Assessment.objects.filter(
        name=judge.name, source_type=AssessmentSource.LLM_JUDGE, valid=True, source_id=f"judge:{judge.pk}", error_code="", value__isnull=False
    )


def _stratified(judge: Judge, user: Any, entry: JudgeLabels, skipped: set[int], pivot: int) -> int | None:
    field = target_field(judge)
    verdicts = current_verdicts(judge)
    if judge.output_type not in (OutputType.BOOLEAN, OutputType.CATEGORICAL, OutputType.INTEGER):
        return None  # decimals and text have no strata: the scrambled order below samples them evenly
    labelled_per_value: dict[str, int] = {}
    rows = verdicts.filter(**{f"{field}__in": list(entry.first)}).values_list("value", flat=True) if entry.first else []
    for value in rows:
        labelled_per_value[repr(value)] = labelled_per_value.get(repr(value), 0) + 1
    strata = scale_of(judge)
    if strata is None:  # a whole-number judge without a small range: the values it gave
        strata = [row["value"] for row in verdicts.values("value").annotate(n=Count("pk")).order_by()]
    for value in sorted(strata, key=lambda v: (labelled_per_value.get(repr(v), 0), repr(v))):
        if labelled_per_value.get(repr(value), 0) >= STRATUM_QUOTA:
            break
        found = _first_from(_unlabelled(judge, user, skipped).filter(value=value), field, pivot)
        if found is not None:
            return found
    return None


def _pivot(judge: Judge) -> int:
    """A random point among the judge's verdicts' ids: the queue takes the first fitting item from there on (then
    from the start), a random sample that an index walk finds, where ordering every verdict by a hash took a scan."""
    bounds = Assessment.objects.filter(name=judge.name, source_type=AssessmentSource.LLM_JUDGE, valid=True).aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return 0
    return random.randint(bounds["low"], bounds["high"])


def _first_from(candidates, field: str, pivot: int) -> int | None:
    found = candidates.filter(pk__gte=pivot).order_by("pk").values_list(field, flat=True).first()
    if found is None:
        found = candidates.filter(pk__lt=pivot).order_by("pk").values_list(field, flat=True).first()
    return found


def _unlabelled(judge: Judge, user: Any, skipped: set[int]):
    field = target_field(judge)
    return (
        current_verdicts(judge)
        .exclude(**{f"{field}__in": human_labels([judge]).values(field)})
        .exclude(**{f"{field}__in": held_by_others(judge, user)})
        .exclude(**{f"{field}__in": list(skipped)})
    )


def _disputed(judge: Judge, user: Any, entry: JudgeLabels, skipped: set[int], *, agreed: bool) -> int | None:
    """Items other people labelled and this person hasn't: where labels disagree most first (`agreed` False), or
    the rest (`agreed` True: a second label still counts toward inter-annotator agreement)."""
    mine = entry.by_person.get(user.get_username(), set())
    held = set(held_by_others(judge, user).values_list("target_pk", flat=True))
    latest: dict[int, Any] = {}
    for version in sorted(entry.verdicts):
        latest.update({pk: verdict.value for pk, verdict in entry.verdicts[version].items()})
    ranked = []
    for pk, first in entry.first.items():
        if pk in mine or pk in held or pk in skipped:
            continue
        second = entry.second.get(pk)
        people_differ = second is not None and second.value != first.value
        judge_differs = pk in latest and latest[pk] != first.value
        score = 2 * people_differ + judge_differs
        if (score == 0) == agreed:
            ranked.append((-score, second is not None, first.pk, pk))
    return min(ranked)[-1] if ranked else None


def next_item(judge: Judge, user: Any, skipped: set[int] = frozenset()) -> int | None:
    """The pk of the trace (or session) this person should label next, claimed for them; None when the queue is
    empty for them. Items someone else holds are passed over, and one taken between the choice and the claim too."""
    skipped = set(skipped)
    for _ in range(20):  # each lost race adds the item to the ones passed over
        entry = load_pairs([judge])[judge.pk]
        pivot = _pivot(judge)
        found = _stratified(judge, user, entry, skipped, pivot)
        if found is None:
            found = _disputed(judge, user, entry, skipped, agreed=False)
        if found is None:
            found = _first_from(_unlabelled(judge, user, skipped), target_field(judge), pivot)
        if found is None:
            found = _disputed(judge, user, entry, skipped, agreed=True)
        if found is None:
            return None
        if claim(judge, found, user):
            return found
        skipped.add(found)
    return None


@dataclass
class Progress:
    mine: int
    labelled: int  # items with at least one label
    pairs: int  # paired with the current version's verdicts
    more: int | None  # projected labels for ±0.10 on κ; None when it can't be said yet
    needed: int  # below the minimum for any figure

    def text(self) -> str:
        head = f"{self.pairs} labelled"
        if self.needed:
            return f"{head} · {self.needed} more before κ is estimated"
        if self.more is None:
            return head
        if self.more == 0:
            return f"{head} · κ is within ±0.10"
        return f"{head} · about {self.more} more for ±0.10 on κ (projected from the interval's width)"


def progress(judge: Judge, user: Any, entry: JudgeLabels | None = None) -> Progress:
    from judges.agreement import more_for_half_width

    entry = entry or load_pairs([judge])[judge.pk]
    agreement = entry.agreement(judge.version)
    more = more_for_half_width(agreement) if judge.output_type != OutputType.FLOAT else None
    return Progress(
        mine=len(entry.by_person.get(user.get_username(), set())),
        labelled=len(entry.first),
        pairs=agreement.n,
        more=more,
        needed=agreement.needed,
    )


@dataclass
class JudgeView:
    """An item as the judge sees it: the question in its words and the values it is shown."""

    question: str
    blocks: list[tuple[str, str]]


def judge_view(judge: Judge, target: Any) -> JudgeView:
    from judges import prompt_values
    from judges.preparation import definition_of, session_traces, trace_data
    from judges.templating import GUIDELINES, MISSING, format_value, render

    definition = definition_of(judge)
    if judge.scope == Scope.SESSION:
        values = prompt_values.session_values([trace_data(trace) for trace in session_traces(target)])
    else:
        values = prompt_values.trace_values(trace_data(target))
    if definition.builtin_key:
        values = {**values, GUIDELINES: definition.instructions.strip()}
    task, blocks = render(definition.template, values)
    shown = [(label, "(not present)" if value is MISSING or value is None else format_value(value)) for label, value in blocks]
    return JudgeView(task.strip(), shown)
