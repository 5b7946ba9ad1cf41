"""The scale-out path end to end: a real Airflow 3 stack on CeleryExecutor runs one `contact_snapshots` day.

It starts, on loopback only and in a temporary folder:
  - a fresh PostgreSQL database for Airflow's metadata and the Celery results (`airflow_e2e_<hex>`),
  - a fresh PostgreSQL database for the warehouse (`contacts_e2e_<hex>`),
  - a flushed Redis database as the Celery broker (redis://127.0.0.1:6379/11 unless CONTACTS_E2E_REDIS_URL),
  - `airflow db migrate`, then `airflow api-server`, `airflow scheduler`, `airflow dag-processor` and
    `airflow celery worker`, each in its own process group (stopped with SIGTERM, then SIGKILL),
then unpauses the DAG, triggers ONE run for a load day through the REST API and waits for it.
The scheduler runs with `[scheduler] use_job_schedule = False`: it creates no time-based (catch-up) runs,
while triggered runs are scheduled and executed normally.

`tests/test_scale_out.py` drives it and checks the result. By hand, from the repo root:

    .venv/bin/python scripts/airflow_celery_e2e.py            # run it, print a summary, clean up
    .venv/bin/python scripts/airflow_celery_e2e.py --keep     # leave the stack running until Ctrl-C

Everything runs against 127.0.0.1; the PostgreSQL server comes from CONTACTS_TEST_PG_URL
(default postgresql+psycopg://postgres@127.0.0.1:5432/test, only its server and user are used).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAG_ID = "contact_snapshots"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"
PROCESSES = ("api-server", "scheduler", "dag-processor", "celery-worker")


def venv_bin() -> Path:
    """The bin folder of the running interpreter's venv (where `airflow` lives); not resolved through symlinks."""
    folder = Path(sys.executable).parent
    if not (folder / "airflow").exists():
        raise RuntimeError(f"no airflow executable next to {sys.executable}: run this with the repo's .venv/bin/python")
    return folder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _loopback_only(url: str, what: str) -> None:
    host = urllib.parse.urlsplit(url.split("+", 1)[-1] if url.startswith("db+") else url).hostname
    if host not in LOOPBACK:
        raise RuntimeError(f"{what} must be on loopback, not {host!r} ({url})")


def pg_url(database: str) -> str:
    """A postgresql+psycopg URL for DATABASE on the test server (CONTACTS_TEST_PG_URL's host, port, user)."""
    from sqlalchemy.engine import make_url

    base = make_url(os.environ.get("CONTACTS_TEST_PG_URL", DEFAULT_PG_URL))
    url = base.set(drivername="postgresql+psycopg", database=database, query={})
    rendered = url.render_as_string(hide_password=False)
    _loopback_only(rendered, "PostgreSQL")
    return rendered


