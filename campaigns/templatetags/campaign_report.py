"""Filters of the campaign report: rates as percentages."""

from django import template

register = template.Library()


@register.filter
def percent(rate: float | None, signed: bool = False) -> str:
    """0.1234 -> "12.3 %" ("+12.3 %" when `signed`); "—" when there is no rate."""
    if rate is None:
        return "—"
    return f"{rate * 100:{'+' if signed else ''}.1f} %"
