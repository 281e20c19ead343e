"""The README's commands work as written: a new user pastes them, one after the other.

Every command of the quick start, of "Run the distributed stack" (with its sign-in) and of
"Operating" is checked as far as it can be without servers: each ``tsunagu`` command parses as
the CLI takes it, each ``make`` target and each script's subcommand exists, each setting set is
one the code reads, the ``TOKEN=`` line mints a token, and each ``curl`` is sent, with its
token, headers and body as written, to the app that answers on its port (the embedded app for
the quick start; in the distributed section, the service ``serve`` runs on that ``--port``).
The agencies and roles listed are those of the reference data. So the README cannot drift from
the code without this failing.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from contracts.identity import ROLES
from contracts.reference import OVERSIGHT_ROLES, reference
from services import cli
from services.platform.settings import Settings
from services.wiring import embedded_app, service_app

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAKEFILE = (ROOT / "Makefile").read_text(encoding="utf-8")
TSUNAGU = ".venv/bin/tsunagu"
# Where the servers' addresses are written, by deploy/local/up.sh (make servers-up).
SERVERS_ENV = "var/local/env"
ASSIGNMENT = re.compile(r"([A-Z_][A-Z0-9_]*)=(.*)")
SUBSTITUTION = re.compile(r"\$\((.+)\)")
# The desk's settings naming where each service answers, and the service each names.
DESK_URLS = {
    f"TSUNAGU_{name.upper()}_URL": "projection" if name == "views" else name
    for name in ("intake", "referral", "meeting", "views")
}


def section(title: str) -> str:
    """A ``## title`` section of the README, its ``###`` subsections included."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def command_lines(text: str) -> list[str]:
    """The lines of the code blocks (indented four spaces), continuation lines joined."""
    lines, pending = [], ""
    for line in text.splitlines():
        if not line.startswith("    "):
            continue
        pending += line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        lines.append(pending)
        pending = ""
    return lines


def words(line: str) -> list[str]:
    """A line split as the shell would, its comment and a trailing ``&`` dropped."""
    split = shlex.split(line, comments=True)
    return split[:-1] if split and split[-1] == "&" else split


def read(name: str, value: str) -> bool:
    """Whether the platform reads the variable: its settings change with it, or (read outside
    them, as the health file is) some service's code names it."""
    before = Settings.from_env()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(name, value)
        if Settings.from_env() != before:
            return True
    return any(
        name in path.read_text(encoding="utf-8") for path in (ROOT / "services").rglob("*.py")
    )


@dataclass
class Shell:
    """What the README's commands need from one another: the variables they set, the ports the
    services were served on, the servers started."""

    stack: contextlib.ExitStack
    # What answers on a port besides the services ``serve`` started: how to build it.
    apps: dict[int, Callable[[], FastAPI]] = field(default_factory=dict)
    clients: dict[int, TestClient] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    served: dict[int, str] = field(default_factory=dict)
    servers_up: bool = False
    checked: list[str] = field(default_factory=list)

    def run(self, line: str) -> None:
        assigned = ASSIGNMENT.fullmatch(line)
        if assigned and (substituted := SUBSTITUTION.fullmatch(assigned.group(2))):
            self.variables[assigned.group(1)] = self.output(words(substituted.group(1)))
            return
        command = words(line)
        while command and ASSIGNMENT.fullmatch(command[0]):
            self.setting(command.pop(0))
        if command:
            self.command(command)

    def setting(self, assignment: str) -> None:
        name, _, value = assignment.partition("=")
        assert read(name, value), f"the README sets {name}, which no code reads"
        if name in DESK_URLS:
            # Where the desk finds a service: the port that service was served on.
            port = urlparse(value).port
            assert self.served.get(port or 0) == DESK_URLS[name], (
                f"{name} names port {port}, where {self.served.get(port or 0)} is served"
            )

    def command(self, command: list[str]) -> None:
        program, arguments = command[0], command[1:]
        self.checked.append(" ".join(command))
        if program == TSUNAGU:
            self.tsunagu(arguments)
        elif program == "make":
            [target] = arguments
            assert re.search(rf"^{re.escape(target)}:", MAKEFILE, re.MULTILINE), (
                f"make {target}: the Makefile has no such target"
            )
            self.servers_up |= target == "servers-up"
        elif program == "source":
            assert arguments == [SERVERS_ENV] and self.servers_up, "source before make servers-up"
        elif program.startswith("deploy/local/"):
            script = (ROOT / program).read_text(encoding="utf-8")
            assert f"cmd_{arguments[0]}()" in script, f"{program} has no {arguments[0]}"
            self.servers_up |= program.endswith("up.sh")
        elif program == "eval":
            [text] = arguments
            substituted = SUBSTITUTION.fullmatch(text)
            assert substituted, text
            self.command(words(substituted.group(1)))
        elif program == "export":
            for assignment in arguments:
                self.setting(assignment)
        elif program == "curl":
            self.curl(arguments)
        elif program == "kill":
            assert arguments == ["$(jobs", "-p)"], "kill what the section started in background"
        else:
            raise AssertionError(f"the README runs {program}: say here how to check it")

    def tsunagu(self, arguments: list[str]) -> None:
        try:
            parsed = cli.parser().parse_args(arguments)
        except SystemExit as refused:
            raise AssertionError(f"tsunagu {' '.join(arguments)}: refused") from refused
        if parsed.command == "serve":
            self.served[parsed.port] = parsed.service

    def output(self, command: list[str]) -> str:
        """What a ``$(...)`` prints: only a ``tsunagu token`` is run here."""
        assert command[:2] == [TSUNAGU, "token"], command
        self.tsunagu(command[1:])
        minted = capture(command[1:])
        assert minted.count(".") == 2, minted  # a JWT, on a line of its own
        return minted

    def curl(self, arguments: list[str]) -> None:
        headers, body, method, urls = {}, None, "GET", []
        given = iter(arguments)
        for argument in given:
            if argument == "-H":
                name, _, value = next(given).partition(":")
                headers[name] = self.expand(value.strip())
            elif argument == "-d":
                body, method = next(given), "POST"
            else:
                urls.append(argument)
        [url] = urls
        where = urlparse(url)
        assert where.port is not None, url
        answer = self.client(where.port).request(
            method, where.path, content=body, headers=headers, params=where.query or None
        )
        assert answer.status_code < 300, f"{method} {url}: {answer.status_code} {answer.text}"

    def client(self, port: int) -> TestClient:
        """A client of what answers on ``port``, built at its first request and shut down at
        the test's end."""
        if port not in self.clients:
            assert port in self.apps or port in self.served, f"nothing is served on {port}"
            build = self.apps.get(port) or (lambda: service_app(settings(), self.served[port]))
            self.clients[port] = self.stack.enter_context(TestClient(build()))
        return self.clients[port]

    def expand(self, text: str) -> str:
        return re.sub(r"\$(\w+)", lambda name: self.variables[name.group(1)], text)


