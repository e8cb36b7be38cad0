"""Shadow versions: a candidate judge (other instructions, model or output settings) tried beside the live version
before it replaces it (design note 42).

A shadow is a `JudgeVersion` row with role "shadow" (one per judge at a time). Wherever the live version is
selected to judge a trace or session, a second `Evaluation` tied to the shadow row is created beside it — the same
decision, so the same sampled items — at the lowest priority, so it never delays live work. The worker judges it
with the shadow's settings (`judges.acting.acting_judge`) and records an `Assessment` with `shadow=True`, which the default
manager (`Assessment.objects`) leaves out: no chart, chip, filter, rollup, alert, agreement or pass rate counts it.
The trace and session pages and the diff page read it through `Assessment.all_objects`.

Promote applies the shadow's settings to the judge through `judges.actions.update_judge` (a new live version: a
version mark on the Overview, an audit entry) and marks the row "promoted"; discard marks it "discarded". Either
way its queued work is cancelled and its verdicts stay, as history, shown marked "shadow" with their version."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from judges import audit
from judges.acting import acting_judge, version_settings
from judges.actions import JUDGE_FIELDS, clean_judge, next_version_number, update_judge
from judges.agreement import Agreement
from judges.errors import ConfigError
from judges.labels import load_pairs, measured, scale_of
from judges.models import (
    LOOKBACK,
    SHADOW_PRIORITY,
    Evaluation,
    EvaluationStatus,
    Judge,
    JudgeVersion,
    ModelEndpoint,
    Scope,
    VersionRole,
)
from traces.models import Assessment, AssessmentSource

logger = logging.getLogger(__name__)

# What a shadow may change. Not what it judges (scope, sample rate, filter, idle time): it judges the live
# version's items, so the two can be compared item by item.
SHADOW_FIELDS = ("instructions", "endpoint", "output_type", "categories", "min_value", "max_value")
DIFF_PAGE = 25


def _person(user: Any) -> Any:
    return user if getattr(user, "is_authenticated", False) else None


def current_shadow(judge: Judge) -> JudgeVersion | None:
    return JudgeVersion.all_objects.filter(judge_id=judge.pk, role=VersionRole.SHADOW).first()


@transaction.atomic
def start_shadow(judge: Judge, *, instructions: str, by: Any = None, **changes: Any) -> JudgeVersion:
    """Start a shadow version of `judge`: its settings with `instructions` and any of `SHADOW_FIELDS` changed
    (`endpoint` as an id, a name or the object). Raises ConfigError (field → message) when a setting is invalid,
    can't differ in a shadow, the candidate is the live version itself, or the judge already has a shadow. The
    shadow also takes the live version's work of the last hour, so its diff has something to show soon."""
    judge = Judge.objects.select_for_update().select_related("endpoint", "experiment").get(pk=judge.pk)
    errors = {
        name: "can't differ in a shadow version: it judges the live version's items (change it on the judge itself)"
        if name in JUDGE_FIELDS
        else "is not a judge setting"
        for name in sorted(set(changes) - set(SHADOW_FIELDS))
    }
    if errors:
        raise ConfigError(errors)
    existing = current_shadow(judge)
    if existing is not None:
        raise ConfigError({"shadow": f"v{existing.version} is already this judge's shadow version; promote or discard it first"})
    clean = clean_judge(judge.experiment, {"instructions": instructions, **changes}, instance=judge)
    candidate = Judge(**{f.attname: getattr(judge, f.attname) for f in Judge._meta.concrete_fields})
    for name in SHADOW_FIELDS:
        setattr(candidate, name, clean[name])
    if candidate.behaviour() == judge.behaviour():
        raise ConfigError({"instructions": f"the shadow would be the live version (v{judge.version}) itself: change its instructions, model or output settings"})
    try:
        with transaction.atomic():
            shadow = JudgeVersion.all_objects.create(
                judge=judge, version=next_version_number(judge), config=candidate.behaviour(), role=VersionRole.SHADOW, created_by=_person(by)
            )
    except IntegrityError:  # a concurrent start won
        raise ConfigError({"shadow": "another shadow version of this judge was started just now; promote or discard it first"}) from None
    changed = audit.diff({name: judge.behaviour()[name] for name in candidate.behaviour()}, candidate.behaviour())
    audit.record("shadow started", user=by, judge=judge, changes={**changed, "shadow version": [None, shadow.version]})
    _take_recent_work(judge, shadow)
    logger.info("judge %s: shadow v%s started", judge.name, shadow.version)
    return shadow


