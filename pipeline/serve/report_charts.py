"""Vega-Lite specifications (built with altair) of the HTML report's charts, one function per chart.

Each takes the frame `report_data` returns and gives a plain dict spec with its data inline, so the report
renders from the file alone. Channels keep the colours the web UI's timeline uses (`CHANNEL_COLOURS`,
the same map as `ui/timeline.js`; a test keeps them equal).
"""

from __future__ import annotations

import altair as alt
import pandas as pd

CHANNEL_COLOURS = {
    "Direct": "#5f6b7a", "Organic Search": "#1b9e77", "Paid Search": "#d95f02", "Organic Social": "#7570b3",
    "Paid Social": "#e7298a", "Email": "#1f78b4", "Referral": "#a6761d", "Display": "#e6ab02",
    "Organic Video": "#66a61e", "Paid Video": "#b2182b", "Affiliates": "#8c510a", "AI Assistants": "#01665e",
    "Cross-network": "#762a83", "Paid Shopping": "#c51b7d", "Organic Shopping": "#4d9221", "Paid Other": "#bf812d",
    "Audio": "#35978f", "SMS": "#9970ab", "Mobile Push Notifications": "#5aae61", "Unassigned": "#878787",
}
SPARE = "#003c30"
OUTCOME_COLOURS = {"loaded": "#1b9e77", "duplicate": "#8c96a5", "quarantined": "#b3261e"}
MODEL_COLOURS = ["#1f78b4", "#d95f02", "#7570b3", "#1b9e77", "#e7298a", "#a6761d", "#5f6b7a"]


def count_axis(largest) -> alt.Axis:
    """An axis of counts with whole ticks only (Vega's own ticks would put 0.5 on a 0..1 scale)."""
    largest = int(largest) if largest == largest else 0  # NaN (no rows) counts as 0
    if largest <= 10:
        return alt.Axis(values=list(range(largest + 1)), format="d")
    return alt.Axis(format=",d", tickMinStep=1)


def _spec(chart: alt.TopLevelMixin) -> dict:
    """The chart as a Vega-Lite dict that fills its container's width."""
    return chart.properties(width="container").configure_view(stroke=None).to_dict()


def _channel_scale(channels) -> alt.Scale:
    present = sorted(set(channels))
    return alt.Scale(domain=present, range=[CHANNEL_COLOURS.get(c, SPARE) for c in present])


def _days_axis(days: list[str]) -> alt.X:
    """Every day of the window as a band (a day without data shows as a gap, not as a missing day)."""
    return alt.X("day:O", title=None, scale=alt.Scale(domain=days), axis=alt.Axis(labelAngle=-45, labelOverlap=True))


def channel_mix(frame: pd.DataFrame, measure: str, days: list[str], title: str) -> dict:
    """Stacked bars per day: `measure` (sessions or conversions) by channel."""
    chart = alt.Chart(frame, title=title).mark_bar().encode(
        x=_days_axis(days),
        y=alt.Y(f"{measure}:Q", title=measure, stack="zero", axis=count_axis(frame.groupby("day")[measure].sum().max())),
        color=alt.Color("channel:N", title="Channel", scale=_channel_scale(frame["channel"])),
        order=alt.Order("channel:N"),
        tooltip=["day:O", "channel:N", f"{measure}:Q"],
    ).properties(height=220)
    return _spec(chart)


def new_contacts_chart(frame: pd.DataFrame, days: list[str]) -> dict:
    """Bars per day: contacts whose first conversion fell on that day."""
    chart = alt.Chart(frame, title="New contacts per day (first conversion)").mark_bar(color="#1f5fbf").encode(
        x=_days_axis(days), y=alt.Y("contacts:Q", title="contacts", axis=count_axis(frame["contacts"].max())), tooltip=["day:O", "contacts:Q"],
    ).properties(height=180)
    return _spec(chart)


def events_chart(frame: pd.DataFrame, days: list[str]) -> dict:
    """Stacked bars per load day: events loaded, duplicate and quarantined by its latest successful run."""
    outcomes = list(OUTCOME_COLOURS)
    chart = alt.Chart(frame, title="Events per load day (latest successful run)").mark_bar().encode(
        x=_days_axis(days),
        y=alt.Y("events:Q", title="events", stack="zero", axis=count_axis(frame.groupby("day")["events"].sum().max())),
        color=alt.Color("outcome:N", title="Outcome", scale=alt.Scale(domain=outcomes, range=list(OUTCOME_COLOURS.values())),
                        sort=outcomes),
        order=alt.Order("outcome:N"),
        tooltip=["day:O", "outcome:N", "events:Q"],
    ).properties(height=180)
    return _spec(chart)


def quarantine_chart(frame: pd.DataFrame) -> dict:
    """Horizontal bars: quarantined lines by reason, most first."""
    chart = alt.Chart(frame, title="Quarantined lines by reason").mark_bar(color=OUTCOME_COLOURS["quarantined"]).encode(
        y=alt.Y("reason:N", title=None, sort="-x", axis=alt.Axis(labelLimit=320)),
        x=alt.X("events:Q", title="lines", axis=count_axis(frame["events"].max())),
        tooltip=["reason:N", "events:Q"],
    ).properties(height=alt.Step(22))
    return _spec(chart)


def attribution_chart(frame: pd.DataFrame, by: str = "channel") -> dict:
    """Grouped horizontal bars: each value's credited conversions under every model, side by side."""
    models = list(dict.fromkeys(frame["model"]))
    order = frame.groupby("value")["conversions"].sum().sort_values(ascending=False).index.tolist()
    chart = alt.Chart(frame, title=f"Conversions credited per {by}, by model").mark_bar().encode(
        y=alt.Y("value:N", title=None, sort=order, axis=alt.Axis(labelLimit=260)),
        yOffset=alt.YOffset("model:N", sort=models),
        x=alt.X("conversions:Q", title="credited conversions"),
        color=alt.Color("model:N", title="Model", sort=models, scale=alt.Scale(domain=models, range=MODEL_COLOURS[: len(models)])),
        tooltip=["model:N", alt.Tooltip("value:N", title=by), "conversions:Q", "share_percent:Q", "touches:Q"],
    ).properties(height=alt.Step(9 if len(models) > 3 else 14))
    return _spec(chart)
