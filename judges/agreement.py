"""How well a judge agrees with people: the numbers from pairs (judge verdict, human label), no Django.

For yes/no and category judges: accuracy, Cohen's κ and the confusion matrix. For whole-number judges (an ordered
scale): accuracy, κ with **quadratic** weights (a 4 for a 5 costs less than a 1 for a 5), MAE and Spearman's ρ. For
decimal judges: MAE and Spearman's ρ. Every figure carries a 95% interval from `scipy.stats.bootstrap` (percentile
method, paired resampling — a pair is resampled whole — and a fixed seed, so the same pairs give the same interval).
Below `MIN_PAIRS` pairs nothing is estimated: the answer is "insufficient", not a number that means nothing.

κ is computed here (numpy, a few lines) rather than taken from scikit-learn, which the project doesn't install;
`cohen_kappa` matches sklearn.metrics.cohen_kappa_score (tested on a fixed set against the hand computation).

numpy and scipy are imported inside the functions that compute: many modules import this one for its constants and
classes, and every Django process (the worker's four idle processes too) would otherwise carry them (design note
47)."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

MIN_PAIRS = 20
CONFIDENCE = 0.95
RESAMPLES = 1000
SEED = 20261206

# Output types (judges.models.OutputType values) and what is measured for each.
NOMINAL = ("boolean", "categorical")
ORDINAL = ("integer",)
CONTINUOUS = ("float",)


@dataclass(frozen=True)
class Estimate:
    """One figure with its 95% bootstrap interval (low/high None when the resamples cannot vary it)."""

    value: float
    low: float | None
    high: float | None

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2

    def as_json(self) -> dict[str, float | None]:
        return {"value": _round(self.value), "low": _round(self.low), "high": _round(self.high)}


def _round(number: float | None) -> float | None:
    return None if number is None or not math.isfinite(number) else round(float(number), 4)


@dataclass
class Agreement:
    """What a set of pairs says. `sufficient` False: only `n` (and the confusion matrix) mean anything."""

    output_type: str
    n: int
    sufficient: bool
    accuracy: Estimate | None = None
    kappa: Estimate | None = None
    kappa_weights: str | None = None  # None (plain), "quadratic" (ordered scales)
    mae: Estimate | None = None
    spearman: Estimate | None = None
    labels: list[Any] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)  # rows: the judge's value, columns: the person's

    @property
    def needed(self) -> int:
        return max(0, MIN_PAIRS - self.n)

    def as_json(self) -> dict[str, Any]:
        figures = {name: getattr(self, name) for name in ("accuracy", "kappa", "mae", "spearman")}
        return {
            "n": self.n,
            "status": "ok" if self.sufficient else "insufficient",
            "min_pairs": MIN_PAIRS,
            **{name: (estimate.as_json() if estimate is not None else None) for name, estimate in figures.items()},
            "kappa_weights": self.kappa_weights,
            "confusion": {"labels": self.labels, "rows": self.confusion} if self.labels else None,
        }


def _codes(judge: Sequence[Any], human: Sequence[Any], labels: Sequence[Any] | None) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Both sides as integer codes 0..k-1 over one label list (the given order, then any value seen, sorted)."""
    import numpy as np

    known = list(labels or [])
    seen = [value for value in sorted({*judge, *human}, key=lambda v: (str(type(v)), v)) if value not in known]
    order = known + seen
    index = {_key(value): position for position, value in enumerate(order)}
    return (
        np.array([index[_key(v)] for v in judge], dtype=np.int64),
        np.array([index[_key(v)] for v in human], dtype=np.int64),
        order,
    )


def _key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)  # True and 1 are different labels


def confusion_matrix(judge_codes: np.ndarray, human_codes: np.ndarray, k: int) -> np.ndarray:
    """k×k counts; a leading batch axis is kept (one matrix per resample)."""
    import numpy as np

    batch = judge_codes.shape[:-1]
    flat = (judge_codes * k + human_codes).reshape(-1, judge_codes.shape[-1])
    offsets = (np.arange(flat.shape[0]) * k * k)[:, None]
    counts = np.bincount((flat + offsets).ravel(), minlength=flat.shape[0] * k * k)
    return counts.reshape(*batch, k, k)


def kappa_from_confusion(matrix: np.ndarray, weights: str | None = None) -> np.ndarray:
    """Cohen's κ of one or many k×k matrices: 1 − Σw·observed / Σw·expected, with w = 0/1 (plain), |i−j| (linear) or
    (i−j)² (quadratic). Where chance agreement is total (every pair the same single value) κ is undefined: NaN."""
    import numpy as np

    k = matrix.shape[-1]
    i, j = np.indices((k, k))
    w = {None: (i != j).astype(float), "linear": np.abs(i - j).astype(float), "quadratic": ((i - j) ** 2).astype(float)}[weights]
    total = matrix.sum(axis=(-2, -1), keepdims=True).astype(float)
    observed = matrix / total
    expected = observed.sum(axis=-1, keepdims=True) * observed.sum(axis=-2, keepdims=True)
    disagreement_expected = (w * expected).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - (w * observed).sum(axis=(-2, -1)) / disagreement_expected


