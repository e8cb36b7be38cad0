"""People's labels for a judge and how its verdicts agree with them (the numbers: judges.agreement).

A label is a HUMAN assessment under the judge's name on a trace or session of its experiment (what the trace page's
feedback and the labelling queue both store, through traces.feedback.add_feedback), one valid label per person and
item. Pairing, per judge **version**: the version's latest verdict (no error) on the item against the item's
**first** label (the earliest valid one, whoever gave it) — so a later labeller never changes the judge's score, and
the second person's label pairs with the first for inter-annotator agreement, shown beside it.

Two queries whatever the number of judges (`load_pairs`): the labels, then the judges' verdicts on just the
labelled items (through a subquery), so the cost follows the number of labels, not of verdicts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from judges.agreement import Agreement, CorrectedRate, corrected_pass_rate, measure
from judges.models import Judge, OutputType, Scope
from traces.feedback import FeedbackError, check_value
from traces.models import Assessment, AssessmentSource

DISAGREEMENTS_PAGE = 25
VERDICT_CHUNK = 5_000
AGREEMENT_CACHE_SECONDS = 3600


@dataclass
class Label:
    target_pk: int
    value: Any
    person: str
    pk: int
    target_id: str = ""  # the trace id or session id, for links: filled in for the disagreements shown
    comment: str = ""  # likewise


@dataclass
class Verdict:
    value: Any
    version: int
    pk: int


@dataclass
class JudgeLabels:
    """One judge's labels (first and second per item) and its verdicts on the labelled items, by version."""

    judge: Judge
    first: dict[int, Label] = field(default_factory=dict)
    second: dict[int, Label] = field(default_factory=dict)
    by_person: dict[str, set[int]] = field(default_factory=dict)
    verdicts: dict[int, dict[int, Verdict]] = field(default_factory=dict)  # version → target pk → latest verdict

    @property
    def versions(self) -> list[int]:
        return sorted({self.judge.version, *self.verdicts}, reverse=True)

    def pairs(self, version: int) -> list[tuple[Label, Verdict]]:
        verdicts = self.verdicts.get(version, {})
        return [(label, verdicts[pk]) for pk, label in sorted(self.first.items()) if pk in verdicts]

    def agreement(self, version: int) -> Agreement:
        pairs = self.pairs(version)
        return measured(self.judge.output_type, [v.value for _, v in pairs], [label.value for label, _ in pairs], scale_of(self.judge))

    def inter_annotator(self) -> Agreement:
        both = [(self.first[pk], second) for pk, second in sorted(self.second.items())]
        return measured(self.judge.output_type, [a.value for a, _ in both], [b.value for _, b in both], scale_of(self.judge))


def measured(output_type: str, judge: list[Any], human: list[Any], labels: list[Any] | None) -> Agreement:
    """judges.agreement.measure, remembered by the pairs themselves (Django's cache, an hour): the bootstrap is the
    costly part, and the same pairs always give the same figures (fixed seed), so a page reload, the card and the
    API share one computation until a label or a verdict changes the pairs."""
    from django.core.cache import cache

    digest = hashlib.blake2b(repr((output_type, labels, judge, human)).encode(), digest_size=16).hexdigest()
    key = f"evalapp:agreement:{digest}"
    found = cache.get(key)
    if found is None:
        found = measure(output_type, judge, human, labels=labels)
        cache.set(key, found, AGREEMENT_CACHE_SECONDS)
    return found


def corrected_rate(entry: JudgeLabels, passes: int, verdicts: int) -> CorrectedRate:
    """A yes/no judge's pass rate (`passes` of `verdicts`) corrected with its current version's sensitivity and
    specificity against people's labels (judges.agreement.corrected_pass_rate), remembered like `measured`."""
    from django.core.cache import cache

    pairs = entry.pairs(entry.judge.version)
    judge, human = [bool(v.value) for _, v in pairs], [bool(label.value) for label, _ in pairs]
    digest = hashlib.blake2b(repr(("corrected", judge, human, passes, verdicts)).encode(), digest_size=16).hexdigest()
    key = f"evalapp:corrected:{digest}"
    found = cache.get(key)
    if found is None:
        found = corrected_pass_rate(judge, human, passes, verdicts)
        cache.set(key, found, AGREEMENT_CACHE_SECONDS)
    return found


