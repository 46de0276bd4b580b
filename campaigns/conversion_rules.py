"""Which message a goal event converts: plain Python, no Django (campaigns/conversions.py
loads the rows and stores the result).

Last touch: a goal event of type T by a customer at time t is credited to one of the messages
sent to them whose campaign's goal is T and whose window holds t (sent_at <= t <= sent_at +
window): the one clicked last before t, else the one sent last. Only that message converts,
and only once (a message already converted keeps its first conversion; the credit does not
move to another message).

Held-out recipients (campaign holdout, global control group) got no message, so they compete
for nothing: each of their rows whose window holds t converts, with its row's creation (the
moment the message would have gone) as the reference time. That is the counterfactual the
report compares against: what the campaign's recipients would have done without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal


@dataclass(frozen=True)
class Goal:
    """One goal event."""

    event_pk: int
    customer_id: int
    type: str
    occurred_at: datetime
    value: Decimal | None = None


@dataclass(frozen=True)
class Touch:
    """One message (or held-out row) that may convert."""

    message_id: int
    goal_type: str
    reference_at: datetime  # sent_at, or created_at for a held-out row
    window: timedelta
    clicked_at: datetime | None = None
    control: bool = False
    converted: bool = False

    def holds(self, goal: Goal) -> bool:
        return (
            goal.type == self.goal_type
            and self.reference_at <= goal.occurred_at <= self.reference_at + self.window
        )


def _last_touch(touches: Sequence[Touch], at: datetime) -> Touch | None:
    clicked = [t for t in touches if t.clicked_at is not None and t.clicked_at <= at]
    if clicked:
        return max(clicked, key=lambda t: (t.clicked_at, t.reference_at, t.message_id))
    if touches:
        return max(touches, key=lambda t: (t.reference_at, t.message_id))
    return None


def conversions_attribute(
    goals: Iterable[Goal], touches: Mapping[int, Sequence[Touch]]
) -> dict[int, Goal]:
    """{message_id: the goal event that converts it} for the messages not yet converted;
    `touches` maps a customer to theirs. Goals are taken in time order, so of two purchases
    the first converts."""
    converted: dict[int, Goal] = {}
    for goal in sorted(goals, key=lambda g: (g.occurred_at, g.event_pk)):
        candidates = [t for t in touches.get(goal.customer_id, ()) if t.holds(goal)]
        credited = [t for t in candidates if t.control]
        winner = _last_touch([t for t in candidates if not t.control], goal.occurred_at)
        if winner is not None:
            credited.append(winner)
        for touch in credited:
            if not touch.converted and touch.message_id not in converted:
                converted[touch.message_id] = goal
    return converted
