"""What a reviewer of a plan must act on, worded once for the text and Markdown plans:
the safety check's verdict and how to proceed, and how to fix DNS drift. Pure."""

from __future__ import annotations

from reconciler.plan import Plan

PROCEED = (
    "If this is intended, apply it with --allow-destructive: `postform apply "
    "--allow-destructive` (a saved plan: `postform apply --allow-destructive FILE`); "
    "`postform plan --allow-destructive` shows it as overridden."
)


def safety_head(plan: Plan) -> str:
    """The verdict, followed by the reasons (one a line) in both renderings."""
    if plan.allow_destructive:
        return (
            "overridden with --allow-destructive (apply needs it too); without it, apply "
            "refuses this plan, which"
        )
    return "apply will refuse this plan, which"


def safety_text(plan: Plan) -> list[str]:
    if not plan.refusals:
        return []
    lines = [f"Safety: {safety_head(plan)}", *(f"  ! {r}" for r in plan.refusals)]
    if plan.refused:
        lines.append(PROCEED)
    return [*lines, ""]


def refused_footer(plan: Plan) -> str:
    """The line after the summary, where a long plan's reader looks last."""
    if not plan.refused:
        return ""
    return "Apply will refuse this plan without --allow-destructive (see Safety above).\n"


def drift_fix(plan: Plan) -> str:
    """The commands that put drifted records back (apply does not touch DNS)."""
    zones = plan.drift_zones or ("ZONE",)
    push = ", ".join(f"`postform dns push --server PRIMARY --zone {z}`" for z in zones)
    return (
        f"To fix it, publish the records again ({push}, or publish what `postform dns "
        "records` prints), then run `postform refresh` to record them; apply does not "
        "change DNS."
    )