def scale_of(judge: Judge) -> list[Any] | None:
    """The values a judge answers with, in order (for the confusion matrix and weighted κ)."""
    if judge.output_type == OutputType.BOOLEAN:
        return [True, False]
    if judge.output_type == OutputType.CATEGORICAL:
        return list(judge.categories or [])
    if judge.output_type == OutputType.INTEGER and judge.min_value is not None and judge.max_value is not None:
        if judge.max_value - judge.min_value <= 20:
            return list(range(int(judge.min_value), int(judge.max_value) + 1))
    return None


def _fits(rule: Any, value: Any) -> bool:
    try:
        check_value(value, rule)
    except FeedbackError:
        return False
    return value is not None


def _target(judge: Judge) -> str:
    return "session" if judge.scope == Scope.SESSION else "trace"


def human_labels(judges: list[Judge]):
    """Valid HUMAN assessments under these judges' names on their experiments' traces and sessions."""
    where = Q()
    for scope in (Scope.TRACE, Scope.SESSION):
        names = [judge.name for judge in judges if judge.scope == scope]
        if names:
            experiments = {judge.experiment_id for judge in judges}
            where |= Q(**{f"{scope}__experiment_id__in": experiments, f"{scope}__isnull": False, "name__in": names})
    if not where:
        return Assessment.objects.none()
    # Every name once more outside the OR (implied by it): an index on the name serves the query only then —
    # SQLite read every verdict in id order (3.7 s at a million traces) with the names inside the OR alone.
    names = {judge.name for judge in judges}
    return Assessment.objects.filter(where, name__in=names, source_type=AssessmentSource.HUMAN, valid=True)


def load_pairs(judges: list[Judge]) -> dict[int, JudgeLabels]:
    """Every judge's labels and paired verdicts (all of one experiment, or a few): two queries."""
    found = {judge.pk: JudgeLabels(judge) for judge in judges}
    if not judges:
        return found
    by_name = {(judge.scope, judge.name): found[judge.pk] for judge in judges}
    rules = {judge.pk: judge.value_rule for judge in judges}
    labels = human_labels(judges)
    rows = labels.values_list(
        "pk", "name", "trace_id", "session_id", "value", "source_id"
    ).order_by("pk")  # the order they were given in (ids grow)
    for pk, name, trace_pk, session_pk, value, person in rows:
        scope = Scope.TRACE if trace_pk is not None else Scope.SESSION
        entry = by_name.get((scope, name))
        if entry is None or not _fits(rules[entry.judge.pk], value):
            continue
        target_pk = trace_pk if trace_pk is not None else session_pk
        label = Label(target_pk, value, person, pk)
        entry.by_person.setdefault(person, set()).add(target_pk)
        if target_pk not in entry.first:
            entry.first[target_pk] = label
        elif target_pk not in entry.second and entry.first[target_pk].person != person:
            entry.second[target_pk] = label
    sources = {f"judge:{judge.pk}": found[judge.pk] for judge in judges}
    for scope in (Scope.TRACE, Scope.SESSION):
        targets = sorted({pk for entry in found.values() if entry.judge.scope == scope for pk in entry.first})
        # The labelled items' ids as a list (a few thousand at most), and the judges by `source_id` alone (only
        # their verdicts carry "judge:<pk>"): SQLite then walks the (trace, name) index per item, where a subquery
        # or a filter on name and source type made it scan every verdict.
        for start in range(0, len(targets), VERDICT_CHUNK):
            verdicts = Assessment.objects.filter(
                **{f"{scope}_id__in": targets[start : start + VERDICT_CHUNK]}, source_id__in=list(sources), error_code=""
            )
            rows = verdicts.values_list("pk", "source_id", f"{scope}_id", "judge_version", "value").order_by("pk")
            for pk, source, target_pk, version, value in rows:
                entry = sources[source]
                if target_pk in entry.first and value is not None:
                    entry.verdicts.setdefault(version or 1, {})[target_pk] = Verdict(value, version or 1, pk)  # by pk: the latest wins
    return found


