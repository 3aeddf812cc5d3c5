"""`postform relay usage`: a month's emails per day and sending domain, and their cost,
over the fleet when the fleet shares a store (its event table), else from this host's
event files (and with --local)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from typing import Annotated

import typer

import relay.usage as usage_module
from relay.cli.options import DEFAULT_CONFIG, ConfigOpt, DataDirOpt, data_folder, out, site_for
from relay.cli.trace import LocalOpt
from relay.contract.errors import ExitStatus
from relay.fleetevents import fleet_target, fleet_usage
from relay.usage import (
    DEFAULT_FREE,
    DEFAULT_PRICE_PER_1000,
    Pricing,
    UsageError,
    parse_month,
    read_usage,
)
from relay.usagereport import as_csv, as_text, summary


def usage(
    ctx: typer.Context,
    config: ConfigOpt = DEFAULT_CONFIG,
    data_dir: DataDirOpt = None,
    month: Annotated[
        str | None, typer.Option("--month", help="YYYY-MM (UTC); the current month if omitted.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    as_csv_rows: Annotated[
        bool, typer.Option("--csv", help="Print CSV, one row per day and domain.")
    ] = False,
    free: Annotated[
        int, typer.Option("--free", help="Emails free per month.", min=0)
    ] = DEFAULT_FREE,
    price: Annotated[
        str, typer.Option("--price-per-1000", help="Price per 1,000 emails past the free ones.")
    ] = str(DEFAULT_PRICE_PER_1000),
    local: LocalOpt = False,
) -> ExitStatus:
    """Emails sent this month (or --month) per day and sending domain, with the cost under
    OCI Email Delivery's model: each recipient of an accepted message is one email."""
    if as_json and as_csv_rows:
        raise UsageError("--json and --csv cannot be used together: choose one")
    pricing = Pricing(free=free, per_thousand=_price(price))
    now = usage_module.now_utc()  # looked up here: tests replace the clock
    chosen = parse_month(month, now)
    site = site_for(ctx, config)
    target = None if local else fleet_target(site)
    if target is not None:
        result, where = fleet_usage(target, chosen), "the fleet's events"
    else:
        folder = data_folder(site, data_dir)
        result, where = read_usage(folder, chosen), str(folder)
    if not result.cells:
        sys.stderr.write(f"no accepted or delivered mail in {chosen} in {where}\n")
    if as_csv_rows:
        out(as_csv(result))
    elif as_json:
        out(json.dumps(summary(result, pricing, now), indent=2) + "\n")
    else:
        out(as_text(summary(result, pricing, now)))
    return ExitStatus.OK


def _price(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise UsageError(f"--price-per-1000 {text!r}: expected a number such as 0.085")
    return value
