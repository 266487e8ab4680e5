"""Which messages the engine is done with, from the acknowledgements it sends, in order."""

from __future__ import annotations

from typing import Any

from aws_sqs_queue import Deliveries, Verdict

DONE, SKIPPED = Verdict.DONE, Verdict.SKIPPED


def ack(message_id: str | None) -> dict[str, Any]:
    return {"meta": {} if message_id is None else {"MessageId": message_id}}


def handed(deliveries: Deliveries, message_id: str, events: int) -> list[tuple[str, Verdict]]:
    deliveries.handing(message_id)
    return deliveries.handed(message_id, events)


def test_each_message_is_done_with_its_own_acknowledgement() -> None:
    deliveries = Deliveries()
    assert handed(deliveries, "a", 1) == []
    assert handed(deliveries, "b", 1) == []
    assert deliveries.acknowledge(ack("a")) == [("a", DONE)]
    assert deliveries.acknowledge(ack("b")) == [("b", DONE)]


def test_a_fanned_out_message_waits_for_its_last_event() -> None:
    deliveries = Deliveries()
    deliveries.handing("a")
    # The first event is acknowledged while the second is still being handed over.
    assert deliveries.acknowledge(ack("a")) == []
    assert deliveries.handed("a", 2) == []
    assert deliveries.acknowledge(ack("a")) == [("a", DONE)]


def test_a_message_that_made_no_event_is_done_at_once_and_proves_nothing_earlier() -> None:
    deliveries = Deliveries()
    handed(deliveries, "a", 1)
    assert handed(deliveries, "dropped", 0) == [("dropped", DONE)]
    assert list(deliveries.awaiting) == ["a"]


def test_a_later_acknowledgement_settles_an_earlier_message_the_engine_skipped() -> None:
    deliveries = Deliveries()
    handed(deliveries, "unposted", 1)
    handed(deliveries, "fanned", 2)
    handed(deliveries, "next", 1)
    assert deliveries.acknowledge(ack("fanned")) == [("unposted", SKIPPED)]
    assert deliveries.acknowledge(ack("fanned")) == [("fanned", DONE)]
    assert list(deliveries.awaiting) == ["next"]


def test_an_acknowledgement_without_a_message_id_belongs_to_the_oldest() -> None:
    deliveries = Deliveries()
    handed(deliveries, "a", 1)
    handed(deliveries, "b", 1)
    assert deliveries.acknowledge(ack(None)) == [("a", DONE)]


def test_an_acknowledgement_for_no_awaiting_message_changes_nothing() -> None:
    deliveries = Deliveries()
    handed(deliveries, "a", 1)
    assert deliveries.acknowledge(ack("settled-long-ago")) == []
    assert list(deliveries.awaiting) == ["a"]


def test_a_redelivered_message_moves_to_the_end_of_the_engines_order() -> None:
    deliveries = Deliveries()
    handed(deliveries, "a", 1)
    handed(deliveries, "b", 1)
    handed(deliveries, "a", 1)
    assert list(deliveries.awaiting) == ["b", "a"]
    assert deliveries.acknowledge(ack("b")) == [("b", DONE)]