def capture(arguments: list[str]) -> str:
    """A ``tsunagu`` command run in this process; what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli.main(arguments) == 0
    return printed.getvalue().strip()


def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    """A new user's shell: nothing set but the data directory (embedded data, and the
    development key the token and the apps share)."""
    for name in list(os.environ):
        if name.startswith("TSUNAGU_") or name in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("TSUNAGU_VAR_DIR", str(tmp_path / "var"))
    with contextlib.ExitStack() as stack:
        yield Shell(stack)


def run_section(shell: Shell, title: str) -> None:
    for line in command_lines(section(title)):
        shell.run(line)


def test_the_quick_starts_commands_work_as_written(shell: Shell) -> None:
    # make run is tsunagu run, on its default port.
    assert re.search(r"^run: .*\n\t\$\(BIN\)/tsunagu run$", MAKEFILE, re.MULTILINE)
    shell.apps[cli.parser().parse_args(["run"]).port] = lambda: embedded_app(settings())
    run_section(shell, "The two commands")
    assert any(c.startswith("curl") for c in shell.checked)
    assert "TOKEN" in shell.variables


def test_the_distributed_stacks_commands_work_as_written(shell: Shell) -> None:
    run_section(shell, "Run the distributed stack")
    for kind in ("serve", "relay", "project", "views sweep", "audit ingest", "audit checkpoint"):
        assert any(c.startswith(f"{TSUNAGU} {kind}") for c in shell.checked), kind
    assert set(shell.served.values()) == {"intake", "referral", "meeting", "projection", "web"}
    assert any(c.startswith("curl") for c in shell.checked)
    # What was started in the background is stopped before the servers are.
    stop, down = shell.checked.index("kill $(jobs -p)"), shell.checked.index("make servers-down")
    assert stop < down


def test_the_operating_section_restarts_wipes_and_replays_the_dead_letters(
    shell: Shell,
) -> None:
    run_section(shell, "Operating")
    text = section("Operating")
    for target in ("servers-down", "servers-up", "servers-wipe"):
        assert f"`make {target}`" in text, target
    for action in ("list", "show", "replay"):
        assert any(c.startswith(f"{TSUNAGU} deadletter {action}") for c in shell.checked)


def test_the_banner_of_make_run_says_what_the_quick_start_says() -> None:
    lines = set(command_lines(section("The two commands")))
    printed = cli.banner("http://127.0.0.1:8000", Settings()).splitlines()
    commands = [line for line in printed if line.startswith(("TOKEN=", "curl "))]
    assert len(commands) == 2
    for line in commands:
        assert line in lines, f"the banner's {line!r} is not in the quick start"


def table(title: str) -> list[list[str]]:
    """The rows of the table of a ``###`` subsection, cells stripped of backquotes."""
    start = README.index(f"\n### {title}\n")
    text = README[start : README.index("\n#", start + 1)]
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def test_the_readme_lists_every_agency_and_role_of_the_reference_data() -> None:
    data = reference()
    listed = table("Agencies and roles")
    roles = [row[0] for row in listed if row[0] in ROLES or row[0] == "role"]
    assert roles[1:] == list(ROLES)

    def granted(agency: str, scope: str) -> str:
        held = [r for r in OVERSIGHT_ROLES if data.oversight.get(r, {}).get(agency) == scope]
        return ", ".join(held) or "—"

    expected = [
        [
            agency.id,
            agency.name_ja,
            f"{data.municipalities[agency.municipality].name_ja} {agency.municipality}",
            granted(agency.id, "municipality"),
            granted(agency.id, "own_agency"),
        ]
        for agency in data.agencies.values()
    ]
    assert [row for row in listed if len(row) == 5 and row[0] in data.agencies] == expected


def test_a_drifted_command_fails_the_check(shell: Shell) -> None:
    """The check itself: a subcommand the CLI lacks, a target the Makefile lacks, a path the
    service on that port does not answer (the views' own, without embedded mode's prefix)."""
    shell.apps[8000] = lambda: embedded_app(settings())
    shell.run(f"TOKEN=$({TSUNAGU} token --agency zama-jiritsu --staff s001)")
    for drifted in (
        f"{TSUNAGU} serve intak --port 8001 &",
        "make serve-up",
        'curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/consultations',
    ):
        with pytest.raises(AssertionError):
            shell.run(drifted)
    shell.run('curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/views/consultations')
