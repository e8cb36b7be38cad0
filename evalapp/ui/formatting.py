"""Numbers as every page shows them."""

from __future__ import annotations

from decimal import Decimal


def format_cost(cost_usd: Decimal | float | None) -> str:
    """US dollars: "" when unknown (None), "$0", cents from a dollar up ("$1,234.50"), four places down to a cent
    ("$0.0123") and six below it ("$0.000214"), where single judgements' costs live."""
    if cost_usd is None:
        return ""
    if not cost_usd:
        return "$0"
    if cost_usd >= 1:
        return f"${cost_usd:,.2f}"
    return f"${cost_usd:.4f}" if cost_usd >= Decimal("0.01") else f"${cost_usd:.6f}"
