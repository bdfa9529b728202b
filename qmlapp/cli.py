"""Command line: ``python -m qmlapp <command>``. ``--json`` prints exactly one JSON object on stdout."""

from __future__ import annotations

import argparse
import codecs
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from db import Storage, StorageError, redact_url
from qmlapp import services
from qmlapp.access import generate_password, policy, read_secrets
from qmlapp.config import Settings
from qmlapp.context import json_safe
from qmlapp.distributed import DaskUnavailable
from qmlapp.presets import PRESETS
from qmlapp.registry import KINDS
from qmlapp.specs import SpecError, check_name, load_json

ROOT = Path(__file__).resolve().parent.parent
MAX_SPEC_BYTES = 2**20  # a spec or sweep file is a few KiB; this bounds what is read and parsed


class CliError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(json_safe(obj), default=str, allow_nan=False) + "\n")


def _storage(settings: Settings) -> Storage:
    return Storage(settings.database_url)


def _read_spec(path: str) -> Any:
    try:
        if path == "-":
            raw = sys.stdin.buffer.read(MAX_SPEC_BYTES + 1)
        else:
            with open(path, "rb") as fh:
                raw = fh.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise CliError(f"--spec: cannot read {path!r}: {exc.strerror}") from None
    return parse_spec_bytes(raw, path)