@dataclass
class Disagreement:
    label: Label
    verdict: Verdict
    size: float
    rationale: str = ""
    second: Label | None = None


def disagreements(entry: JudgeLabels, version: int, page: int = 1) -> tuple[list[Disagreement], int]:
    """The version's pairs where the judge and the person differ, the biggest differences first (numbers), then by
    item; one page of them (with the judge's rationale, one more query) and how many there are in all."""
    numeric = entry.judge.output_type in (OutputType.INTEGER, OutputType.FLOAT)
    found = []
    for label, verdict in entry.pairs(version):
        if label.value == verdict.value and type(label.value) is type(verdict.value):
            continue
        size = abs(float(label.value) - float(verdict.value)) if numeric else 1.0
        if numeric and size == 0:
            continue
        found.append(Disagreement(label, verdict, size, second=entry.second.get(label.target_pk)))
    found.sort(key=lambda d: (-d.size, d.label.target_pk))
    start = (max(1, page) - 1) * DISAGREEMENTS_PAGE
    shown = found[start : start + DISAGREEMENTS_PAGE]
    if shown:
        # What only the shown rows need — the judge's rationale, the person's comment, the item's id — in one query.
        wanted = [d.verdict.pk for d in shown] + [d.label.pk for d in shown]
        extra = {pk: rest for pk, *rest in Assessment.objects.filter(pk__in=wanted).values_list("pk", "rationale", "trace__trace_id", "session__session_id")}
        for item in shown:
            item.rationale = extra[item.verdict.pk][0]
            comment, trace_id, session_id = extra[item.label.pk]
            item.label.comment, item.label.target_id = comment, trace_id or session_id
    return shown, len(found)


def target_kind(judge: Judge) -> str:
    return _target(judge)


PAIRING = (
    "Each labelled item's first label (the earliest, whoever gave it) pairs with the version's latest verdict on it; "
    "a second person's label pairs with that first label for inter-annotator agreement."
)


def _item_url(judge: Judge, target_id: str) -> str:
    from django.urls import reverse

    name = "session-detail" if judge.scope == Scope.SESSION else "trace-detail"
    return reverse(name, args=[judge.experiment_id, target_id])


def report(judge: Judge, version: int | None = None, page: int = 1) -> dict[str, Any]:
    """What the agreement page and `GET …/judges/{name}/agreement` show: each version's agreement with people,
    the inter-annotator agreement, and one page of the chosen version's disagreements (default: the current)."""
    entry = load_pairs([judge])[judge.pk]
    version = version or judge.version
    shown, total = disagreements(entry, version, page)
    key = "session_id" if judge.scope == Scope.SESSION else "trace_id"
    last_page = max(1, -(-total // DISAGREEMENTS_PAGE))
    return {
        "judge": judge.name,
        "output_type": judge.output_type,
        "current_version": judge.version,
        "pairing": PAIRING,
        "labels": {"items": len(entry.first), "people": len(entry.by_person), "second_labels": len(entry.second)},
        "versions": [{"version": number, "current": number == judge.version, **entry.agreement(number).as_json()} for number in entry.versions],
        "inter_annotator": entry.inter_annotator().as_json(),
        "disagreements": {
            "version": version,
            "page": page,
            "pages": last_page,
            "total": total,
            "results": [
                {
                    key: item.label.target_id,
                    "url": _item_url(judge, item.label.target_id),
                    "judge_value": item.verdict.value,
                    "human_value": item.label.value,
                    "labelled_by": item.label.person,
                    "comment": item.label.comment,
                    "rationale": item.rationale,
                    "second_label": None if item.second is None else {"value": item.second.value, "labelled_by": item.second.person},
                }
                for item in shown
            ],
        },
    }
