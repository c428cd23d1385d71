"""rtclient.history without a stack: the URL and the paging/validation of gap-fill pages
(rtclient.history.Pages). The HTTP calls themselves run against the deployed stack only."""

from __future__ import annotations

import pytest

from rtclient.history import GapFillError, Pages, messages_url


def _msg(msg_id: int) -> dict:
    return {"id": msg_id, "room": "lobby", "user": "bob", "text": f"m{msg_id}",
            "created_at": "2024-01-01T00:00:00+00:00"}


def test_messages_url():
    assert messages_url("https://127.0.0.1:8443", "lobby") == "https://127.0.0.1:8443/rooms/lobby/messages/"
    assert messages_url("http://h:8000/", "a_b-1") == "http://h:8000/rooms/a_b-1/messages/"


def test_pages_follow_more_until_done():
    pages = Pages(after_id=10)
    assert pages.next_after == 10
    pages.add({"messages": [_msg(11), _msg(15)], "more": True})
    assert pages.next_after == 15
    pages.add({"messages": [_msg(16)], "more": False})
    assert pages.next_after is None and pages.pages == 2
    assert [m["id"] for m in pages.messages] == [11, 15, 16]


def test_pages_empty_answer():
    pages = Pages(after_id=0)
    pages.add({"messages": [], "more": False})
    assert pages.messages == [] and pages.next_after is None


@pytest.mark.parametrize("body", [
    None, [], {"messages": []}, {"more": False}, {"messages": {}, "more": False},
    {"messages": [_msg(11)], "more": "no"},
    {"messages": [{"text": "no id"}], "more": False},
    {"messages": [_msg(5)], "more": False},            # not above after_id
    {"messages": [_msg(12), _msg(11)], "more": False},  # not ascending
    {"messages": [_msg(12), _msg(12)], "more": False},  # duplicate
    {"messages": [], "more": True},                     # would ask for the same page forever
])
def test_pages_reject_malformed(body):
    with pytest.raises(GapFillError) as info:
        Pages(after_id=10).add(body, "https://h/rooms/lobby/messages/")
    assert info.value.status_code == 200 and info.value.url == "https://h/rooms/lobby/messages/"


def test_pages_bounded_by_max_pages():
    pages = Pages(after_id=0, max_pages=2)
    pages.add({"messages": [_msg(1)], "more": True})
    with pytest.raises(GapFillError, match="more than 2 pages") as info:
        pages.add({"messages": [_msg(2)], "more": True})
    assert info.value.status_code is None


@pytest.mark.parametrize("after_id, max_pages", [(-1, 5), ("3", 5), (True, 5), (0, 0)])
def test_pages_bad_arguments(after_id, max_pages):
    with pytest.raises(ValueError):
        Pages(after_id, max_pages)
