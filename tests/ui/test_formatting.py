"""format_cost: the one way the pages (Overview, trace and conversation pages, judge cards, "Try it") show money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from evalapp.ui.formatting import format_cost


@pytest.mark.parametrize(
    ("cost", "shown"),
    [
        (None, ""),  # unknown: the page leaves it out rather than claim $0
        (Decimal("0"), "$0"),
        (0.0, "$0"),
        (Decimal("0.000214"), "$0.000214"),
        (Decimal("0.0075"), "$0.007500"),
        (0.0075, "$0.007500"),  # the Overview's sums arrive as floats
        (Decimal("0.0123"), "$0.0123"),
        (Decimal("0.5"), "$0.5000"),
        (Decimal("1.5"), "$1.50"),
        (Decimal("1234.5"), "$1,234.50"),
    ],
)
def test_costs_read_in_dollars_with_the_places_their_size_needs(cost, shown):
    assert format_cost(cost) == shown