def cohen_kappa(judge: Sequence[Any], human: Sequence[Any], *, labels: Sequence[Any] | None = None, weights: str | None = None) -> float:
    judge_codes, human_codes, order = _codes(judge, human, labels)
    return float(kappa_from_confusion(confusion_matrix(judge_codes, human_codes, len(order)), weights))


def _rank(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values, axis=-1)


def _spearman(judge: np.ndarray, human: np.ndarray) -> np.ndarray:
    import numpy as np

    # Pearson's r of the ranks (ties averaged) = scipy.stats.spearmanr, vectorised over the resamples.
    a, b = _rank(judge), _rank(human)
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a * b).sum(axis=-1) / np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))


def _intervals(statistics, judge: np.ndarray, human: np.ndarray, seed: int, undefined: tuple[float, ...]) -> list[Estimate]:
    """One bootstrap for several figures (the same resamples): each statistic maps (judge, human) → a value per
    resample. A rare resample can leave a figure undefined — κ when both sides give one same value throughout
    (chance agreement is total, and so is the agreement), ρ when a side is constant — and it counts as the
    figure's `undefined` value (κ 1, ρ 0) rather than voiding the whole interval."""
    import numpy as np
    from scipy.stats import bootstrap

    points = [float(statistic(judge, human)) for statistic in statistics]
    both = lambda a, b, axis=-1: np.stack([np.nan_to_num(statistic(a, b), nan=fill) for statistic, fill in zip(statistics, undefined, strict=True)])  # noqa: E731
    # Resamples that cannot vary a figure (every pair agrees) make scipy warn; such a figure gets no interval below.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bootstrap(
            (judge, human), both, paired=True, vectorized=True, n_resamples=RESAMPLES,
            confidence_level=CONFIDENCE, method="percentile", random_state=np.random.default_rng(seed),
        )
    estimates = []
    for point, low, high in zip(points, np.atleast_1d(result.confidence_interval.low), np.atleast_1d(result.confidence_interval.high), strict=True):
        finite = math.isfinite(point) and math.isfinite(low) and math.isfinite(high)
        estimates.append(Estimate(point, float(low), float(high)) if finite else Estimate(point, None, None))
    return estimates


def _accuracy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b).mean(axis=-1)


