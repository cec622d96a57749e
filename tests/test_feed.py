"""The feed contract itself, on a toy venue: states, the transition table, faults as actions, closing,
watchdogs, and our own bugs propagating instead of being relabelled as venue faults."""
import pytest

from data_manager import parse
from data_manager.book import Side
from data_manager.errors import MessageError
from data_manager.feed import TRANSITIONS, FeedKey, FeedState, Health, InvalidTransition, Reconnect
from data_manager.sync import BridgeState, SnapshotBridge
from tests.toy import BOOK, D, toy


def test_a_connection_subscribes_and_a_whole_book_makes_it_live():
    driver = toy()
    driver.connect()
    assert driver.connects == ["ws://toy"] and driver.sent == ['{"subscribe":"BTC-USD"}']
    assert driver.state() is FeedState.SYNCING
    driver.feed(BOOK)
    assert driver.state() is FeedState.LIVE
    assert driver.levels(Side.BID) == [(D(100), D(1)), (D(99), D(2))]
    assert driver.changed == ["toy BTC-USD"]
    assert [state for _, state in driver.health] == [FeedState.SYNCING, FeedState.LIVE]


def test_a_fault_closes_and_frames_still_arriving_are_ignored_until_the_new_connection():
    driver = toy()
    driver.connect()
    driver.feed(BOOK)
    driver.connected = True  # keep the socket "open" after the Reconnect: leftovers arrive
    driver.processor.receive('{"bid":["100","nope"]}')
    actions = driver.processor.actions()
    assert any(type(a) is Reconnect and a.reason.startswith("malformed") for a in actions)
    assert driver.state() is FeedState.CLOSING and driver.levels(Side.BID) == []
    driver.processor.receive(BOOK)  # a leftover whole book of the old connection: never used
    assert driver.state() is FeedState.CLOSING and driver.levels(Side.BID) == []
    driver.processor.connection_lost("closed by us")
    assert driver.state() is FeedState.RESYNCING
    health = driver.feed_book().health
    assert health.last_fault.kind == "malformed" and health.resyncs == 1
    driver.connect()
    assert driver.state() is FeedState.RESYNCING
    driver.feed('{"bid":["100","1"]}')  # an update is not a book: refused, and still not live
    assert driver.reconnects[-1].startswith("malformed: update before the book")
    assert driver.state() is FeedState.RESYNCING and not driver.connected
    driver.connect()
    driver.feed(BOOK)
    assert driver.state() is FeedState.LIVE and health.resyncs == 2


def test_our_own_bugs_propagate_and_are_never_recorded_as_venue_faults():
    driver = toy()
    driver.connect()
    driver.feed(BOOK)
    with pytest.raises(KeyError):
        driver.feed('{"bug":1}')
    assert driver.feed_book().health.last_fault is None and driver.state() is FeedState.LIVE


def test_stale_after_max_age_then_reconnect_after_twice_that_and_a_heartbeat_revives():
    driver = toy(max_age=2.0)
    driver.connect()
    driver.feed(BOOK)
    driver.advance(2.5)
    assert driver.state() is FeedState.STALE
    driver.feed('{"hb":1}')
    assert driver.state() is FeedState.LIVE
    driver.advance(4.5)
    assert driver.reconnects and driver.reconnects[-1].startswith("stale")
    assert driver.state() is FeedState.RESYNCING


def test_pings_are_sent_on_the_venue_interval():
    driver = toy(max_age=100)
    driver.connect()
    driver.feed(BOOK)
    driver.advance(11)
    assert driver.sent.count('{"ping":1}') == 2


def test_no_book_long_after_connecting_reconnects():
    driver = toy(max_age=100)
    driver.connect()
    driver.advance(31)
    assert driver.reconnects and driver.reconnects[0].startswith("no-book")


def test_the_transition_table_refuses_what_it_does_not_list():
    health = Health(FeedKey("toy", "BTC-USD"), lambda action: None)
    with pytest.raises(InvalidTransition):
        health.to(FeedState.LIVE, 0.0)  # connecting -> live skips syncing
    assert FeedState.LIVE not in TRANSITIONS[FeedState.CONNECTING]
    assert all(FeedState.CLOSING in TRANSITIONS[s] for s in FeedState if s is not FeedState.CLOSING)


def test_the_bridge_refetches_an_old_snapshot_and_replays_only_what_it_does_not_cover():
    bridge = SnapshotBridge(slack=1)
    for sequence in (10, 11, 12):
        bridge.buffer(sequence, f"d{sequence}")
    assert bridge.fetch_due(0.0) and not bridge.fetch_due(0.0)
    assert bridge.snapshot(8, "old") is None and bridge.state is BridgeState.BUFFERING
    assert bridge.fetch_due(0.0)
    bridged = bridge.snapshot(10, "snap")
    assert bridged.replay == ["d11", "d12"] and bridged.snapshot == "snap"
    assert bridge.state is BridgeState.SYNCED and bridge.covered(10) and not bridge.covered(11)


def test_a_failed_snapshot_is_asked_again_only_after_the_retry_delay():
    bridge = SnapshotBridge(slack=0)
    bridge.buffer(5, "d")
    assert bridge.fetch_due(100.0)
    bridge.failed(100.0, retry_after=60)
    assert not bridge.fetch_due(159.0) and bridge.fetch_due(160.0)


@pytest.mark.parametrize("text", ['{"a":' + "[" * 3000, '{"n":NaN}', '{"n":Infinity}', "\xff", ""])
def test_the_decoder_refuses_hostile_text_as_a_venue_fault(text):
    with pytest.raises(MessageError):
        parse.decode_object("toy", text)


@pytest.mark.parametrize("price,size", [("1e999999999", "1"), ("100", "1E44"), ("100", "1e-30"), ("0", "1"),
                                        ("-1", "1"), ("100", "-1"), ("NaN", "1"), ("100", "x" * 100)])
def test_levels_out_of_shape_or_range_are_refused(price, size):
    with pytest.raises(MessageError):  # BadLevel is a FeedError too, and so is MessageError
        try:
            parse.level("toy", "bid", price, size, "{}")
        except Exception as exc:
            assert exc.kind in ("malformed", "bad-level")
            raise MessageError("toy", exc.kind) from exc
