"""The rule in words (segment page, delete message, API's rules_text): the builder's words."""

from profiles.segments.rules import rules_describe


def _did(event_type: str, op: str, value: int, **extra) -> dict:
    return {"kind": "event", "event_type": event_type, "op": op, "value": value} | {
        "aggregate": "count",
        **extra,
    }


def test_rule_in_words_uses_the_builders_labels():
    rules = {
        "op": "and",
        "conditions": [
            _did("purchase", "gte", 2, category="Shoes", within_days=30),
            _did("email_open", "eq", 0, within_days=60),
            {
                "op": "or",
                "conditions": [
                    {"kind": "profile", "field": "birth_date", "op": "exists"},
                    {"kind": "profile", "field": "attributes.tier", "op": "eq", "value": "gold"},
                    {"kind": "feature", "field": "revenue", "op": "gt", "value": 100},
                ],
            },
            {"kind": "consent", "purpose": "marketing_email", "op": "granted"},
            {"kind": "reachable", "channel": "sms", "op": "is_not"},
            {"kind": "segment", "segment": 7, "op": "not_in"},
            _did("push_open", "gte", 1),
        ],
    }

    assert rules_describe(rules, {7: "VIPs"}) == (
        "purchase of Shoes ≥ 2 times in the last 30 days"
        " and did not open an email in the last 60 days"
        " and (birth date is set or attributes.tier is gold or revenue > 100)"
        " and consent to marketing email granted"
        " and not reachable by sms"
        " and not in VIPs"
        " and open a push ≥ 1 time"
    )