def _mae(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.abs(a - b).mean(axis=-1)


def measure(output_type: str, judge: Sequence[Any], human: Sequence[Any], *, labels: Sequence[Any] | None = None, seed: int = SEED) -> Agreement:
    """Agreement of `judge[i]` with `human[i]` for a judge of `output_type` (OutputType values; "string" judges
    have no agreement: free text is not compared). `labels`: the judge's categories or scale, in order."""
    if len(judge) != len(human):
        raise ValueError("judge and human must be paired: the same length")
    n = len(judge)
    result = Agreement(output_type=output_type, n=n, sufficient=n >= MIN_PAIRS)
    if not n:  # nothing labelled yet (most judges, most of the time): no numpy for an empty answer
        result.labels = list(labels or []) if output_type in NOMINAL + ORDINAL else []
        return result
    import numpy as np

    if output_type in NOMINAL + ORDINAL:
        judge_codes, human_codes, order = _codes(judge, human, labels)
        k = max(1, len(order))
        result.labels = order
        result.confusion = confusion_matrix(judge_codes, human_codes, k).tolist() if n else []
        if result.sufficient:
            weights = "quadratic" if output_type in ORDINAL else None
            result.kappa_weights = weights
            kappa = lambda a, b: kappa_from_confusion(confusion_matrix(a, b, k), weights)  # noqa: E731
            result.accuracy, result.kappa = _intervals([_accuracy, kappa], judge_codes, human_codes, seed, undefined=(0.0, 1.0))
    if output_type in ORDINAL + CONTINUOUS and result.sufficient:
        a, b = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
        result.mae, result.spearman = _intervals([_mae, _spearman], a, b, seed, undefined=(0.0, 0.0))
    return result


def more_for_half_width(agreement: Agreement, target: float = 0.10) -> int | None:
    """A projection, not a promise: how many more pairs would bring κ's interval to ±`target`, assuming its width
    shrinks as 1/√n (as a bootstrap interval does for a steady rate of agreement). None when it can't be said."""
    if not agreement.sufficient or agreement.kappa is None:
        return None
    half = agreement.kappa.half_width
    if half is None:
        return None
    if half <= target:
        return 0
    return math.ceil(agreement.n * (half / target) ** 2) - agreement.n


@functools.lru_cache(maxsize=16_384)
def wilson_interval(passes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """The Wilson score interval of the rate `passes` / `n` (scipy.stats.binomtest's `proportion_ci`), None when `n` is
    0. scipy is imported here, on the first rate shown, not when a process starts (design note 47); the same counts
    (a 30-day Overview's 60-odd buckets, shown again) are not worked out again (py-spy: `proportion_ci` was 15% of a
    30-day view, note 48)."""
    if n <= 0:
        return None
    from scipy.stats import binomtest

    interval = binomtest(int(passes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(interval.low), float(interval.high)


# --- a pass rate corrected for the judge's measured errors (Rogan–Gladen) -------------------------------------


def rogan_gladen(raw_rate: float, sensitivity: float, specificity: float) -> float | None:
    """The true share of "yes" behind an observed share `raw_rate` from a judge that says yes to a real yes with
    probability `sensitivity` and no to a real no with `specificity` (Rogan & Gladen, 1978), clipped to [0, 1].
    None when the judge is no better than chance (sensitivity + specificity ≤ 1): nothing can be corrected."""
    informedness = sensitivity + specificity - 1
    if not informedness > 0:
        return None
    return min(1.0, max(0.0, (raw_rate + specificity - 1) / informedness))


@dataclass(frozen=True)
class CorrectedRate:
    """A yes/no judge's pass rate corrected with its sensitivity and specificity measured against people's labels.
    `status`: "ok"; "not_enough_labels" (fewer than MIN_PAIRS pairs, or people never said yes or never said no);
    "not_correctable" (the judge is no better than chance on the labels)."""

    status: str
    pairs: int
    human_yes: int
    human_no: int
    sensitivity: float | None = None
    specificity: float | None = None
    value: float | None = None
    low: float | None = None
    high: float | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "pairs": self.pairs,
            "min_pairs": MIN_PAIRS,
            "human_yes": self.human_yes,
            "human_no": self.human_no,
            "sensitivity": _round(self.sensitivity),
            "specificity": _round(self.specificity),
            "pass_rate": _round(self.value),
            "low": _round(self.low),
            "high": _round(self.high),
        }


def _rates(judge: np.ndarray, human: np.ndarray, axis: int = -1) -> np.ndarray:
    """(sensitivity, specificity) of 0/1 arrays, per resample; NaN where a resample has no real yes (or no)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = (judge * human).sum(axis=axis) / human.sum(axis=axis)
        specificity = ((1 - judge) * (1 - human)).sum(axis=axis) / (1 - human).sum(axis=axis)
    return np.stack([sensitivity, specificity])


def corrected_pass_rate(judge: Sequence[bool], human: Sequence[bool], passes: int, verdicts: int, *, seed: int = SEED) -> CorrectedRate:
    """Rogan–Gladen on the raw rate `passes / verdicts`, with sensitivity and specificity from the pairs
    (judge[i], human[i]). The 95% interval is a percentile interval over RESAMPLES joint draws: the pairs resampled
    by `scipy.stats.bootstrap` (paired; its bootstrap distribution of sensitivity and specificity) and, for each,
    the raw rate redrawn from `scipy.stats.binom` (a resample of the verdicts: its count of yes is exactly
    Binomial(verdicts, raw rate)). Resamples where the correction is undefined (no real yes or no drawn, or no
    better than chance) are left out."""
    n, yes = len(human), sum(1 for value in human if value)
    if n < MIN_PAIRS or yes == 0 or yes == n or not verdicts:
        return CorrectedRate("not_enough_labels", n, yes, n - yes)
    import numpy as np
    from scipy.stats import binom, bootstrap

    judge_codes = np.asarray([1 if value else 0 for value in judge], dtype=np.int64)
    human_codes = np.asarray([1 if value else 0 for value in human], dtype=np.int64)
    sensitivity, specificity = (float(rate) for rate in _rates(judge_codes, human_codes))
    raw = passes / verdicts
    point = rogan_gladen(raw, sensitivity, specificity)
    if point is None:
        return CorrectedRate("not_correctable", n, yes, n - yes, sensitivity, specificity)
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = bootstrap(
            (judge_codes, human_codes), _rates, paired=True, vectorized=True, n_resamples=RESAMPLES,
            confidence_level=CONFIDENCE, method="percentile", random_state=rng,
        )
    resampled_se, resampled_sp = result.bootstrap_distribution
    resampled_raw = binom.rvs(verdicts, raw, size=resampled_se.shape[-1], random_state=rng) / verdicts
    informedness = resampled_se + resampled_sp - 1
    with np.errstate(all="ignore"):
        corrected = np.clip((resampled_raw + resampled_sp - 1) / informedness, 0.0, 1.0)
    corrected = corrected[np.isfinite(corrected) & (informedness > 0)]
    if corrected.size < RESAMPLES // 2:  # mostly undefined: no honest interval
        return CorrectedRate("ok", n, yes, n - yes, sensitivity, specificity, point)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(corrected, [tail, 100 - tail])
    return CorrectedRate("ok", n, yes, n - yes, sensitivity, specificity, point, float(low), float(high))
