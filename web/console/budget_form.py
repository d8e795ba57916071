"""The wizard's budget step: a total and a cap for each channel the campaign sends on.

Both are optional: an empty total with caps per channel holds each channel to its own
cap; an empty form means no cap at all. The values are checked as the spec's ``budget``
is (``campaigns.fields``); a cap for a channel the campaign no longer sends on (its
channel changed) is shown so that it can be cleared, with readiness's problem under it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from campaigns import budgets, pricing
from campaigns.models import Campaign
from web.console.wizard_steps import Reading


def channels(c: Campaign) -> list[str]:
    """The channels offered a cap: the campaign's own and its fallback's, then any capped already."""
    used = budgets.channels(c)
    return used + sorted(set(c.budget_by_channel or {}) - set(used))


def fill(c: Campaign) -> dict[str, Any]:
    """The total and the caps, in the price table's currency (empty: none)."""
    budget = budgets.Budget.of(c)
    form = {"budget": "" if budget.total is None else str(pricing.money(budget.total))}
    for ch in channels(c):
        cap = budget.by_channel.get(ch)
        form[f"budget.{ch}"] = "" if cap is None else str(pricing.money(cap))
    return form


def read(form: Mapping[str, str], offered: list[str]) -> Reading:
    """The most the campaign may spend in total and on each of the ``offered`` channels."""
    r = Reading({"budget": form.get("budget", "").strip()})
    for ch in offered:
        r.form[f"budget.{ch}"] = form.get(f"budget.{ch}", "").strip()
    split = {ch: r.form[f"budget.{ch}"] for ch in offered if r.form[f"budget.{ch}"]}
    if split:
        r.take("budget", ({"total": r.form["budget"]} if r.form["budget"] else {}) | split)
    elif r.form["budget"]:
        r.take("budget", r.form["budget"])
    else:
        r.changes.update(budget_micros=None, budget_by_channel=None)
    return r
