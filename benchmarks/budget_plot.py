"""The budget simulation's figure and text report (matplotlib: the ``bench`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from .budget_sim import DayResult, SimConfig, WindowTrace


def _spans(windows: list[WindowTrace]) -> list[float]:
    """The windows' edges in hours after midnight: len(windows) + 1 of them."""
    first = windows[0].planned_at.replace(hour=0, minute=0)
    step = (windows[0].planned_at - windows[0].start).total_seconds() / 3600
    starts = [(w.start - first).total_seconds() / 3600 for w in windows]
    return [*starts, starts[-1] + step]


def _steps(ax: Axes, edges: list[float], values: list[float], baseline: float | None = None, **style: Any) -> None:
    ax.stairs(values, edges, baseline=baseline, **style)


def _legend_below(ax: Axes, handles: list[Any], labels: list[str]) -> None:
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)


def draw(results: list[DayResult], cfg: SimConfig, path: str) -> None:
    """Three panels over the day: spend against the budget (every seed), rates and traffic, cost per item."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (spend, rates, costs) = plt.subplots(3, 1, figsize=(10, 14), gridspec_kw={"height_ratios": [3, 3, 2]})
    first = results[0]
    edges = _spans(first.windows)
    hours = edges[1:]  # when each window closed and was planned
    for r in results[1:]:
        spend.plot([h for h, _ in r.spend_curve], [s for _, s in r.spend_curve], color="tab:blue", alpha=0.15, lw=0.7)
    spend.plot([h for h, _ in first.spend_curve], [s for _, s in first.spend_curve], color="tab:blue", lw=1.8,
               label=f"settled spend (seed {first.seed}; faint: the other {len(results) - 1} seeds)")
    spend.plot(hours, [w.committed for w in first.windows], "o", ms=3, color="tab:orange",
               label="at each plan: settled + outstanding reservations + this window's")
    spend.axhline(cfg.budget_usd, color="black", lw=1, label=f"budget ${cfg.budget_usd:g}/day")
    spend.axhspan(cfg.budget_usd * 0.95, cfg.budget_usd * 1.01, color="tab:green", alpha=0.15,
                  label="target: -5 % .. +1 %")
    spend.set_ylabel("USD")
    spend.set_xlabel("hours after midnight (UTC): when an item was judged, or a window planned")
    spend.set_title(f"Spend against the budget: {len(results)} simulated days")
    spend.legend(loc="upper left", fontsize=8)

    _steps(rates, edges, [w.rate * 100 for w in first.windows], color="tab:blue", lw=2.5,
           label="the largest stratum: the common rate where minimums do not bind")
    _steps(rates, edges, [w.rare_rate * 100 for w in first.windows], color="tab:red", lw=1.2,
           label=f"the 0.5 % stratum (min {cfg.min_items} items a window)")
    rates.set_yscale("log")
    rates.set_ylabel("sampling rate, % (log)")
    traffic = rates.twinx()
    _steps(traffic, edges, [w.count for w in first.windows], baseline=1.0, color="grey", alpha=0.25, fill=True,
           label="traces in the window")
    _steps(traffic, edges, [w.expected for w in first.windows], color="black", lw=0.8, ls="--",
           label="traces expected from the previous days")
    traffic.set_yscale("log")
    traffic.set_ylabel("traces per window (log)")
    rates.set_zorder(traffic.get_zorder() + 1)
    rates.patch.set_visible(False)
    rates.set_xlabel("hour of the window (UTC)")
    rates.set_title(f"Rates (seed {first.seed}): the {cfg.spike_factor:g}x spike at {cfg.spike_hour}:00 gets a "
                    "lower rate, not more money")
    a, b = rates.get_legend_handles_labels()
    c, d = traffic.get_legend_handles_labels()
    _legend_below(rates, a + c, b + d)

    _steps(costs, [*hours, hours[-1] + edges[1] - edges[0]], [w.cost_per_item * 1000 for w in first.windows],
           color="tab:purple", lw=1.5, label="the cost per item each plan used")
    grid = [cfg.hit_jump_hour - 24, cfg.hit_jump_hour, cfg.hit_jump_hour + 24]
    true = [cfg.cost_per_call * (1 - h) * 1000 for h in (cfg.hit_rate_before, cfg.hit_rate_after)]
    _steps(costs, grid, true, color="black", lw=0.8, ls=":", label="true mean cost of an item at the time")
    costs.set_xlim(spend.get_xlim())
    rates.set_xlim(spend.get_xlim())
    costs.set_ylabel("USD per 1,000 items")
    costs.set_xlabel("hours after midnight (UTC): when the window was planned")
    costs.set_title(f"Cost: the default until calls are priced; cache hits {cfg.hit_rate_before:.0%} -> "
                    f"{cfg.hit_rate_after:.0%} at {cfg.hit_jump_hour:g}:00")
    costs.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(results: list[DayResult], summary: dict[str, Any]) -> str:
    s = summary
    ratio = s["spend_over_budget"]
    lines = [
        f"{s['seeds']} simulated days, ${results[0].budget:g}/day, {s['seconds']} s",
        f"spend / budget: mean {ratio['mean']:.4f}, min {ratio['min']:.4f}, max {ratio['max']:.4f}",
        f"  within 5 % of the budget: {s['within_5pct']} of {s['seeds']} days; more than 1 % over: "
        f"{s['more_than_1pct_over']}; windows that reserved more than was left: {s['planned_past_the_budget']}",
        f"items judged per day: {s['items_per_day']:,.0f}; skipped for budget: {s['skipped_for_budget']} in all; "
        f"windows whose minimums were cut (the day's money could not pay them all): {s['windows_with_minimums_cut']}",
        f"strata short of their day's minimum: {s['strata_short_of_day_minimum']}; (window, stratum) pairs short "
        f"of min(min_items, traces): {s['window_strata_short']}",
        f"weighted estimate's 95 % interval covers the day's truth: {s['covered']} of {s['seeds']} "
        f"({s['coverage']:.0%}); mean half-width {s['mean_halfwidth']:.4f}",
        f"bias: weighted {s['weighted_bias']:+.4f}, unweighted {s['unweighted_bias']:+.4f} (the spike's traces "
        "weigh 10x more)",
    ]
    first = results[0]
    lines.append(f"seed {first.seed}, window by window (closes at, traces, expected, largest stratum's rate, "
                 "0.5 % stratum's, share $, reserved $, $/item):")
    for w in first.windows:
        lines.append(f"  {w.planned_at:%H:%M} {w.count:7,d} {w.expected:9,.0f} {w.rate:8.3%} {w.rare_rate:8.2%} "
                     f"{w.window_budget:7.3f} {w.reserved:7.3f} {w.cost_per_item:.5f}")
    return "\n".join(lines)
