"""Meeting on PostgreSQL and Kafka: cases opened from applications that arrived over Kafka, and
every meeting event on the topic, in story order under the person's key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest

from contracts.envelope import CloudEvent
from contracts.events import CATALOGUE, parse
from contracts.topics import Topics
from services.meeting.feed import FeedFacts
from services.platform.bus import KafkaPublisher, ensure_topics
from services.platform.settings import Settings
from services.scenarios import ScenarioPlayer, load_scenarios
from services.wiring import feed_store, relay, service_app
from tests.conftest import TokenFactory
from tests.infrastructure import Process
from tests.integration.conftest import Cleanup
from tests.integration.feeds import AfterTheFeed
from tests.integration.kafka_tools import read_topic

pytestmark = pytest.mark.integration

Spawn = Callable[[list[str], Settings], Process]
CASE_STORY = [
    "CaseOpened",
    "AssessmentRecorded",
    "PlanDrafted",
    "MeetingScheduled",
    "MeetingHeld",
    "PlanApproved",
    "MonitoringRecorded",
    "ResourceGapNoted",
    "PlanEvaluated",
    "CaseClosed",
]
ARTICLE9_STORY = [
    "CaseOpened",
    "AssessmentRecorded",
    "MeetingScheduled",
    "MeetingHeld",
    "InformationShared",
]


def test_meeting_steps_publish_schema_valid_events_in_story_order_per_person(
    distributed_settings: Settings, spawn: Spawn, token: TokenFactory, cleanup: Cleanup
) -> None:
    settings = distributed_settings
    bootstrap = settings.kafka_bootstrap_servers or ""
    topic = Topics(settings.topic_prefix).events("meeting")
    ensure_topics(bootstrap, [topic], settings.topic_partitions)
    spawn(["relay", "intake"], settings)
    feed = spawn(["project", "meeting"], settings)
    intake = cleanup.client(service_app(settings, "intake"))
    meeting_app = service_app(settings, "meeting")
    replica = cleanup.store(feed_store(settings, "meeting"))
    facts = FeedFacts(replica)

    def ready(url: str, body: Any) -> bool:
        # A case opens from an application that reaches meeting over Kafka.
        return url != "/cases" or facts.applicant(UUID(body["consultation_id"])) is not None

    meetings = AfterTheFeed(cleanup.client(meeting_app), ready, feed)
    player = ScenarioPlayer({"intake": (intake, ""), "meeting": (meetings, "")}, token)
    stories = {s.name: s for s in load_scenarios()}
    offender = player.play(stories["01-released-offender-a"])
    tax = player.play(stories["03-tax-desk-referral"])
    assert [step for step, _ in tax.refused] == ["share_in_meeting"]
    assert set(offender.skipped) == {"send_referral", "decline"}  # referral is not running

    publisher = KafkaPublisher(bootstrap)
    cleanup.relay(relay(settings, "meeting", meeting_app.state.application, publisher)).drain()
    publisher.close()
    expected = len(CASE_STORY) + len(ARTICLE9_STORY)
    records = read_topic(bootstrap, topic, expect=expected)
    assert len(records) == expected
    events = [(r, CloudEvent.from_bytes(r.value)) for r in records]  # type: ignore[attr-defined]
    for person, story in ((offender.person, CASE_STORY), (tax.person, ARTICLE9_STORY)):
        mine = sorted(
            ((r, e) for r, e in events if e.personid == person),
            key=lambda pair: pair[0].offset,  # type: ignore[attr-defined]
        )
        assert [e.name for _, e in mine] == story
        assert {r.partition for r, _ in mine} == {mine[0][0].partition}  # type: ignore[attr-defined]
        assert {r.key.decode() for r, _ in mine} == {person}  # type: ignore[attr-defined]
        moments = [datetime.fromisoformat(e.data["at"]) for _, e in mine]
        assert moments == sorted(moments)
    for _, event in events:
        assert type(parse(event)) is CATALOGUE[(event.name, event.eventversion)]
        assert event.municipality == "142182"
    shared = next(e for _, e in events if e.name == "InformationShared")
    assert shared.data["categories"] == ["consultation", "mental_health", "employment"]