def _admin(statement: str) -> None:
    """Run one statement on the server's `postgres` database, outside a transaction."""
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url("postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@dataclass
class Stack:
    """One throw-away Airflow deployment on CeleryExecutor; every name carries the same random suffix."""

    root: Path
    buckets: int = 4
    redis_url: str = field(default_factory=lambda: os.environ.get("CONTACTS_E2E_REDIS_URL", DEFAULT_REDIS_URL))
    suffix: str = field(default_factory=lambda: secrets.token_hex(4))
    api_port: int = field(default_factory=free_port)
    jwt_secret: str = field(default_factory=lambda: secrets.token_hex(32))
    processes: dict = field(default_factory=dict)
    stray: list = field(default_factory=list)
    killed: list = field(default_factory=list)
    _token: str | None = None

    def __post_init__(self) -> None:
        _loopback_only(self.redis_url, "the Celery broker")
        self.home = self.root / "airflow-home"
        self.logs = self.root / "logs"
        self.landing = self.root / "landing"
        self.workspace = self.root / "workspace"
        self.event_store = self.root / "event-store"  # shared by every worker, like the workspace
        self.metadata_db = f"airflow_e2e_{self.suffix}"
        self.warehouse_db = f"contacts_e2e_{self.suffix}"
        self.queue = f"e2e_{self.suffix}"
        self.api = f"http://127.0.0.1:{self.api_port}"
        for folder in (self.home, self.logs, self.landing, self.workspace):
            folder.mkdir(parents=True, exist_ok=True)

    # ---- configuration -------------------------------------------------------------------------------
    @property
    def metadata_url(self) -> str:
        return pg_url(self.metadata_db)

    @property
    def warehouse_url(self) -> str:
        return pg_url(self.warehouse_db)

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process: the caller's, minus any AIRFLOW*/CONTACTS_* settings."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "CONTACTS_", "PYTHONPATH"))}
        return base | {
            "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO),
            "CONTACTS_REPO": str(REPO),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW_CONFIG": str(REPO / "airflow.cfg"),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.metadata_url,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": self.metadata_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,  # the same in every process
            "AIRFLOW__CELERY__BROKER_URL": self.redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + self.metadata_url,
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.buckets),
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            # longer than the DAG's execution_timeout (3 h), or the broker redelivers a still-running task
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "CONTACTS_WAREHOUSE_URL": self.warehouse_url,
            "CONTACTS_LANDING": str(self.landing),
            "CONTACTS_WORKSPACE": str(self.workspace),
            "CONTACTS_EVENT_STORE": str(self.event_store),
            "CONTACTS_BUCKETS": str(self.buckets),
        }

    def commands(self) -> dict[str, list[str]]:
        airflow = str(venv_bin() / "airflow")
        return {
            "api-server": [airflow, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"],
            "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
            "dag-processor": [airflow, "dag-processor"],
            "celery-worker": [
                airflow, "celery", "worker", "--queues", self.queue, "--concurrency", str(self.buckets),
                "--celery-hostname", f"e2e-{self.suffix}@%h", "--without-mingle", "--without-gossip",
                "--skip-serve-logs",  # its log server would listen on every interface; logs are on this disk
            ],
        }

    # ---- set-up and tear-down ------------------------------------------------------------------------
    def check_celery_executor(self) -> None:
        """Fail in seconds, with the cause, when the installed provider and Celery do not fit together."""
        done = subprocess.run([str(venv_bin() / "python"), "-c", "import airflow.providers.celery.executors.celery_executor"],
                              env=self.env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "Error" in line or "Exception" in line]
            hint = ""
            if "cannot import name 'retry' from 'celery.backends.database'" in done.stderr:
                hint = ("\ncelery 5.7 removed celery.backends.database.retry, which apache-airflow-providers-celery "
                        "3.26.0 (the latest) imports: pin celery==5.6.3 in requirements.txt")
            raise RuntimeError(f"the CeleryExecutor cannot be imported: {errors[0] if errors else done.stderr[-2000:]}{hint}")

    def create_databases(self) -> None:
        _admin(f'CREATE DATABASE "{self.metadata_db}"')
        _admin(f'CREATE DATABASE "{self.warehouse_db}"')

    def drop_databases(self) -> None:
        for name in (self.metadata_db, self.warehouse_db):
            _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def flush_broker(self) -> None:
        import redis

        client = redis.Redis.from_url(self.redis_url)
        try:
            client.flushdb()
        finally:
            client.close()

    def write_landing(self, day: date, visitors: int = 60):
        """The sample generator's partition for DAY; returns its GenerateSummary (what was written)."""
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from pipeline.sample.generate import generate_landing

        return generate_landing(self.landing, visitors=visitors, days=1, start=day)

    def run_cli(self, *args: str, timeout: float = 150) -> str:
        """One `airflow ...` command to completion; its output goes to logs/<args>.log and is returned."""
        log = self.logs / ("-".join(a.strip("-") for a in args[:2]) + ".log")
        with log.open("w") as out:
            done = subprocess.run([str(venv_bin() / "airflow"), *args], env=self.env(), stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({done.returncode}):\n{tail(log)}")
        return log.read_text(errors="replace")

    def start(self) -> None:
        env = self.env()
        for name, command in self.commands().items():
            with (self.logs / f"{name}.log").open("w") as out:
                self.processes[name] = subprocess.Popen(
                    command, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=self.root, start_new_session=True,
                )

    def check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail(self.logs / f'{name}.log')}")

    def stop(self, grace: float = 15) -> list[int]:
        """SIGTERM every process group, SIGKILL what is left after GRACE seconds (names in .killed).

        The api-server alone needs 1-10 s after SIGTERM (busy in its main thread after uvicorn finished).

        Returns the pids of processes that had left their group but still ran with this AIRFLOW_HOME (killed too).
        """
        groups = {proc.pid for proc in self.processes.values()}  # start_new_session: pgid == pid
        for pgid in groups:
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in groups):
            for proc in self.processes.values():
                proc.poll()
            time.sleep(0.2)
        self.killed = [name for name, proc in self.processes.items() if _group_alive(proc.pid)]
        for pgid in groups:
            _signal_group(pgid, signal.SIGKILL)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        stray = self.leftovers()  # anything that left our process groups but still runs with our AIRFLOW_HOME
        for pid in stray:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return stray

    def leftovers(self) -> list[int]:
        """Pids of live processes whose environment carries this stack's AIRFLOW_HOME (readable ones only)."""
        marker = f"AIRFLOW_HOME={self.home}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except (OSError, IndexError):
                continue
        return found

    # ---- REST API ------------------------------------------------------------------------------------
    def request(self, method: str, path: str, body: dict | None = None, *, auth: bool = True, timeout: float = 30):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def token(self) -> str:
        """A JWT from the simple auth manager ("all admins" mode: GET /auth/token needs no credentials)."""
        if self._token is None:
            status, body = self.request("GET", "/auth/token", auth=False)
            if status not in (200, 201):
                raise RuntimeError(f"GET /auth/token: {status} {body}")
            self._token = body["access_token"]
        return self._token

    def wait_until(self, what: str, probe, timeout: float, interval: float = 1.0):
        """Call PROBE until it returns something truthy; fail early if an Airflow process died."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                result = probe()
            except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout):
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.logs}")
            time.sleep(interval)

    def wait_ready(self, timeout: float = 150) -> None:
        """API server up, the DAG parsed (without import errors), the Celery worker ready: all within TIMEOUT."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(1.0, deadline - time.monotonic())

        self.wait_until("the API server", lambda: self.request("GET", "/api/v2/version", auth=False)[0] == 200, left())
        # the first call into the execution API builds it (~6 s), longer than the workers' 5 s client timeout
        self.wait_until("the execution API", lambda: self.request("GET", "/execution/health", auth=False, timeout=60)[0] == 200,
                        left())
        self.wait_until(f"DAG {DAG_ID} to be parsed", lambda: self.request("GET", f"/api/v2/dags/{DAG_ID}")[0] == 200,
                        left())
        status, errors = self.request("GET", "/api/v2/importErrors")
        if status != 200 or errors["total_entries"]:
            raise RuntimeError(f"DAG import errors: {errors}")
        self.wait_until("the Celery worker", lambda: " ready." in (self.logs / "celery-worker.log").read_text(), left())

    def unpause(self) -> None:
        status, body = self.request("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        if status != 200 or body["is_paused"]:
            raise RuntimeError(f"unpause failed: {status} {body}")

    def trigger(self, day: date) -> str:
        """One manual run with logical_date DAY 00:00 UTC and conf {"day": DAY}; returns its run id."""
        body = {"logical_date": f"{day.isoformat()}T00:00:00Z", "conf": {"day": day.isoformat()}}
        status, run = self.request("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", body)
        if status != 200:
            raise RuntimeError(f"trigger failed: {status} {run}")
        return run["dag_run_id"]

    def dag_run(self, run_id: str) -> dict:
        status, run = self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}")
        if status != 200:
            raise RuntimeError(f"GET dag run {run_id}: {status} {run}")
        return run

    def dag_runs(self) -> list[dict]:
        status, body = self.request("GET", f"/api/v2/dags/{DAG_ID}/dagRuns?limit=100")
        if status != 200:
            raise RuntimeError(f"GET dag runs: {status} {body}")
        return body["dag_runs"]

    def task_instances(self, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{DAG_ID}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=100"
        status, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET task instances: {status} {body}")
        return body["task_instances"]

    def wait_for_run(self, run_id: str, timeout: float = 240) -> dict:
        """Poll the run until it finishes; a failed or retrying task fails at once (retries wait 2 minutes)."""

        def finished():
            run = self.dag_run(run_id)
            if run["state"] in ("success", "failed"):
                return run
            bad = [f"{ti['task_id']}[{ti['map_index']}]={ti['state']}" for ti in self.task_instances(run_id)
                   if ti["state"] in ("failed", "up_for_retry", "upstream_failed")]
            if bad:
                raise RuntimeError(f"run {run_id}: {', '.join(bad)}\n{self.task_log_tails()}")
            return None

        return self.wait_until(f"run {run_id}", finished, timeout, interval=2)

    def task_log_tails(self, lines: int = 30) -> str:
        """The end of every task log file (written by the workers under AIRFLOW_HOME/logs)."""
        parts = [f"--- {path.relative_to(self.home)}\n{tail(path, lines)}" for path in sorted((self.home / "logs").rglob("*.log"))
                 if "dag_id=" in str(path)]
        return "\n".join(parts) or "(no task logs)"

    def celery_results(self) -> list[tuple[str, str]]:
        """(celery task id, status) rows the worker wrote to the Celery result backend (table celery_taskmeta)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.metadata_url)
        try:
            with engine.connect() as conn:
                return [tuple(row) for row in conn.execute(text("SELECT task_id, status FROM celery_taskmeta"))]
        finally:
            engine.dispose()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _terminated(signum, _frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second SIGTERM must not interrupt the clean-up
    raise KeyboardInterrupt(f"signal {signum}: stopping the Airflow processes")


@contextmanager
def _sigterm_unwinds():
    """While the stack runs, SIGTERM (e.g. CI's `timeout`) unwinds like Ctrl-C, so the clean-up below still runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def running_stack(root: Path, *, buckets: int = 4, before_start=None):
    """Databases, broker, migration and the four processes; always stopped and dropped on the way out.

    BEFORE_START(stack) runs after the databases exist and before the processes start (e.g. write the landing).
    """
    stack = Stack(root, buckets=buckets)
    stack.check_celery_executor()
    with _sigterm_unwinds():
        stack.create_databases()
        try:
            stack.flush_broker()
            if before_start:
                before_start(stack)
            stack.run_cli("db", "migrate")
            try:
                stack.start()
                stack.wait_ready()
                yield stack
            finally:
                stack.stray = stack.stop()
                if stack.stray:
                    print(f"killed processes that had left their process group: {stack.stray}", file=sys.stderr)
        finally:
            try:
                stack.flush_broker()
            finally:
                stack.drop_databases()


def run_one_day(stack: Stack, day: date, timeout: float = 240) -> dict:
    """Unpause, trigger DAY, wait; returns the finished run (as the REST API shows it)."""
    stack.unpause()
    run_id = stack.trigger(day)
    return stack.wait_for_run(run_id, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--day", type=date.fromisoformat, default=date(2025, 3, 1))
    parser.add_argument("--buckets", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the stack running after the run until Ctrl-C")
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="airflow-celery-e2e-") as tmp:
        written = {}
        with running_stack(Path(tmp), buckets=args.buckets,
                           before_start=lambda s: written.setdefault("summary", s.write_landing(args.day))) as stack:
            print(f"stack up in {time.monotonic() - started:.0f} s: API {stack.api}, logs in {stack.logs}", flush=True)
            run = run_one_day(stack, args.day)
            tis = stack.task_instances(run["dag_run_id"])
            print(f"run {run['dag_run_id']}: {run['state']} after {time.monotonic() - started:.0f} s")
            for ti in sorted(tis, key=lambda t: (t["start_date"] or "", t["task_id"], t["map_index"])):
                print(f"  {ti['task_id']:<12} {ti['map_index']:>3} {ti['state']:<10} queue={ti['queue']} host={ti['hostname']}")
            print(f"celery results: {len(stack.celery_results())}; landing lines written: {written['summary'].lines}")
            if args.keep:
                print("stack kept running; Ctrl-C to stop and clean up", flush=True)
                try:
                    while True:
                        stack.check_alive()
                        time.sleep(5)
                except KeyboardInterrupt:
                    pass
        return 0 if run["state"] == "success" else 1


if __name__ == "__main__":
    sys.exit(main())
