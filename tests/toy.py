"""A toy venue for testing the contract and the shell without any real venue's protocol.

{"book": [[price, size]...], "asks": [...]} is a whole book; {"bid": [price, size]} an update;
{"hb": 1} a heartbeat; {"bug": 1} triggers a bug of ours (a KeyError), which must propagate.
"""
from decimal import Decimal

from data_manager import parse
from data_manager.book import Side
from data_manager.errors import MessageError
from data_manager.feed import FeedProcessor, FeedSettings, FeedState, Send
from data_manager.symbols import Symbol
from tests.driver import Driver, FakeClock

D = Decimal


class Toy(FeedProcessor):
    """{"book": [[bid price, size]], "asks": [...]} is a whole book; {"bid": [p, s]} an update."""

    venue = "toy"
    ping_interval = 5.0

    def on_connected(self) -> None:
        self.emit(Send('{"subscribe":"BTC-USD"}'))

    def on_frame(self, text: str) -> None:
        message = parse.decode_object(self.venue, text)
        feed = self.books["BTC-USD"]
        if "bug" in message:
            raise KeyError("our own bug")
        if "book" in message:
            bids = [parse.level(self.venue, "bid", p, s, text) for p, s in message["book"]]
            asks = [parse.level(self.venue, "ask", p, s, text) for p, s in message["asks"]]
            feed.book.replace(bids, asks)
            self.go_live(feed)
            self.applied(feed)
        elif "bid" in message:
            if feed.health.state is not FeedState.LIVE:
                raise MessageError(self.venue, "update before the book", text)
            p, s = message["bid"]
            feed.book.apply(Side.BID, *parse.level(self.venue, "bid", p, s, text))
            self.applied(feed)
            self.touch(feed)
        elif "hb" in message:
            self.touch(feed)

    def ping_message(self) -> str:
        return '{"ping":1}'


BOOK = '{"book":[["100","1"],["99","2"]],"asks":[["101","1"]]}'


def toy(max_age: float = 10.0) -> Driver:
    clock = FakeClock()
    processor = Toy(FeedSettings(url="ws://toy", max_age=max_age), [(Symbol("BTC", "USD"), "BTC-USD")], clock)
    return Driver(processor, clock=clock)