def _take_recent_work(judge: Judge, shadow: JudgeVersion) -> None:
    """Queue the shadow on what the live version was asked to judge in the last hour (automatic work only)."""
    from judges import tasks

    since = timezone.now() - LOOKBACK
    live = Evaluation.objects.filter(
        judge=judge, shadow__isnull=True, manual=False, created_at__gte=since
    ).exclude(status__in=[EvaluationStatus.SKIPPED, EvaluationStatus.CANCELLED])
    rows = [
        Evaluation(
            judge=judge, judge_version=shadow.version, shadow=shadow, trace_id=trace_pk, session_id=session_pk,
            session_generation=generation, priority=SHADOW_PRIORITY,
        )
        for trace_pk, session_pk, generation in live.values_list("trace_id", "session_id", "session_generation")[:10_000]
    ]
    if rows:
        Evaluation.objects.bulk_create(rows, ignore_conflicts=True)
        ids = list(Evaluation.objects.filter(shadow=shadow, status=EvaluationStatus.PENDING).values_list("pk", flat=True))
        tasks.enqueue_judging(ids)


def _stop(shadow: JudgeVersion, role: str) -> None:
    now = timezone.now()
    shadow.role, shadow.ended_at = role, now
    shadow.save(update_fields=["role", "ended_at"])
    Evaluation.objects.filter(shadow=shadow, status=EvaluationStatus.PENDING).update(status=EvaluationStatus.CANCELLED, finished_at=now)


def _locked_shadow(judge: Judge) -> tuple[Judge, JudgeVersion]:
    judge = Judge.objects.select_for_update().select_related("endpoint", "experiment").get(pk=judge.pk)
    shadow = current_shadow(judge)
    if shadow is None:
        raise ConfigError({"shadow": "this judge has no shadow version; start one first"})
    return judge, shadow


@transaction.atomic
def discard_shadow(judge: Judge, *, by: Any = None) -> JudgeVersion:
    """Stop the judge's shadow: its queued work is cancelled, nothing new is queued for it; its verdicts stay as
    history (marked shadow, with their version). Returns the discarded version."""
    judge, shadow = _locked_shadow(judge)
    _stop(shadow, VersionRole.DISCARDED)
    audit.record("shadow discarded", user=by, judge=judge, changes={"shadow version": [shadow.version, None]})
    return shadow


@transaction.atomic
def promote_shadow(judge: Judge, *, by: Any = None) -> JudgeVersion:
    """Make the shadow's settings the live ones: a new live version (judges.actions.update_judge — the version mark
    on the Overview, the audit entry; when on, it judges new traffic from now). Returns that new live version."""
    judge, shadow = _locked_shadow(judge)
    settings = version_settings(shadow)
    if not ModelEndpoint.objects.filter(pk=settings["endpoint"]).exists():
        raise ConfigError({"endpoint": "the shadow's model endpoint was deleted; discard the shadow and start another"})
    _stop(shadow, VersionRole.PROMOTED)
    judge = update_judge(judge, user=by, **settings)
    audit.record("shadow promoted", user=by, judge=judge, changes={"shadow version": [shadow.version, None], "version": [None, judge.version]})
    return JudgeVersion.objects.get(judge=judge, version=judge.version)


# --- what the shadow costs and says ---------------------------------------------------------------------


