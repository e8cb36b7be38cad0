"""A judge's daily spend cap, held across every worker on every machine.

Before a call, the call's estimated cost is reserved in the judge's row for the day (UTC) — refused once what is
spent and reserved reaches the cap; after it, the actual cost is settled and the reservation given back. So N
workers can't each spend the cap (each used to count only its own spend): the cap is passed by at most the calls
that started just under it, one per call in flight, and by what calls cost beyond their estimates."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import F, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from judges.llm import BUDGET_EXCEEDED, CallResult, estimate_cost
from judges.models import Judge, JudgeSpend
from judges.preparation import Prepared, endpoint_config
from traces.models import Assessment, AssessmentSource

HISTORY = 20
MARGIN = Decimal("1.25")
ZERO = Decimal(0)


def estimate(judge: Judge, prepared: Prepared) -> Decimal:
    """A little over the judge's recent calls on average; from the prompt and the model's prices before it has any."""
    recent = list(
        Assessment.objects.filter(source_type=AssessmentSource.LLM_JUDGE, source_id=f"judge:{judge.pk}", cost_usd__isnull=False)
        .order_by("-pk")
        .values_list("cost_usd", flat=True)[:HISTORY]
    )
    if recent:
        return (sum(recent, ZERO) / len(recent) * MARGIN).quantize(Decimal("0.00000001"))
    guessed = estimate_cost(endpoint_config(judge.endpoint), prepared.prompt.messages) if prepared.prompt else None
    return guessed or ZERO


def _today():
    return timezone.now().date()


def _spent_since_midnight(judge: Judge) -> Decimal:
    midnight = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0)
    total = Assessment.objects.filter(
        source_type=AssessmentSource.LLM_JUDGE, source_id=f"judge:{judge.pk}", created_at__gte=midnight
    ).aggregate(total=Sum("cost_usd"))["total"]
    return total or ZERO


def reserve(judge: Judge, amount: Decimal) -> CallResult | None:
    """None when the call may go ahead (its estimate is now reserved); else the "cap reached" result to record."""
    cap = judge.daily_cost_cap_usd
    if cap is None or judge.pk is None:
        return None
    day = _today()
    row = JudgeSpend.objects.filter(judge_id=judge.pk, day=day)
    if not row.exists():  # the day's first call: start from what the judge's verdicts today already cost
        JudgeSpend.objects.bulk_create([JudgeSpend(judge_id=judge.pk, day=day, spent_usd=_spent_since_midnight(judge))], ignore_conflicts=True)
    if row.filter(spent_usd__lt=Value(cap) - F("reserved_usd")).update(reserved_usd=F("reserved_usd") + amount):
        return None
    spent = row.values_list("spent_usd", flat=True).first() or ZERO
    return CallResult(
        error_code=BUDGET_EXCEEDED,
        error_message=f"The judge's daily spend cap of ${cap} was reached (${spent:.4f} spent today, UTC, with calls in flight); "
        "not judged. It resumes tomorrow, or raise the cap.",
    )


def settle(judge: Judge, reserved: Decimal, cost: Decimal | None) -> None:
    """After the call: its actual cost counts, its reservation is given back."""
    if judge.daily_cost_cap_usd is None or judge.pk is None:
        return
    JudgeSpend.objects.filter(judge_id=judge.pk, day=_today()).update(
        spent_usd=F("spent_usd") + (cost or ZERO), reserved_usd=Greatest(F("reserved_usd") - reserved, Value(ZERO))
    )