def parse_spec_bytes(raw: bytes, path: str) -> Any:
    """A spec file's bytes -> its JSON value. Size, encoding, nesting depth and number length are checked
    before or while parsing, so bad input is a CliError/SpecError naming --spec, never a traceback."""
    what = "standard input" if path == "-" else "the file"
    if len(raw) > MAX_SPEC_BYTES:
        raise CliError(f"--spec: {what} is larger than {MAX_SPEC_BYTES // 2**20} MiB")
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0  # editors on Windows add one
    try:
        text = raw[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = skip + exc.start
        raise CliError(f"--spec: {what} is not valid UTF-8 (byte 0x{raw[at]:02x} at offset {at})") from None
    return load_json(text, "--spec", where=f" in {path}")


def cmd_kinds(args: argparse.Namespace, settings: Settings) -> int:
    kinds: list[dict[str, Any]] = []
    for k in KINDS.values():
        fields = {}
        for name, (f, p) in k.spec_class.params().items():
            fields[name] = {"default": f.default, "allowed": p.describe(), "help": p.help}
        kinds.append({"name": k.name, "title": k.title, "description": k.description,
                      "summary_keys": list(k.summary_keys), "schema_version": k.spec_class.schema_version,
                      "objectives": [o._asdict() for o in k.objectives], "example": dict(k.example),
                      "fields": fields})
    if args.json:
        _emit({"kinds": kinds})
    else:
        for info in kinds:
            print(f"{info['name']:<12} {info['title']} — {info['description']}")
            objectives = ", ".join(f"{o['name']} ({o['direction']}, {o['provenance']})" for o in info["objectives"])
            print(f"{'':<12} sweep objectives: {objectives}")
            print(f"{'':<12} tiny example: python -m qmlapp submit {info['name']} --spec - <<< "
                  f"'{json.dumps(info['example'])}'")
    return 0


def _wait(storage: Storage, run_id: int, settings: Settings, quiet: bool) -> Any:
    """Wait for a run; execute it here when no worker is alive so the CLI works on its own."""
    from qmlapp.worker import execute_run, new_worker_id

    last = ""
    while True:
        run = storage.get_run(run_id)
        if run.finished:
            return run
        if not services.alive_workers(storage):
            storage.recover_stale_runs(settings.stale_after_s)  # nobody else will
            run = storage.get_run(run_id)
        if run.status == "queued" and not services.alive_workers(storage):
            worker_id = new_worker_id("cli")
            claimed = storage.claim_run(run_id, worker_id)
            if claimed is not None:
                if not quiet:
                    print(f"no worker is running; executing run {run_id} in this process", file=sys.stderr)
                stop = threading.Event()
                # Ctrl-C / SIGTERM put the run back in the queue instead of leaving it "running".
                old = {sig: signal.signal(sig, lambda *_, ev=stop: ev.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
                try:
                    storage.register_worker(worker_id, "cli", os.getpid())
                    execute_run(storage, claimed, worker_id, settings, stop)
                finally:
                    storage.stop_worker(worker_id)
                    for sig, handler in old.items():
                        signal.signal(sig, handler)
                if stop.is_set():
                    raise KeyboardInterrupt
                continue
        line = f"run {run_id}: {run.status} {run.progress:.0%} {run.message}"
        if not quiet and line != last:
            print(line, file=sys.stderr)
            last = line
        time.sleep(0.5)


def cmd_submit(args: argparse.Namespace, settings: Settings) -> int:
    check_name("--name", args.name or "")
    data = _read_spec(args.spec)
    if args.kind not in KINDS:
        raise SpecError("kind", f"unknown experiment kind {args.kind!r}; known kinds: {', '.join(KINDS)}")
    spec = services.validate_spec(args.kind, data)  # before touching the database: nothing stored if bad
    storage = _storage(settings)
    run = services.submit_run(storage, args.kind, spec, name=args.name or "")
    if args.wait:
        run = _wait(storage, run.id, settings, quiet=args.json)
    if args.json:
        _emit(services.run_json(run))
    else:
        print(f"run {run.id} {run.status}" + (f": {run.error}" if run.error else ""))
        if run.result:
            for k, v in services.summary(run).items():
                print(f"  {k}: {v}")
    return 0 if run.status in ("queued", "running", "succeeded") else 1


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    storage = _storage(settings)
    runs = storage.list_runs(kinds=[args.kind] if args.kind else None,
                             statuses=[args.status] if args.status else None, limit=args.limit)
    if args.json:
        _emit({"runs": [services.run_json(r) for r in runs]})
        return 0
    print(f"{'id':>5}  {'kind':<10} {'status':<10} {'progress':>8}  name")
    for r in runs:
        print(f"{r.id:>5}  {r.kind:<10} {r.status:<10} {r.progress:>8.0%}  {r.name}")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    storage = _storage(settings)
    run = storage.get_run(args.run_id)
    if args.json:
        doc = services.run_json(run)
        doc.update({"versions": run.versions, "created_at": run.created_at.isoformat(),
                    "started_at": run.started_at and run.started_at.isoformat(),
                    "finished_at": run.finished_at and run.finished_at.isoformat(),
                    "attempts": run.attempts, "worker_id": run.worker_id, "full_result": run.result,
                    "artifacts": [a.name for a in storage.list_artifacts(run.id)]})
        _emit(doc)
        return 0
    print(f"run {run.id} [{run.kind}] {run.name}\nstatus: {run.status} ({run.progress:.0%}) {run.message}")
    if run.error:
        print(f"error: {run.error}")
    print("spec: " + json.dumps(run.spec, indent=2))
    if run.result:
        print("result:")
        for k, v in services.summary(run).items():
            print(f"  {k}: {v}")
    return 0


def cmd_cancel(args: argparse.Namespace, settings: Settings) -> int:
    run = services.cancel_run(_storage(settings), args.run_id)
    print(f"run {run.id}: {run.status}" + (" (cancel requested)" if run.status == "running" else ""))
    return 0


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    services.delete_run(_storage(settings), args.run_id)
    print(f"run {args.run_id} deleted")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    text = services.export_run(_storage(settings), args.run_id, args.format)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from qmlapp.distributed import start_dispatcher
    from qmlapp.worker import Worker, serve_workers

    if args.concurrency < 1:
        raise CliError(f"--concurrency: must be an integer ≥ 1, got {args.concurrency}")
    if args.max_runs is not None or args.idle_exit is not None:
        w = Worker(settings, parent_pid=args.parent_pid)
        w.install_signal_handlers()
        dispatcher = start_dispatcher(settings, w.storage)
        try:
            w.serve(max_runs=args.max_runs, idle_exit_s=args.idle_exit)
        finally:
            if dispatcher is not None:
                dispatcher.stop()
        return 0
    serve_workers(settings, args.concurrency, parent_pid=args.parent_pid)
    return 0


def _port_is_free(address: str, port: int) -> str | None:
    """None when ``address:port`` can be bound now, else why not (checked before the worker starts)."""
    import socket

    host = "" if address in ("0.0.0.0", "::") else address
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return str(exc)
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            s.bind(sockaddr)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _die_with_parent(parent_pid: int) -> Any:
    """preexec_fn: the child gets SIGTERM when serve dies, even by SIGKILL (Linux prctl PR_SET_PDEATHSIG)."""
    def preexec() -> None:
        if sys.platform.startswith("linux"):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent_pid:  # serve died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return preexec


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Start Streamlit and (unless disabled) one embedded worker process; stop both together."""
    from qmlapp.access import PASSWORD_FILE_ENV, write_password_file

    busy = _port_is_free(args.address, args.port)
    if busy is not None:  # before the worker starts, so that a failed second serve claims nothing
        raise CliError(f"serve: cannot listen on {args.address} port {args.port}: {busy} "
                       f"(another server on port {args.port}? choose one with --port)")
    Storage(settings.database_url).close()  # migrate before either process starts
    # Neither child inherits a password from serve's environment: the worker has no use for it, and
    # the app gets a generated one through a 0600 file that its launcher deletes after reading.
    env = dict(os.environ, QMLAPP_DATABASE_URL=settings.database_url)
    worker_env = {k: v for k, v in env.items() if k not in ("QMLAPP_PASSWORD", PASSWORD_FILE_ENV)}
    app_env = dict(env)
    access = policy(args.address, read_secrets(Path.cwd()), os.environ)
    if access.required and not access.configured:
        # Never open to the network without a login: make a password and say it (like Jupyter's token).
        password = generate_password()
        app_env[PASSWORD_FILE_ENV] = str(write_password_file(password))
        print(f"The app listens on {args.address}, so it needs a login and none is configured; "
              f"password for this session: {password}\n(set QMLAPP_PASSWORD or "
              "[qmlapp] password / [auth] in .streamlit/secrets.toml to choose one)", file=sys.stderr, flush=True)
    worker_cmd = [sys.executable, "-m", "qmlapp", "worker", "--parent-pid", str(os.getpid())]
    preexec = _die_with_parent(os.getpid())
    embedded = settings.embedded_worker and not args.no_worker
    procs: list[subprocess.Popen[bytes]] = []
    if embedded:
        procs.append(subprocess.Popen(worker_cmd, env=worker_env, cwd=os.getcwd(), preexec_fn=preexec))
    app = subprocess.Popen(
        [sys.executable, "-m", "qmlapp.ui.launch", str(ROOT / "app.py"), "--server.port", str(args.port),
         "--server.address", args.address, "--server.headless", "true",
         # No source watcher: a served app does not hot-reload, and watching a tree that holds .venv
         # spun at 100 % CPU once fresh .pyc writes overflowed inotify (seen in CI).
         "--server.fileWatcherType", "none",
         # Cross-site protection stays on whatever a config file says (the launcher adds Host/Origin checks).
         "--server.enableXsrfProtection", "true", "--server.enableCORS", "true",
         "--browser.gatherUsageStats", "false"], env=app_env, cwd=os.getcwd(), preexec_fn=preexec)
    procs.append(app)
    print(f"QML Explorer on http://{args.address}:{args.port} "
          f"({'with' if len(procs) > 1 else 'without'} an embedded worker; "
          f"{'login required' if access.required else 'no login: localhost only'}; "
          f"database {redact_url(settings.database_url)}); Ctrl-C stops everything", file=sys.stderr)

    def _stop(signum: int, _frame: Any) -> None:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    restarts = 0
    while app.poll() is None:
        time.sleep(1.0)
        worker = procs[0] if embedded else None
        if worker is not None and worker.poll() is not None and app.poll() is None and restarts < 20:
            # A crashed or killed embedded worker is replaced; its run is recovered by heartbeat.
            restarts += 1
            print(f"embedded worker exited with {worker.returncode}; restarting it ({restarts})", file=sys.stderr)
            procs[0] = subprocess.Popen(worker_cmd, env=worker_env, cwd=os.getcwd(), preexec_fn=preexec)
    code = app.returncode
    _stop(signal.SIGTERM, None)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
    pw_file = app_env.get(PASSWORD_FILE_ENV)
    if pw_file:  # the app died before its launcher read it
        Path(pw_file).unlink(missing_ok=True)
    return code


def _wait_sweep(storage: Storage, sweep_id: int, settings: Settings, quiet: bool, client: Any = None) -> None:
    """Drive a sweep to its end; when no worker is alive, run its trials in this process, or on the Dask
    cluster of QMLAPP_DASK_ADDRESS when that is set (``client``: an already connected client for it)."""
    from qmlapp import sweeps
    from qmlapp.worker import execute_run, new_worker_id

    worker_id = new_worker_id("cli")
    stop = threading.Event()
    old = {sig: signal.signal(sig, lambda *_, ev=stop: ev.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    last = ""
    dispatcher = None
    own_client = None
    try:
        while not stop.is_set():
            alive = services.alive_workers(storage)
            if not alive:
                storage.recover_stale_runs(settings.stale_after_s)
            if settings.dask_address and not alive and dispatcher is None:
                from qmlapp.distributed import DaskDispatcher, connect

                if client is None:
                    client = own_client = connect(settings.dask_address)
                dispatcher = DaskDispatcher(settings, storage, client, sweep_id=sweep_id).start()
                if not quiet:
                    print(f"no worker is running; this process sends the trials to the Dask cluster at "
                          f"{settings.dask_address}", file=sys.stderr)
            workers = dispatcher.capacity if dispatcher is not None else max(1, len(alive))
            sweeps.advance_sweep(storage, sweep_id, workers=workers)
            sweep = storage.get_sweep(sweep_id)
            if sweep.status != sweeps.ACTIVE:
                return
            summary = sweeps.compute_summary(storage, sweep_id, sweeps.load_spec(sweep))
            line = (f"sweep {sweep_id}: {summary['n_succeeded']}/{summary['n_trials']} trials done, "
                    f"{summary['n_running']} in flight")
            if not quiet and line != last:
                print(line, file=sys.stderr)
                last = line
            run = None if alive or dispatcher is not None else storage.claim_next_run(worker_id, sweep_id=sweep_id)
            if run is not None:
                storage.register_worker(worker_id, "cli", os.getpid())
                execute_run(storage, run, worker_id, settings, stop)
                storage.stop_worker(worker_id)
            else:
                time.sleep(0.5)
        raise KeyboardInterrupt
    finally:
        if dispatcher is not None:
            dispatcher.stop()  # trials not started on the cluster go back to the queue
        if own_client is not None:
            own_client.close()
        for sig, handler in old.items():
            signal.signal(sig, handler)


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from qmlapp import sweeps

    if (args.spec is None) == (args.preset is None):
        raise CliError("sweep: give exactly one of --spec FILE or --preset NAME")
    if args.preset is not None:
        if args.preset not in PRESETS:
            raise SpecError("preset", f"unknown preset {args.preset!r}; presets: {', '.join(PRESETS)}")
        data = PRESETS[args.preset].definition
    else:
        data = _read_spec(args.spec)
    spec = sweeps.SweepSpec.from_dict(data)  # validated before anything is stored
    storage = _storage(settings)
    client = None
    workers = max(1, len(services.alive_workers(storage)))
    if args.wait and settings.dask_address and not services.alive_workers(storage):
        from qmlapp.distributed import connect

        client = connect(settings.dask_address)  # an unreachable scheduler fails before anything is stored
        workers = max(1, sum(client.nthreads().values()))
    try:
        sweep = sweeps.create_sweep(storage, spec, workers=workers)
        if args.wait:
            _wait_sweep(storage, sweep.id, settings, quiet=args.json, client=client)
    finally:
        if client is not None:
            client.close()
    doc = sweeps.sweep_json(storage, sweep.id)
    if args.json:
        _emit(doc)
    else:
        _print_sweep(doc)
    return 0 if doc["status"] in ("running", "succeeded") else 1


def _print_sweep(doc: dict[str, Any]) -> None:
    print(f"sweep {doc['id']} [{doc.get('kind', '?')}] {doc['status']}: {doc['n_succeeded']}/{doc['n_trials']} "
          f"trials succeeded ({doc['objective']}) · {doc['name']}")
    if doc["best"]:
        unit = f" {doc['objective_unit']}" if doc.get("objective_unit") else ""
        prov = f", {doc['objective_provenance']}" if doc.get("objective_provenance") else ""
        print(f"  best {doc.get('objective_label') or doc['objective']} = {doc['best']['value']:.4g}{unit} "
              f"({doc['objective']}{prov}) with {doc['best']['params']}")
    for name, share in sorted(doc["importance"].items(), key=lambda kv: -kv[1]):
        print(f"  importance {name:<22} {share:6.1%}")


def cmd_sweeps(args: argparse.Namespace, settings: Settings) -> int:
    from qmlapp import sweeps

    storage = _storage(settings)
    if args.action == "list":
        items = [sweeps.sweep_json(storage, s.id) for s in storage.list_sweeps()]
        if args.json:
            _emit({"sweeps": items})
        else:
            for doc in items:
                _print_sweep(doc)
        return 0
    if args.sweep_id is None:
        raise CliError(f"sweeps {args.action}: a SWEEP_ID is required")
    workers = max(1, len(services.alive_workers(storage)))
    if args.action == "cancel":
        sweeps.cancel_sweep(storage, args.sweep_id)
    elif args.action == "resume":
        sweeps.resume_sweep(storage, args.sweep_id, workers=workers)
    elif args.action == "delete":
        storage.delete_sweep(args.sweep_id)
        print(f"sweep {args.sweep_id} deleted")
        return 0
    doc = sweeps.sweep_json(storage, args.sweep_id)
    if args.json:
        _emit(doc)
    else:
        _print_sweep(doc)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qmlapp", description="QML Explorer command line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("kinds", help="list experiment kinds and their spec fields")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kinds)

    p = sub.add_parser("submit", help="queue a run from a JSON spec (omitted fields take defaults)")
    p.add_argument("kind")
    p.add_argument("--spec", required=True, help="spec JSON file, or - for stdin")
    p.add_argument("--name", default="")
    p.add_argument("--wait", action="store_true", help="wait for the end (runs it here if no worker is alive)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("sweep", help="start a hyperparameter sweep from a sweep JSON file",
                       description="A sweep file names its experiment kind (\"kind\": \"hypernet\"; default qnn), "
                                   "a base spec of that kind, the space of its fields to vary, and an objective among "
                                   "the kind's objectives (default: its first; `python -m qmlapp kinds` lists them).")
    p.add_argument("--spec", help="sweep JSON file (kind, base, space, sampler, n_trials, objective, repeats, seed, "
                                  "name), or -")
    p.add_argument("--preset", help="a built-in study instead of a file: " + ", ".join(PRESETS))
    p.add_argument("--wait", action="store_true", help="wait for the end (runs trials here if no worker is alive)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("sweeps", help="list, show, cancel, resume or delete sweeps")
    p.add_argument("action", choices=("list", "show", "cancel", "resume", "delete"), nargs="?", default="list")
    p.add_argument("sweep_id", type=int, nargs="?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweeps)

    p = sub.add_parser("runs", help="list runs, newest first")
    p.add_argument("--kind")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("show", help="one run: status, spec, result")
    p.add_argument("run_id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("cancel", help="cancel a queued or running run")
    p.add_argument("run_id", type=int)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("delete", help="delete a finished or queued run with its metrics and artifacts")
    p.add_argument("run_id", type=int)
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("export", help="export a run as JSON (everything) or CSV (metric series)")
    p.add_argument("run_id", type=int)
    p.add_argument("--format", choices=("json", "csv"), default="json")
    p.add_argument("--output", "-o")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("worker", help="run a background worker")
    p.add_argument("--concurrency", type=int, default=1, help="number of worker processes")
    p.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--max-runs", type=int, default=None, help="exit after this many runs")
    p.add_argument("--idle-exit", type=float, default=None, help="exit after this many idle seconds")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("serve", help="start the web app with an embedded worker process")
    p.add_argument("--port", type=int, default=int(os.environ.get("QMLAPP_PORT", "8501")))
    p.add_argument("--address", default=os.environ.get("QMLAPP_ADDRESS", "127.0.0.1"))
    p.add_argument("--no-worker", action="store_true", help="do not start the embedded worker")
    p.set_defaults(func=cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        return int(args.func(args, settings))
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StorageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except DaskUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