@dataclass
class ShadowStats:
    version: JudgeVersion
    judged: int = 0
    errors: int = 0
    queued: int = 0
    cost_usd: Decimal = Decimal(0)

    def as_json(self) -> dict[str, Any]:
        shadow = self.version
        return {
            "version": shadow.version,
            "status": shadow.role,
            "settings": version_settings(shadow),
            "model": shadow.config.get("model", ""),
            "created_at": shadow.created_at,
            "ended_at": shadow.ended_at,
            "judged": self.judged,
            "errors": self.errors,
            "queued": self.queued,
            "cost_usd": float(self.cost_usd),
        }


def shadow_stats(judges: list[Judge]) -> dict[int, ShadowStats]:
    """Per judge with a running shadow: what it judged and cost since it started, and what waits for it (kept apart
    from the live version's figures). Two queries whatever the number of judges."""
    shadows = {row.judge_id: row for row in JudgeVersion.all_objects.filter(judge__in=judges, role=VersionRole.SHADOW)}
    return stats_of(list(shadows.values()))


def stats_of(shadows: list[JudgeVersion]) -> dict[int, ShadowStats]:
    """Each shadow version's work so far (by judge id: one shadow per judge given)."""
    found = {row.judge_id: ShadowStats(row) for row in shadows}
    if not shadows:
        return found
    rows = (
        Evaluation.objects.filter(shadow__in=shadows)
        .values("judge_id", "status")
        .annotate(count=Count("pk"), cost=Sum("cost_usd"))
        .order_by()
    )
    for row in rows:
        stats = found[row["judge_id"]]
        stats.cost_usd += row["cost"] or 0
        if row["status"] == EvaluationStatus.DONE:
            stats.judged += row["count"]
        elif row["status"] == EvaluationStatus.ERROR:
            stats.errors += row["count"]
        elif row["status"] in (EvaluationStatus.PENDING, EvaluationStatus.RUNNING):
            stats.queued += row["count"]
    return found


def _same(a: Any, b: Any) -> bool:
    return a == b and type(a) is type(b)


@dataclass
class DiffRow:
    target_pk: int
    target_id: str
    live_value: Any
    live_rationale: str
    live_version: int | None
    shadow_value: Any
    shadow_rationale: str
    human_value: Any = None
    human_by: str = ""
    labelled: bool = False


@dataclass
class ShadowDiff:
    judge: Judge
    shadow: JudgeVersion
    compared: int  # items both versions judged (no error)
    rows: list[DiffRow] = field(default_factory=list)  # this page's disagreements
    total: int = 0  # disagreements in all
    page: int = 1
    pages: int = 1
    live_agreement: Agreement | None = None
    shadow_agreement: Agreement | None = None

    def as_json(self) -> dict[str, Any]:
        key = "session_id" if self.judge.scope == Scope.SESSION else "trace_id"
        return {
            "judge": self.judge.name,
            "live_version": self.judge.version,
            "shadow_version": self.shadow.version,
            "shadow_status": self.shadow.role,
            "compared": self.compared,
            "disagreements": self.total,
            "page": self.page,
            "pages": self.pages,
            "agreement_with_people": {
                "live": self.live_agreement.as_json() if self.live_agreement else None,
                "shadow": self.shadow_agreement.as_json() if self.shadow_agreement else None,
            },
            "results": [
                {
                    key: row.target_id,
                    "live": {"value": row.live_value, "rationale": row.live_rationale, "version": row.live_version},
                    "shadow": {"value": row.shadow_value, "rationale": row.shadow_rationale, "version": self.shadow.version},
                    "human": {"value": row.human_value, "labelled_by": row.human_by} if row.labelled else None,
                }
                for row in self.rows
            ],
        }


def shadow_for_diff(judge: Judge, version: int | None = None) -> JudgeVersion | None:
    """The shadow the diff shows: the running one, or the given (past) shadow version, else the latest ended."""
    shadows = JudgeVersion.all_objects.filter(judge_id=judge.pk).exclude(role=VersionRole.LIVE)
    if version is not None:
        return shadows.filter(version=version).first()
    return current_shadow(judge) or shadows.order_by("-version").first()


