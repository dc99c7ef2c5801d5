"""Boundary cases: the values on each edge of a limit and one step past it, as readable pytest parameters.

A test that tries only invalid values cannot tell ``>`` from ``>=``, nor notice a set of allowed values that
lost its first or last member. Each limit is therefore pinned by four values: one step below the minimum
(refused), the minimum (accepted), the maximum (accepted) and one step above it (refused). Every parameter is
``(value, accepted)`` with an id that reads as a sentence, e.g. ``1024 MB, the minimum, is accepted``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest

Case = Any
"""What ``pytest.param`` returns (its type is not public)."""


def case(value: object, accepted: bool, description: str) -> Case:
    """One ``(value, accepted)`` parameter whose id is ``description`` followed by the verdict."""
    return pytest.param(value, accepted, id=f"{description}, is {'accepted' if accepted else 'refused'}")


def edges(
    minimum: float | None = None, maximum: float | None = None, *, step: float = 1, unit: str = ""
) -> list[Case]:
    """The values that pin the closed range ``[minimum, maximum]``; leave out an edge the range lacks."""
    past = "just" if step == 1 else "a step"
    cases = []
    if minimum is not None:
        cases.append(
            case(minimum - step, False, f"{_number(minimum - step)}{unit}, {past} below the minimum")
        )
        cases.append(case(minimum, True, f"{_number(minimum)}{unit}, the minimum"))
    if maximum is not None:
        cases.append(case(maximum, True, f"{_number(maximum)}{unit}, the maximum"))
        cases.append(
            case(maximum + step, False, f"{_number(maximum + step)}{unit}, {past} above the maximum")
        )
    return cases


def positive(unit: str = "") -> list[Case]:
    """``> 0`` for a float: zero is refused and the smallest float above it is accepted."""
    return [
        case(0.0, False, f"0{unit}, the bound itself"),
        case(math.nextafter(0.0, 1.0), True, f"the smallest float above 0{unit}"),
    ]


def not_negative(unit: str = "") -> list[Case]:
    """``>= 0`` for a float: zero is accepted and the largest float below it is refused."""
    return [
        case(0.0, True, f"0{unit}, the bound itself"),
        case(math.nextafter(0.0, -1.0), False, f"the largest float below 0{unit}"),
    ]


def lengths(minimum: int, maximum: int, make: Callable[[int], str], what: str = "characters") -> list[Case]:
    """Strings of ``minimum - 1`` (when above 0), ``minimum``, ``maximum`` and ``maximum + 1`` characters."""
    cases = []
    if minimum > 0:
        cases.append(case(make(minimum - 1), False, f"{minimum - 1} {what}, one fewer than the minimum"))
    cases.append(case(make(minimum), True, f"{minimum} {what}, the minimum"))
    cases.append(case(make(maximum), True, f"{maximum} {what}, the maximum"))
    cases.append(case(make(maximum + 1), False, f"{maximum + 1} {what}, one more than the maximum"))
    return cases


def check(accepted: bool, refusal: str, action: Callable[[], object]) -> None:
    """``action`` succeeds when ``accepted``; otherwise it raises a ValueError matching ``refusal``."""
    if accepted:
        action()
        return
    with pytest.raises(ValueError, match=refusal):
        action()


def literally(text: str) -> str:
    """``text`` as a pattern that matches it literally (for messages with brackets, dots or asterisks)."""
    return re.escape(text)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
