"""``tsunagu``: run the platform, mint development tokens, run one distributed process."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from contracts.topics import Topics
from services.platform.bus import Message
from services.platform.logs import configure_logging
from services.platform.settings import Settings
from services.platform.tracing import setup_tracing

if TYPE_CHECKING:
    from fastapi import FastAPI

    from services.projection.audit import AuditLog

log = logging.getLogger("tsunagu")
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

    from services.demo import load_demo
    from services.wiring import embedded_app

    setup_tracing("tsunagu-embedded", otlp_endpoint=settings.otlp_endpoint)
    app = embedded_app(settings)
    if not args.no_demo:
        load_demo(app, settings)
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
    from services import wiring

    setup_tracing(f"tsunagu-{service}", otlp_endpoint=settings.otlp_endpoint)
    return wiring.service_app(settings, service)


def worker_app() -> FastAPI:
    """The app each process of ``serve --workers`` builds for itself."""
    configure_logging()
    return _service_app(os.environ[SERVE_SERVICE], Settings.from_env())


def _declared(settings: Settings, stop: threading.Event) -> None:
    """Every topic created before this process uses any, once Kafka answers."""
    from services.platform.lifecycle import until_available
    from services.wiring import declare_topics

    until_available("Kafka", lambda: declare_topics(settings), stop)


def _relay(args: argparse.Namespace, settings: Settings) -> int:
    from services.platform.bus import KafkaPublisher
    from services.platform.lifecycle import READY, Stopped, Stopping, report, until_available
    from services.wiring import COMMAND_SERVICES, disclosure_outbox, relay

    bootstrap = settings.kafka_bootstrap_servers
    if not bootstrap or not settings.database_url:
        print("the relay needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr)
        return 2
    setup_tracing(f"tsunagu-{args.service}-relay", otlp_endpoint=settings.otlp_endpoint)
    stop = Stopping().install().event
    try:
        _declared(settings, stop)
        application = until_available(
            "PostgreSQL", lambda: COMMAND_SERVICES[args.service].application(settings, None), stop
        )
        publisher = until_available("Kafka", lambda: KafkaPublisher(bootstrap), stop)
        relaying = until_available(
            "PostgreSQL", lambda: relay(settings, args.service, application, publisher), stop
        )
        outbox = until_available(
            "PostgreSQL", lambda: disclosure_outbox(settings, args.service), stop
        )
    except Stopped:
        return 0
    # Beside its events, the service's reads (RecordViewed) go from its outbox to the audit
    # topic, where ``tsunagu audit ingest`` appends them to the chains.
    disclosures = threading.Thread(
        target=outbox.run,
        args=(publisher, stop, settings.relay_poll_seconds),
        name="disclosures",
        daemon=True,
    )
    disclosures.start()
    report(READY)
    log.info("relay started", extra={"service": args.service})
    relaying.run(stop, settings.relay_poll_seconds)
    disclosures.join()
    relaying.close()
    outbox.database.close()
    publisher.close()
    application.close()
    return 0


def _project(args: argparse.Namespace, settings: Settings) -> int:
    from services.platform.lifecycle import READY, Stopped, Stopping, report, until_available
    from services.projection.worker import dead_letter_publisher, run_worker
    from services.wiring import FEEDS, feed_runner, feed_store, key_store

    if not settings.kafka_bootstrap_servers or not settings.database_url:
        print("the projector needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr)
        return 2
    service = args.service
    setup_tracing(f"tsunagu-{service}-feed", otlp_endpoint=settings.otlp_endpoint)
    stopping = Stopping().install()
    try:
        _declared(settings, stopping.event)
        store = until_available("PostgreSQL", lambda: feed_store(settings, service), stopping.event)
        keys = until_available("PostgreSQL", lambda: key_store(settings), stopping.event)
        dead_letters = until_available(
            "Kafka", lambda: dead_letter_publisher(settings), stopping.event
        )
    except Stopped:
        return 0
    runner = feed_runner(settings, service, store, dead_letters, keys=keys)
    report(READY)
    run_worker(settings, runner, f"{service}-feed", FEEDS[service].sources, stopping)
    return 0


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
    """The checkpointer process: once its servers answer, a checkpoint of each municipality's
    chain (or only ``--municipality``'s) every so often."""
    from services.platform.lifecycle import READY, Stopped, Stopping, report, until_available
    from services.projection.checkpoint import Checkpointer, anchoring
    from services.wiring import audit_chains, view_store

    stop = Stopping().install().event
    try:
        if settings.kafka_bootstrap_servers:
            _declared(settings, stop)
        chains = until_available(
            "PostgreSQL", lambda: dict(audit_chains(settings, view_store(settings)).each()), stop
        )
    except Stopped:
        return 0
    if args.municipality:
        chains = {args.municipality: chains[args.municipality]}
    anchors = [anchoring(settings, signing=True, municipality=code) for code in chains]
    report(READY)
    every = args.every or settings.checkpoint_seconds
    threads = [
        threading.Thread(target=Checkpointer(anchor, log).run, args=(every, stop))
        for anchor, log in zip(anchors, chains.values(), strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for anchor in anchors:
            anchor.store.close()
    return 0


def _ingest(settings: Settings) -> int:
    """``tsunagu audit ingest``: other services' reads, from the audit topic to the chain of
    each one's municipality."""
    from services.platform.lifecycle import READY, Stopped, Stopping, report, until_available
    from services.projection.disclosure_ingest import AuditIngest, run_ingest
    from services.projection.worker import dead_letter_publisher
    from services.wiring import audit_chains, view_store

    if not settings.kafka_bootstrap_servers or not settings.database_url:
        print("the ingest needs DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS", file=sys.stderr)
        return 2
    stop = Stopping().install().event
    try:
        _declared(settings, stop)
        chains = until_available(
            "PostgreSQL", lambda: audit_chains(settings, view_store(settings)), stop
        )
        dead_letters = until_available("Kafka", lambda: dead_letter_publisher(settings), stop)
    except Stopped:
        return 0
    ingest = AuditIngest(chains, dead_letters, Topics(settings.topic_prefix).dead_letter)
    report(READY)
    log.info("audit ingest started")
    run_ingest(settings, ingest, stop)
    dead_letters.close()
    chains.close()
    return 0


def _views(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from services.projection.agency_view import sweep
    from services.projection.purges import sweep_and_publish
    from services.wiring import view_store

    if args.action == "rebuild":
        return _rebuild(args.service, settings)
    bootstrap = settings.kafka_bootstrap_servers if settings.distributed else None
    if bootstrap and args.every:
        return _sweeper(args.every, settings)
    store = view_store(settings)
    # Consents expire and emergency windows close with no event: something must look.
    if not bootstrap:
        # Embedded: the running app publishes the purges recorded here.
        purges = sweep(store, args.at)
    else:
        from services.platform.bus import KafkaPublisher

        publisher = KafkaPublisher(bootstrap)
        try:
            topic = Topics(settings.topic_prefix).events("projection")
            purges = sweep_and_publish(store, publisher, topic, args.at)
        finally:
            publisher.close()
    for purge in purges:
        print(json.dumps(asdict(purge), ensure_ascii=False))
    return 0


def _sweeper(every: float, settings: Settings) -> int:
    """The sweeper process: once its servers answer, a sweep every ``every`` seconds."""
    from services.platform.bus import KafkaPublisher
    from services.platform.lifecycle import READY, Stopped, Stopping, report, until_available
    from services.projection.purges import run_sweeper
    from services.wiring import view_store

    bootstrap = settings.kafka_bootstrap_servers
    assert bootstrap
    stop = Stopping().install().event
    try:
        _declared(settings, stop)
        store = until_available("PostgreSQL", lambda: view_store(settings), stop)
        publisher = until_available("Kafka", lambda: KafkaPublisher(bootstrap), stop)
    except Stopped:
        return 0
    report(READY)
    try:
        run_sweeper(
            store, publisher, Topics(settings.topic_prefix).events("projection"), every, stop
        )
    finally:
        publisher.close()
    return 0


def _retention(args: argparse.Namespace, settings: Settings) -> int:
    """``tsunagu retention sweep``: erase, for ``retention``, every person whose records'
    retention has ended; once (at ``--at``, default now: each person erased printed as a JSON
    line), or every ``--every`` seconds (the retention sweeper process). It writes to intake's
    event store and key store: intake's relay publishes the erasures."""
    from services.intake.retention import RetentionBook
    from services.platform.lifecycle import READY, Stopped, Stopping, report, until_available
    from services.wiring import feed_store, intake_application, key_store

    stop = Stopping().install().event
    try:
        keys = until_available("PostgreSQL", lambda: key_store(settings), stop)
        intake = until_available("PostgreSQL", lambda: intake_application(settings, keys), stop)
        store = until_available("PostgreSQL", lambda: feed_store(settings, "intake"), stop)
    except Stopped:
        return 0
    book = RetentionBook(store)
    try:
        if args.every is None:
            for person in intake.erase_due(book, args.at or datetime.now(UTC)):
                print(json.dumps({"erased": str(person), "reason": "retention"}))
            return 0
        report(READY)
        while not stop.is_set():
            try:
                erased = intake.erase_due(book, datetime.now(UTC))
                if erased:
                    log.info("erased for retention", extra={"persons": len(erased)})
            except Exception:
                log.exception("retention sweep failed; retrying at the next tick")
            stop.wait(args.every)
        return 0
    finally:
        intake.close()
        store.database.close()
        keys.close()


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
    from services.projection.deadletters import dead_letters, find

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
    _replay(settings, found.original())
    print(json.dumps({"replayed": found.name, "topic": found.topic}))
    return 0


def _replay(settings: Settings, message: Message) -> None:
    """The message to its topic's feeds again: on Kafka, published there; embedded, where the
    running app's bus is out of reach, applied here to each feed of that topic (the feeds'
    files are shared). A feed that had applied it drops it as a repeat."""
    from services.platform.bus import KafkaPublisher
    from services.projection.deadletters import FILE, FileDeadLetters
    from services.projection.quarantine import apply_or_quarantine
    from services.wiring import FEEDS, feed_runner, feed_store, key_store

    if settings.distributed and settings.kafka_bootstrap_servers:
        publisher = KafkaPublisher(settings.kafka_bootstrap_servers)
        publisher.publish([message])
        publisher.close()
        return
    topics = Topics(settings.topic_prefix)
    letters = FileDeadLetters(settings.var_dir / FILE)
    keys = key_store(settings)
    for service, feed in FEEDS.items():
        if message.topic in {topics.events(source) for source in feed.sources}:
            store = feed_store(settings, service)
            runner = feed_runner(settings, service, store, letters, keys=keys)
            apply_or_quarantine(runner, [message])
            store.database.close()
    keys.close()


def _setup(args: argparse.Namespace, settings: Settings) -> int:
    """What the processes need before they start: ``topics create``, and for ``setup`` the
    schemas and tables too. Both wait for their servers (a deployment's first step may run
    while they are still starting); both may be run again."""
    from services.platform.lifecycle import Stopped, Stopping, until_available
    from services.wiring import create_schemas

    if not settings.kafka_bootstrap_servers or (
        args.command == "setup" and not settings.database_url
    ):
        print("set KAFKA_BOOTSTRAP_SERVERS (and DATABASE_URL for setup)", file=sys.stderr)
        return 2
    stop = Stopping().install().event
    try:
        if args.command == "setup":
            until_available("PostgreSQL", lambda: create_schemas(settings), stop)
        _declared(settings, stop)
    except Stopped:
        return 1
    log.info("ready", extra={"step": args.command, "topic_prefix": settings.topic_prefix})
    return 0


def _rebuild(service: str, settings: Settings) -> int:
    from services.platform.bus import KafkaPublisher
    from services.projection.rebuild import rebuild
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
        settle=FEEDS[service].settle,
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
        "municipality keeps records, unless extended",
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