def shadow_diff(judge: Judge, shadow: JudgeVersion, *, page: int = 1) -> ShadowDiff:
    """Every item where the shadow's latest verdict differs from the live version's latest verdict (errors left
    out), one page of them with both rationales and the item's first human label; and how each agrees with people
    on the items both judged that a person labelled (the same items, so the two figures compare)."""
    scope = "session" if judge.scope == Scope.SESSION else "trace"
    source = f"judge:{judge.pk}"
    shadow_rows = Assessment.all_objects.filter(
        shadow=True, source_id=source, judge_version=shadow.version, valid=True, error_code="", **{f"{scope}__isnull": False}
    ).values_list(f"{scope}_id", "pk", "value")
    said = {target: (pk, value) for target, pk, value in shadow_rows.order_by("pk") if value is not None}
    live: dict[int, tuple[int, Any]] = {}
    targets = list(said)
    for start in range(0, len(targets), 5_000):
        rows = Assessment.objects.filter(
            **{f"{scope}_id__in": targets[start : start + 5_000]}, source_id=source, source_type=AssessmentSource.LLM_JUDGE, valid=True, error_code=""
        ).values_list(f"{scope}_id", "pk", "value")
        for target, pk, value in rows.order_by("pk"):
            if value is not None:
                live[target] = (pk, value)
    both = sorted(set(said) & set(live))
    labels = load_pairs([judge])[judge.pk].first
    labelled = [pk for pk in both if pk in labels]
    scale = scale_of(judge)
    live_agreement = measured(judge.output_type, [live[pk][1] for pk in labelled], [labels[pk].value for pk in labelled], scale)
    shadow_type = shadow.config.get("output_type") or judge.output_type
    shadow_scale = scale_of(acting_judge(shadow, judge, endpoint=judge.endpoint)) if shadow_type != judge.output_type or shadow.config.get("categories") != judge.categories else scale
    shadow_agreement = measured(shadow_type, [said[pk][1] for pk in labelled], [labels[pk].value for pk in labelled], shadow_scale)
    differ = [pk for pk in both if not _same(live[pk][1], said[pk][1])]
    pages = max(1, -(-len(differ) // DIFF_PAGE))
    page = min(max(1, page), pages)
    shown = differ[(page - 1) * DIFF_PAGE : page * DIFF_PAGE]
    diff = ShadowDiff(judge, shadow, compared=len(both), total=len(differ), page=page, pages=pages, live_agreement=live_agreement, shadow_agreement=shadow_agreement)
    if shown:
        wanted = [live[pk][0] for pk in shown] + [said[pk][0] for pk in shown]
        extra = {
            pk: rest
            for pk, *rest in Assessment.all_objects.filter(pk__in=wanted).values_list("pk", "rationale", "judge_version", "trace__trace_id", "session__session_id")
        }
        for pk in shown:
            live_pk, shadow_pk = live[pk][0], said[pk][0]
            label = labels.get(pk)
            diff.rows.append(
                DiffRow(
                    target_pk=pk,
                    target_id=extra[live_pk][2] or extra[live_pk][3],
                    live_value=live[pk][1],
                    live_rationale=extra[live_pk][0],
                    live_version=extra[live_pk][1],
                    shadow_value=said[pk][1],
                    shadow_rationale=extra[shadow_pk][0],
                    human_value=label.value if label else None,
                    human_by=label.person if label else "",
                    labelled=label is not None,
                )
            )
    return diff


def shadow_verdicts(*, trace=None, session=None) -> list[Assessment]:
    """The shadow verdicts on one trace or session (newest first), for its page."""
    target = {"trace": trace} if trace is not None else {"session": session}
    return list(Assessment.all_objects.filter(shadow=True, **target).order_by("-created_at", "-pk"))
