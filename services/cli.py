"""``tsunagu``: run the platform, mint development tokens, run one distributed process."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.platform.logs import configure_logging
from services.platform.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from services.projection.audit import AuditLog

SERVE_SERVICE = "TSUNAGU_SERVE_SERVICE"
# ``audit replay``'s exit status when the disclosure's content was erased since it was served.
ERASED_SINCE = 3


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from services.platform.auth import mint_token, signing_secret

    print(
        mint_token(
            signing_secret(settings),
            staff_id=args.staff,
            agency=args.agency,
            roles=args.role or ["caseworker"],
            municipality=args.municipality,
            ttl_seconds=args.ttl,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
    )
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from services.processes import traced_embedded_app

    app = traced_embedded_app(settings, demo=not args.no_demo)
    print(banner(f"http://{args.host}:{args.port}", settings), flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    return 0


def banner(url: str, settings: Settings) -> str:
    """What ``tsunagu run`` says as it starts. Its two command lines are pasted as they stand,
    from the repository's root: the README's quick start shows the same."""
    return (
        f"\nTsunagu (embedded) at {url}  —  the desk: {url}/  (development sign-in)\n"
        f"API docs: {url}/docs\n"
        f"Data: {settings.var_dir.resolve()}\n"
        "TOKEN=$(.venv/bin/tsunagu token --agency zama-jiritsu --role caseworker --staff s001)\n"
        f'curl -H "Authorization: Bearer $TOKEN" {url}/views/consultations\n'
        "Stop:  Ctrl-C\n"
    )


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "log_config": None,
        "access_log": False,
    }
    if args.workers == 1:
        uvicorn.run(_service_app(args.service, settings), **options)
    else:
        from services.wiring import close_app

        # Built once here first, so that the tables exist before the workers start together:
        # concurrent CREATE TABLE IF NOT EXISTS in PostgreSQL can fail ("tuple concurrently
        # updated") and kill a worker. Then closed: this process only supervises the workers.
        close_app(_service_app(args.service, settings))
        # Each worker process builds its own app, told which by the environment it inherits.
        os.environ[SERVE_SERVICE] = args.service
        uvicorn.run("services.cli:worker_app", factory=True, workers=args.workers, **options)
    return 0


def _service_app(service: str, settings: Settings) -> FastAPI:
    from services.processes import traced_service_app

    return traced_service_app(settings, service)


def worker_app() -> FastAPI:
    """The app each process of ``serve --workers`` builds for itself."""
    configure_logging()
    return _service_app(os.environ[SERVE_SERVICE], Settings.from_env())


def _relay(args: argparse.Namespace, settings: Settings) -> int:
    from services.processes import relay_process

    return relay_process(settings, args.service)


def _project(args: argparse.Namespace, settings: Settings) -> int:
    from services.processes import feed_process

    return feed_process(settings, args.service)


def _aware_datetime(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. {text}+09:00")
    return at


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from contracts.reference import reference
    from services.wiring import audit_chains, view_store

    if args.question == "checkpoint" and args.every is not None:
        return _checkpointer(args, settings)
    if args.question == "ingest":
        return _ingest(settings)
    municipality = args.municipality or reference().municipality_code
    log = audit_chains(settings, view_store(settings)).of(municipality)
    if args.question in ("verify", "checkpoint"):
        return _anchor(args, settings, log, municipality)
    if args.question == "replay":
        from services.platform.sealing import Opener
        from services.projection.replay import replay_disclosure
        from services.wiring import key_store

        keys = key_store(settings)
        replay = replay_disclosure(view_store(settings), log.entry(args.position), Opener(keys))
        keys.close()
        print(json.dumps(asdict(replay), ensure_ascii=False))
        if replay.matches:
            return 0
        # Content erased since it was served cannot be rebuilt: no sign of tampering.
        return ERASED_SINCE if replay.erased is not None else 1
    if args.question == "person":
        records = log.seen_person(args.id, args.since, args.until)
    elif args.question == "agency":
        records = log.seen_by_agency(args.agency, args.since, args.until)
    elif args.question == "consent":
        records = log.under_consent(args.id)
    else:
        records = log.vital_interest_pending()
    for record in records:
        print(json.dumps(asdict(record), ensure_ascii=False))
    return 0


def _anchor(args: argparse.Namespace, settings: Settings, log: AuditLog, municipality: str) -> int:
    from dataclasses import asdict

    from services.projection.checkpoint import anchoring

    # Verifying needs the public keys alone: the signing key is loaded only to sign.
    anchor = anchoring(settings, signing=args.question == "checkpoint", municipality=municipality)
    try:
        if args.question == "verify":
            verification = anchor.verify(log)
            print(json.dumps(asdict(verification), ensure_ascii=False))
            return 0 if verification.ok else 1
        print(anchor.checkpoint(log).to_json())
        return 0
    finally:
        anchor.store.close()


def _checkpointer(args: argparse.Namespace, settings: Settings) -> int:
    from services.processes import checkpointer_process

    return checkpointer_process(settings, args.every, args.municipality)


def _ingest(settings: Settings) -> int:
    from services.processes import ingest_process

    return ingest_process(settings)


def _views(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from services.processes import views_sweep

    if args.action == "rebuild":
        return _rebuild(args.service, settings)
    return views_sweep(
        settings,
        args.at,
        args.every,
        lambda purge: print(json.dumps(asdict(purge), ensure_ascii=False)),
    )


def _retention(args: argparse.Namespace, settings: Settings) -> int:
    from services.processes import retention_sweep

    return retention_sweep(
        settings,
        args.at,
        args.every,
        lambda person: print(json.dumps({"erased": str(person), "reason": "retention"})),
    )


def _keys(args: argparse.Namespace, settings: Settings) -> int:
    """``tsunagu keys rotate --new-key-file F``: every key rewrapped under the key in ``F``
    (made there, readable by its owner only, if there is none)."""
    import base64
    import os
    from dataclasses import asdict
    from pathlib import Path

    from services.platform.keys import KEY_BYTES
    from services.platform.private_files import write_once
    from services.wiring import key_store

    path = Path(args.new_key_file)
    text = write_once(path, lambda: base64.b64encode(os.urandom(KEY_BYTES)))
    try:
        new = base64.b64decode(text.strip(), validate=True)
    except ValueError:  # binascii.Error is one
        new = b""
    if len(new) != KEY_BYTES:
        print(f"{path}: not a {KEY_BYTES}-byte key, base64-encoded", file=sys.stderr)
        return 2
    rotated = key_store(settings).rotate(new)
    print(json.dumps({**asdict(rotated), "key_encryption_key_file": str(path.resolve())}))
    print(
        f"start every process with TSUNAGU_KEY_ENCRYPTION_KEY_FILE={path.resolve()} "
        "(or its content in TSUNAGU_KEY_ENCRYPTION_KEY); the old key opens nothing now",
        file=sys.stderr,
    )
    return 0


def _health(args: argparse.Namespace, _: Settings) -> int:
    """A container's health check: 0 when ``--url`` answers 200, else when the process says in
    its health file (``TSUNAGU_HEALTH_FILE``) that it is ready; 1 otherwise, saying why."""
    import httpx

    from services.platform.lifecycle import HEALTH_FILE, READY, health

    if args.url:
        try:
            status = httpx.get(args.url, timeout=3).status_code
        except httpx.HTTPError as error:
            print(f"{args.url}: {type(error).__name__}", file=sys.stderr)
            return 1
        if status != 200:
            print(f"{args.url}: {status}", file=sys.stderr)
        return 0 if status == 200 else 1
    state = health()
    if state != READY:
        print(state or f"no state in {HEALTH_FILE}", file=sys.stderr)
    return 0 if state == READY else 1


def _deadletter(args: argparse.Namespace, settings: Settings) -> int:
    from services.feeds.deadletters import dead_letters, find
    from services.processes import replay_dead_letter

    store = dead_letters(settings)
    if args.action == "list":
        for each in store.letters():
            print(json.dumps(each.summary(), ensure_ascii=False, default=str))
        return 0
    found = find(store, args.name)
    if found is None:
        print(f"no dead letter {args.name}", file=sys.stderr)
        return 1
    if args.action == "show":
        print(json.dumps(found.shown(), ensure_ascii=False, default=str))
        return 0
    replay_dead_letter(settings, found.original())
    print(json.dumps({"replayed": found.name, "topic": found.topic}))
    return 0


def _setup(args: argparse.Namespace, settings: Settings) -> int:
    """``setup`` (schemas, tables and topics) or ``topics create``."""
    from services.processes import setup

    return setup(settings, schemas=args.command == "setup")


def _rebuild(service: str, settings: Settings) -> int:
    from services.feeds.rebuild import rebuild
    from services.platform.bus import KafkaPublisher
    from services.wiring import FEEDS, feed_runner, feed_store, key_store

    if not settings.kafka_bootstrap_servers or not settings.database_url:
        print(
            "a rebuild reads the topics: set DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS",
            file=sys.stderr,
        )
        return 2

    def show(done: int, total: int) -> None:
        share = 100 * done // total if total else 100
        print(f"rebuilt {done}/{total} messages ({share}%)", file=sys.stderr, flush=True)

    dead_letters = KafkaPublisher(settings.kafka_bootstrap_servers)
    keys = key_store(settings)
    replayed = rebuild(
        settings,
        feed_store(settings, service),
        lambda store, dlq: feed_runner(settings, service, store, dlq, keys=keys, catching_up=True),
        dead_letters,
        FEEDS[service].sources,
        show,
    )
    dead_letters.close()
    keys.close()
    print(json.dumps({"service": service, "replayed": replayed}))
    return 0


def _upgrade(args: argparse.Namespace, settings: Settings) -> int:
    """Stores written before personal fields were sealed, copied into sealed ones (#20)."""
    from dataclasses import asdict

    from services.upgrade import UpgradeRefused, upgrade

    try:
        report = upgrade(settings, topic_prefix=args.topic_prefix, drop_old=args.drop_old)
    except UpgradeRefused as refused:
        print(f"upgrade refused: {refused}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report), ensure_ascii=False, indent=2))
    return 0


def parser() -> argparse.ArgumentParser:
    from services.wiring import COMMAND_SERVICES, FEEDS

    root = argparse.ArgumentParser(prog="tsunagu", description=__doc__)
    commands = root.add_subparsers(dest="command", required=True)

    token = commands.add_parser("token", help="mint a development token from the local key")
    token.add_argument("--agency", required=True)
    token.add_argument("--role", action="append", help="repeat for several roles")
    token.add_argument("--staff", required=True)
    token.add_argument(
        "--municipality",
        help="全国地方公共団体コード (e.g. 142158); default: the agency's own municipality",
    )
    token.add_argument("--ttl", type=int, default=8 * 3600, help="seconds")
    token.set_defaults(handler=_token)

    run = commands.add_parser("run", help="the whole platform in one process (embedded)")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8000)
    run.add_argument("--no-demo", action="store_true", help="start without the scenario data")
    run.set_defaults(handler=_run)

    serve = commands.add_parser("serve", help="one service's HTTP API, or the desk (distributed)")
    serve.add_argument("service", choices=[*COMMAND_SERVICES, "projection", "web"])
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers", type=int, default=1, help="processes sharing the port (one per core, say)"
    )
    serve.set_defaults(handler=_serve)

    relay = commands.add_parser("relay", help="publish a service's stored events to Kafka")
    relay.add_argument("service", choices=list(COMMAND_SERVICES))
    relay.set_defaults(handler=_relay)

    project = commands.add_parser(
        "project", help="the faust worker feeding a service's tables from other services' events"
    )
    project.add_argument("service", nargs="?", default="projection", choices=list(FEEDS))
    project.set_defaults(handler=_project)

    audit = commands.add_parser("audit", help="the privacy officer's questions to the audit log")
    audit.set_defaults(handler=_audit)
    questions = audit.add_subparsers(dest="question", required=True)
    questions.add_parser(
        "verify",
        help="check the hash chain and the signed checkpoints (public keys only); exit 1 "
        "naming each tampering",
    )
    checkpoint = questions.add_parser(
        "checkpoint", help="sign the chain's length and head, kept outside its database"
    )
    checkpoint.add_argument(
        "--every",
        type=float,
        nargs="?",
        const=0.0,
        help="keep signing every this many seconds while the chain grows (the checkpointer "
        "process); with no value or 0, TSUNAGU_CHECKPOINT_SECONDS",
    )
    person = questions.add_parser("person", help="who saw this person (JSON lines)")
    person.add_argument("id")
    agency = questions.add_parser("agency", help="everything this agency saw (JSON lines)")
    agency.add_argument("agency")
    for question in (person, agency):
        question.add_argument("--since", type=_aware_datetime, help="ISO time with offset")
        question.add_argument("--until", type=_aware_datetime, help="ISO time, exclusive")
    consent = questions.add_parser("consent", help="what was disclosed under this consent")
    consent.add_argument("id")
    questions.add_parser("pending", help="vital-interest disclosures awaiting review")
    questions.add_parser(
        "ingest",
        help="append other services' reads (the audit topic) to each municipality's chain",
    )
    replay = questions.add_parser(
        "replay",
        help="rebuild a recorded disclosure from the events; exit 1 if it differs, "
        f"{ERASED_SINCE} if its content was erased since (the hash served and bases stand)",
    )
    replay.add_argument("position", type=int)
    for question in questions.choices.values():
        question.add_argument(
            "--municipality",
            help="whose chain (全国地方公共団体コード); default the deployment's first, and for "
            "checkpoint --every, every municipality's",
        )

    deadletter = commands.add_parser(
        "deadletter", help="the messages a feed could not read or apply, with the reason"
    )
    deadletter.set_defaults(handler=_deadletter)
    letters = deadletter.add_subparsers(dest="action", required=True)
    letters.add_parser("list", help="every dead letter, oldest first (JSON lines, no data)")
    for action, text in (
        ("show", "one dead letter with its message"),
        ("replay", "send it to its topic's feeds again, after a fix"),
    ):
        letters.add_parser(action, help=text).add_argument(
            "name", help="as list names it: <partition>-<offset> on Kafka, a number embedded"
        )

    keys = commands.add_parser("keys", help="the key store's key-encryption key")
    keys.set_defaults(handler=_keys)
    rotate = keys.add_subparsers(dest="action", required=True).add_parser(
        "rotate",
        help="rewrap every data key under a new key-encryption key, in one transaction (stop "
        "every other process first, start them again with the new key)",
    )
    rotate.add_argument(
        "--new-key-file",
        required=True,
        help="the new key (32 bytes, base64); made there, mode 0600, if the file is missing",
    )

    health = commands.add_parser(
        "health", help="a container's health check: the process's own state, or --url's answer"
    )
    health.add_argument("--url", help="e.g. http://127.0.0.1:8000/health")
    health.set_defaults(handler=_health)

    setup = commands.add_parser(
        "setup",
        help="create every schema, table and topic before the processes start (may be rerun)",
    )
    setup.set_defaults(handler=_setup)
    topics = commands.add_parser("topics", help="the Kafka topics of the platform")
    topics.set_defaults(handler=_setup)
    topics.add_subparsers(dest="action", required=True).add_parser(
        "create", help="create every topic with its partitions where missing (may be rerun)"
    )

    views = commands.add_parser("views", help="maintain the agencies' views of persons")
    views.set_defaults(handler=_views)
    actions = views.add_subparsers(dest="action", required=True)
    sweep = actions.add_parser(
        "sweep", help="purge what lapsed bases (expiry, meeting end, 72 h window) allowed"
    )
    sweep.add_argument("--at", type=_aware_datetime, help="ISO time with offset; default now")
    sweep.add_argument(
        "--every", type=float, help="keep sweeping every this many seconds (the sweeper process)"
    )
    rebuild = actions.add_parser(
        "rebuild", help="drop a feed's tables and rebuild them from the topics, with progress"
    )
    rebuild.add_argument("service", nargs="?", default="projection", choices=list(FEEDS))

    retention = commands.add_parser(
        "retention", help="erase the records whose retention ended (保存期間満了)"
    )
    retention.set_defaults(handler=_retention)
    retention_sweep = retention.add_subparsers(dest="action", required=True).add_parser(
        "sweep",
        help="erase, for retention, every person whose case was closed longer ago than their "
        "municipality keeps records, unless extended (exit 3, nothing erased, while intake's "
        "retention feed is behind its topics)",
    )
    retention_sweep.add_argument(
        "--at", type=_aware_datetime, help="ISO time with offset; default now"
    )
    retention_sweep.add_argument(
        "--every", type=float, help="keep sweeping every this many seconds (the sweeper process)"
    )

    upgrade = commands.add_parser(
        "upgrade",
        help="copy stores written before personal fields were sealed into sealed ones, onto "
        "new topics (every process stopped; run again: nothing to do)",
    )
    upgrade.add_argument(
        "--topic-prefix", help="distributed: the new topics' prefix, for TSUNAGU_TOPIC_PREFIX"
    )
    upgrade.add_argument(
        "--drop-old",
        action="store_true",
        help="delete the kept old stores once each live store is verified as their sealed copy",
    )
    upgrade.set_defaults(handler=_upgrade)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging()
    settings = Settings.from_env()
    return int(args.handler(args, settings))


if __name__ == "__main__":
    sys.exit(main())
