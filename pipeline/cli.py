"""`python -m pipeline …`: the command line (SPEC section 13). Errors are one line and a non-zero exit."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

from pipeline.settings import Settings

EXIT_ERROR, EXIT_BAD_REQUEST = 1, 2


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of at least 1: {text!r}")
    return number


def _share(text: str) -> float:
    try:
        share = float(text)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise argparse.ArgumentTypeError(f"not a share between 0 and 1: {text!r}")
    return share


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (1-65535): {text!r}")
    return port


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, overridden by the command's own options."""
    overrides = {}
    if getattr(args, "warehouse", None):
        overrides["warehouse_url"] = args.warehouse
    if getattr(args, "landing", None):
        overrides["landing"] = Path(args.landing)
    if getattr(args, "buckets", None):
        overrides["buckets"] = args.buckets
    return Settings(**overrides)


def cmd_generate(args: argparse.Namespace) -> int:
    from pipeline.sample.generate import generate_landing

    summary = generate_landing(
        Path(args.out), visitors=args.visitors, days=args.days, start=args.start, seed=args.seed, progress=True,
        converter_share=args.converting_share, target_events=args.events,
    )
    print(
        f"wrote {summary.lines:,} lines ({summary.events:,} events, {summary.broken_lines} broken, "
        f"{summary.duplicates} duplicates, {summary.late_events} late) in {summary.files} files "
        f"over {len(summary.days)} days into {summary.out}"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.runs.long_lived import kept_for_good

    with kept_for_good():
        from pipeline.contract.landing import landing_days
        from pipeline.runs.nightly import run_days

    settings = _settings(args)
    days = landing_days(settings.landing)
    start = args.start or (days[0] if days else None)  # a full refresh takes every day up to --end
    end = args.end or (days[-1] if days else None)
    if start is None or end is None:
        raise ValueError(f"no dt=YYYY-MM-DD partitions in {settings.landing}; give --start and --end")
    if end < start:
        raise ValueError(f"--end {end} is before --start {start}")

    def report(result) -> None:
        f = result.figures
        days = str(result.days[0]) if len(result.days) == 1 else f"{result.days[0]}..{result.days[-1]}"
        print(
            f"{days}  read {f['events_read']:>9,}  loaded {f['events_loaded']:>9,}  dup {f['events_duplicate']:>6,}  "
            f"quarantined {f['events_quarantined']:>5,}  bots {f['events_bot']:>6,}  sessions {f['sessions_written']:>8,}  "
            f"contacts {f['contacts_updated']:>7,}",
            flush=True,
        )

    run_days(settings, start, end, full_refresh=args.full_refresh, on_done=report)
    return 0


def cmd_contacts(args: argparse.Namespace) -> int:
    from pipeline.serve.query import parse_as_of
    from pipeline.serve.reader import RequestError, answer_query, parse_request

    settings = _settings(args)
    text = sys.stdin.read() if args.request in (None, "-") else args.request
    try:
        request = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        print(json.dumps({"error": f"request is not valid JSON: {exc.msg}", "field": None}))
        return EXIT_BAD_REQUEST
    try:
        query = parse_request(request)  # the request's own errors before --as-of's, as the API reports them
        response = answer_query(settings, query, as_of=parse_as_of(args.as_of))
    except RequestError as exc:
        print(json.dumps({"error": exc.message, "field": exc.field}))
        return EXIT_BAD_REQUEST
    print(json.dumps(response, indent=2, ensure_ascii=False))
    return 0


def cmd_attribution(args: argparse.Namespace) -> int:
    from pipeline.serve.attribution import attribution_report, parse_attribution_request
    from pipeline.serve.query import RequestError

    settings = _settings(args)
    text = sys.stdin.read() if args.request == "-" else args.request
    try:
        request = json.loads(text or "{}")
    except json.JSONDecodeError as exc:
        print(json.dumps({"error": f"request is not valid JSON: {exc.msg}", "field": None}))
        return EXIT_BAD_REQUEST
    options = {"model": args.model, "by": args.by, "start_date": args.start_date, "end_date": args.end_date}
    if isinstance(request, dict):  # the options win over the same fields of the JSON
        request.update({name: value for name, value in options.items() if value is not None})
    try:
        response = attribution_report(settings, parse_attribution_request(request))
    except RequestError as exc:
        print(json.dumps({"error": exc.message, "field": exc.field}))
        return EXIT_BAD_REQUEST
    print(json.dumps(response, indent=2, ensure_ascii=False))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from pipeline.serve.api import serve

    serve(_settings(args), host=args.host, port=args.port, workers=args.workers)
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from pipeline.serve.keys import create_key

    key = create_key(_settings(args), args.name)
    print(f"created API key {args.name.strip()!r}; it is shown only this once, store it now:\n{key}")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
    from pipeline.serve.keys import list_keys

    def stamp(value) -> str:
        return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"

    rows = [(k.name, stamp(k.created_at), stamp(k.last_used_at), stamp(k.revoked_at)) for k in list_keys(_settings(args))]
    if not rows:
        print("no API keys (create one with: python -m pipeline keys create NAME)")
        return 0
    width = max(len("NAME"), *(len(r[0]) for r in rows))
    for row in [("NAME", "CREATED (UTC)", "LAST USED", "REVOKED"), *rows]:
        print(f"{row[0]:<{width}}  {row[1]:<19}  {row[2]:<19}  {row[3]}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from pipeline.serve.keys import revoke_key

    when, now = revoke_key(_settings(args), args.name)
    print(f"{'revoked' if now else 'already revoked'} API key {args.name.strip()!r} at {when:%Y-%m-%d %H:%M:%S} UTC")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    from pipeline.runs.forget import forget

    result = forget(_settings(args), args.email)
    print(
        f"erased the contact: {result['events_erased']} events, {result['devices_suppressed']} devices suppressed, "
        f"{result['contacts_updated']} contacts rebuilt; it stays erased across reruns and full refreshes"
    )
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from pipeline.serve.report import write_report

    report = write_report(_settings(args), Path(args.out), args.start_date, args.end_date)
    print(f"wrote {report.path} ({report.charts} charts, days {report.window.start} to {report.window.end})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.reader_only:
        from pipeline.bench.api import bench_reader

        bench_reader(_settings(args).warehouse_url, size=args.queries, rounds=args.rounds, clients=args.clients)
        return 0
    from pipeline.bench.runs import bench

    bench(
        events=args.events, days=args.days, warehouse=args.warehouse, buckets=args.buckets,
        landing=Path(args.landing) if args.landing else None, queries=args.queries, rounds=args.rounds, clients=args.clients,
    )
    return 0


class OneLineErrors(argparse.ArgumentParser):
    """Usage errors as one line (`error: ...`) and exit 2, like every other error of the CLI."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="python -m pipeline", description="Contact snapshots: the marketing-attribution pipeline.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineErrors)

    gen = commands.add_parser("generate", help="write realistic sample events into a landing folder")
    gen.add_argument("--out", required=True, help="landing folder to write (dt=YYYY-MM-DD partitions)")
    gen.add_argument("--visitors", type=int, default=2000)
    gen.add_argument("--days", type=int, default=7)
    gen.add_argument("--start", type=_day, default=date(2025, 3, 1))
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--converting-share", type=_share, default=0.10, help="share of human visitors who convert (default 0.10)")
    gen.add_argument("--events", type=int, help="exactly this many lines, all on --start (one load day; --visitors and --days "
                     "are then ignored): the benchmark's 1M- and 5M-event days")  # fmt: skip
    gen.set_defaults(func=cmd_generate)

    run = commands.add_parser("run", help="run the DAG's steps for each load day, without a scheduler")
    run.add_argument("--landing", help="landing folder (default: settings / CONTACTS_LANDING)")
    run.add_argument("--warehouse", help="SQLAlchemy URL (default: settings / CONTACTS_WAREHOUSE_URL)")
    run.add_argument("--start", type=_day, help="first load day (default: the first partition)")
    run.add_argument("--end", type=_day, help="last load day (default: the last partition)")
    run.add_argument("--full-refresh", action="store_true", help="rebuild everything from every landing partition up to --end")
    run.add_argument("--buckets", type=int, help="hash buckets of visitors and contacts")
    run.set_defaults(func=cmd_run)

    contacts = commands.add_parser("contacts", help="answer a /contacts query (JSON in, JSON out)")
    contacts.add_argument("request", nargs="?", help="the request JSON, or - (default) to read it from stdin")
    contacts.add_argument("--warehouse", help="SQLAlchemy URL")
    contacts.add_argument("--as-of", help='"YYYY-MM-DD HH:MM:SS" UTC (or ISO 8601) for days_since_last_conversion (default: now)')
    contacts.set_defaults(func=cmd_contacts)

    attribution = commands.add_parser("attribution", help="credit per channel / source / medium / campaign under a model (JSON out)")
    attribution.add_argument("request", nargs="?", help="optional request JSON (meta_type, meta_id, conversion_page, ...), or - to read it from stdin")
    attribution.add_argument("--model", help="first_touch, last_touch, last_non_direct, linear (default), position_based, time_decay or markov")
    attribution.add_argument("--by", help="channel (default), source, medium, campaign or source_medium")
    attribution.add_argument("--start-date", help="conversions from this day (YYYY-MM-DD) or ISO 8601 instant")
    attribution.add_argument("--end-date", help="conversions up to this day (YYYY-MM-DD, inclusive) or ISO 8601 instant")
    attribution.add_argument("--warehouse", help="SQLAlchemy URL")
    attribution.set_defaults(func=cmd_attribution)

    serve = commands.add_parser("serve", help="serve the HTTP API (POST /api/v1/contacts, /api/v1/attribution, /docs, /healthz)")
    serve.add_argument("--warehouse", help="SQLAlchemy URL (read-only access)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=_port, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=_positive, default=1, help="worker processes (default 1; one per core serves more clients)")
    serve.set_defaults(func=cmd_serve)

    keys = commands.add_parser("keys", help="API keys: create NAME, list, revoke NAME")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION", parser_class=OneLineErrors)
    for action, helptext, func, named in (
        ("create", "create a key and print it once, as the last word", cmd_keys_create, True),
        ("list", "list keys: name, created, last used, revoked (never the key)", cmd_keys_list, False),
        ("revoke", "revoke a key: it stops working at once", cmd_keys_revoke, True),
    ):
        sub = key_commands.add_parser(action, help=helptext)
        if named:
            sub.add_argument("name", help="the key's name (unique, never reused)")
        sub.add_argument("--warehouse", help="SQLAlchemy URL")
        sub.set_defaults(func=func)

    forget = commands.add_parser("forget", help="erase a contact everywhere (right to erasure), for good")
    forget.add_argument("email")
    forget.add_argument("--warehouse", help="SQLAlchemy URL")
    forget.set_defaults(func=cmd_forget)

    report = commands.add_parser("report", help="write a self-contained HTML report with charts (opens offline)")
    report.add_argument("--out", required=True, help="the HTML file to write")
    report.add_argument("--start-date", type=_day, help="first day (UTC) of the window (default: 30 days up to the end)")
    report.add_argument("--end-date", type=_day, help="last day (UTC) of the window (default: the latest session's day)")
    report.add_argument("--warehouse", help="SQLAlchemy URL (read-only access)")
    report.set_defaults(func=cmd_report)

    bench = commands.add_parser("bench", help="benchmark: per-stage times, events/s, peak memory, reader latency")
    bench.add_argument("--events", type=int, default=1_000_000, help="events per load day (generated)")
    bench.add_argument("--days", type=int, default=1, help="load days (a backfill of --days days)")
    bench.add_argument("--landing", help="use this landing folder instead of generated events")
    bench.add_argument("--warehouse", help="SQLAlchemy URL (default: a fresh temporary SQLite file)")
    bench.add_argument("--buckets", type=int, help="hash buckets (default: settings)")
    bench.add_argument("--queries", type=int, help="reader: time only the first N requests of the mix (default: all, ~150)")
    bench.add_argument("--rounds", type=int, default=3, help="reader: warm passes over the mix after the first")
    bench.add_argument("--clients", type=int, default=8, help="reader: concurrent HTTP clients")
    bench.add_argument("--reader-only", action="store_true", help="measure only the reader, on the existing --warehouse")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse, run, and turn every expected failure into one line on stderr."""
    from pydantic import ValidationError

    from pipeline.contract.landing import LandingError
    from pipeline.warehouse.engines import WarehouseError, one_line

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        print(f"error: setting {where}: {first['msg'].removeprefix('Value error, ')}", file=sys.stderr)
        return EXIT_ERROR
    except (LandingError, WarehouseError, ValueError, FileNotFoundError) as exc:
        print(f"error: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `… | head` stopped reading: not an error, and nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user; the run row keeps the detail
        print(f"error: {type(exc).__name__}: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


def leave(code: int) -> None:
    """End the process with `code` without the interpreter's shutdown, which spent 0.3-0.4 s collecting a 1M-event
    day's objects and modules after its result was printed. What that shutdown would still do here is done first:
    the warehouse connections closed (SQLite folds its write-ahead log back into the file), logs and output flushed."""
    import logging

    from pipeline.warehouse.engines import dispose_all

    dispose_all()
    logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `… | head` stopped reading
        pass
    os._exit(code or 0)
