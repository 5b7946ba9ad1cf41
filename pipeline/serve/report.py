"""`python -m pipeline report`: one self-contained HTML file with the report's charts (SPEC section 15).

The page carries its data (Vega-Lite specs with inline datasets, plus the same numbers as tables) and the
Vega, Vega-Lite and vega-embed builds kept in `vendor/`, inlined: it opens offline and fetches nothing.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from pipeline.serve import report_charts as charts
from pipeline.serve import report_data as data
from pipeline.serve.reader import snapshot
from pipeline.settings import Settings
from pipeline.warehouse.engines import WarehouseError, read_only_engine

log = logging.getLogger("pipeline.report")
HERE = Path(__file__).resolve().parent
VENDOR = HERE / "vendor"
SCRIPTS = ("vega.min.js", "vega-lite.min.js", "vega-embed.min.js")


@dataclass(frozen=True)
class Report:
    """What was written: the file, its window and how many charts it holds."""

    path: Path
    window: data.Window
    charts: int


def inline_json(value) -> str:
    """JSON safe inside a <script> element: no `</script>`, no HTML comment or CDATA openers."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def vendored_scripts() -> list[str]:
    """The chart library's builds, without source-map comments (nothing for a browser to look up)."""
    return [re.sub(r"//# sourceMappingURL=\S+", "", (VENDOR / name).read_text(encoding="utf-8")) for name in SCRIPTS]


def collect(settings: Settings, start: date | None, end: date | None) -> dict:
    """Every section's frames for the window, from one published state, plus the attribution reports."""
    try:
        found = _published_frames(settings, start, end)
    except (OperationalError, ProgrammingError) as exc:  # no file, no tables yet, server down
        where = make_url(settings.warehouse_url).render_as_string(hide_password=True)
        raise WarehouseError(f"cannot read the warehouse {where} (has `python -m pipeline run` published to it?): "
                             f"{str(exc.orig or exc).splitlines()[0]}") from None
    reports = data.attribution_by_model(settings, found["window"])
    found["attribution"] = data.attribution_frame(reports)
    found["attributed_conversions"] = max((r["conversions"] for r in reports.values()), default=0)
    return found


def _published_frames(settings: Settings, start: date | None, end: date | None) -> dict:
    with snapshot(read_only_engine(settings.warehouse_url)) as conn:
        window = data.report_window(conn, start, end)
        runs = data.runs_in_window(conn, window)
        found = {
            "window": window,
            "sessions": data.sessions_by_channel(conn, window),
            "conversions": data.conversions_by_channel(conn, window),
            "contacts": data.new_contacts(conn, window),
            "runs": runs,
            "events": data.events_by_load_day(runs),
            "quarantine": data.quarantine_by_reason(conn, window),
        }
    return found


def chart_specs(found: dict) -> dict[str, dict]:
    """The Vega-Lite spec of each chart that has data, by the id of the element it is drawn into."""
    days, specs = found["window"].days, {}
    if found["attribution"] is not None and not found["attribution"].empty:
        specs["chart-attribution"] = charts.attribution_chart(found["attribution"])
    if not found["sessions"].empty:
        specs["chart-sessions"] = charts.channel_mix(found["sessions"], "sessions", days, "Sessions per day by channel")
    if not found["conversions"].empty:
        specs["chart-conversions"] = charts.channel_mix(found["conversions"], "conversions", days, "Conversions per day by channel")
    if not found["contacts"].empty:
        specs["chart-contacts"] = charts.new_contacts_chart(found["contacts"], days)
    if not found["events"].empty:
        specs["chart-events"] = charts.events_chart(found["events"], days)
    if not found["quarantine"].empty:
        specs["chart-quarantine"] = charts.quarantine_chart(found["quarantine"])
    return specs


def _totals(found: dict) -> list[tuple[str, str]]:
    runs = found["runs"]
    return [
        ("Sessions", f"{int(found['sessions']['sessions'].sum()):,}"),
        ("Conversions", f"{int(found['conversions']['conversions'].sum()):,}"),
        ("New contacts", f"{int(found['contacts']['contacts'].sum()):,}"),
        ("Runs", f"{len(runs):,} ({int((runs['status'] == 'failed').sum())} failed)"),
        ("Quarantined lines", f"{int(found['quarantine']['events'].sum()):,}"),
    ]


def credit_table(attribution):
    """Credit per value (rows, most credited first) and model (columns, SPEC section 14's order); None without rows."""
    if attribution.empty:
        return None
    table = attribution.pivot_table(index="value", columns="model", values="conversions", aggfunc="sum", fill_value=0)
    order = table.sum(axis=1).sort_values(ascending=False, kind="stable").index
    return table.loc[order, [m for m in data.MODELS if m in table.columns]]


def render(settings: Settings, found: dict, specs: dict[str, dict]) -> str:
    """The report's HTML: the template filled with the frames, the specs and the inlined scripts."""
    environment = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html", "j2"]))
    return environment.get_template("report.html.j2").render(
        window=found["window"],
        warehouse=make_url(settings.warehouse_url).render_as_string(hide_password=True),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        totals=_totals(found),
        specs={key: inline_json(spec) for key, spec in specs.items()},
        found=found,
        attribution_table=credit_table(found["attribution"]),
        scripts=vendored_scripts(),
    )


def write_report(settings: Settings, out: Path, start: date | None = None, end: date | None = None) -> Report:
    """Write the report for the window to `out` (its folder is created); what was written."""
    found = collect(settings, start, end)
    specs = chart_specs(found)
    html = render(settings, found, specs)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(html, encoding="utf-8")
    partial.replace(out)  # readers never see half a report
    return Report(out, found["window"], len(specs))


def write_folder_report(settings: Settings, day: str) -> str | None:
    """The nightly DAG's last step: the report of the 30 days up to load day `day` (the default window) as
    `REPORT_DIR/contacts-report-DAY.html`; nothing (None) when no report folder is set."""
    if settings.report_dir is None:
        log.info("no report folder set (CONTACTS_REPORT_DIR): no report written")
        return None
    return str(write_report(settings, settings.report_dir / f"contacts-report-{day}.html", None, date.fromisoformat(day)).path)
