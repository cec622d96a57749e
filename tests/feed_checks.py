"""Assertions shared by the processor tests."""
import pytest

from data_manager.errors import MessageError


def assert_refused_untouched(processor, text: str, error: type[Exception] = MessageError) -> None:
    """The frame is refused with `error` and the book is exactly as before: validated before applied."""
    before = processor.book.as_dict()
    with pytest.raises(error):
        processor.receive(text)
    assert processor.book.as_dict() == before
