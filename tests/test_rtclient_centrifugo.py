"""rtclient.centrifugo's diagnostics: the transitions line a drill prints for a client that did not come back."""

from collections import deque

from rtclient.centrifugo import TRANSITIONS_KEPT, describe_transitions


def test_transitions_read_newest_last_in_seconds_before_now():
    transitions = deque([(10.0, "subscribing", 100, "internal server error"), (12.5, "error", 0, "TimeoutError()")],
                        maxlen=TRANSITIONS_KEPT)
    assert describe_transitions(transitions, 13.0) == \
        "-3.0s subscribing 100 'internal server error'; -0.5s error 0 'TimeoutError()'"


def test_only_the_last_transitions_are_kept():
    transitions = deque(maxlen=TRANSITIONS_KEPT)
    for at in range(TRANSITIONS_KEPT + 3):
        transitions.append((float(at), "connecting", 0, "transport closed"))
    line = describe_transitions(transitions, float(TRANSITIONS_KEPT + 3))
    assert line.count("connecting") == TRANSITIONS_KEPT and line.startswith("-6.0s")


def test_no_transition_reads_empty():
    assert describe_transitions(deque(), 1.0) == ""
