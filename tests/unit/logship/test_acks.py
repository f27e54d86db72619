import random

import pytest

from agents.logship.acks import AckTracker, FileAcks


def test_commit_moves_only_over_a_contiguous_acknowledged_prefix() -> None:
    acks = FileAcks(committed=0)
    for start, end in [(0, 10), (10, 25), (25, 30)]:
        acks.sent(start, end)
    assert acks.acked(10) is None  # the event before it is still in flight
    assert acks.committed == 0
    assert acks.acked(0) == 25  # now both are done
    assert acks.acked(25) == 30
    assert acks.outstanding == 0


def test_resume_point_is_respected() -> None:
    acks = FileAcks(committed=500)
    acks.sent(500, 600)
    assert acks.acked(500) == 600


def test_ranges_must_come_in_file_order() -> None:
    acks = FileAcks(0)
    acks.sent(0, 10)
    with pytest.raises(ValueError, match="overlaps"):
        acks.sent(5, 20)


@pytest.mark.parametrize("seed", range(20))
def test_any_ack_order_ends_at_the_last_end(seed: int) -> None:
    rng = random.Random(seed)
    acks = FileAcks(0)
    ranges, pos = [], 0
    for _ in range(200):
        size = rng.randint(1, 50)
        ranges.append((pos, pos + size))
        acks.sent(pos, pos + size)
        pos += size
    order = ranges[:]
    rng.shuffle(order)
    acked: set[int] = set()
    for start, _ in order:
        acks.acked(start)
        acked.add(start)
        # invariant: committed is the end of the longest acknowledged prefix
        prefix_end = 0
        for s, e in ranges:
            if s not in acked:
                break
            prefix_end = e
        assert acks.committed == prefix_end
    assert acks.committed == pos


def test_tracker_keeps_generations_apart() -> None:
    tracker = AckTracker()
    tracker.track("f", 0, 0)
    tracker.track("f", 1, 0)  # the file was truncated: offsets start again
    tracker.sent("f", 0, 0, 100)
    tracker.sent("f", 1, 0, 40)
    assert tracker.acked("f", 1, 0) == (40, None)  # no tail was given with the range
    assert tracker.outstanding() == 1
    assert tracker.acked("gone", 0, 0) is None


def test_outstanding_counts_events_not_ranges() -> None:
    # One read's run of 8 events is one range: a restart would send all 8 again.
    acks = FileAcks(0)
    acks.sent(0, 80, events=8)
    acks.sent(80, 90, events=1)
    assert acks.outstanding == 9
    assert acks.acked(80) is None  # acknowledged, but behind an unacknowledged run
    assert acks.outstanding == 9
    assert acks.acked(0) == 90
    assert acks.outstanding == 0


def test_tracker_counts_events_across_files() -> None:
    tracker = AckTracker()
    tracker.track("a", 0, 0)
    tracker.track("b", 0, 0)
    tracker.sent("a", 0, 0, 300, events=30)
    tracker.sent("b", 0, 0, 50, events=5)
    assert tracker.outstanding() == 35
    tracker.acked("b", 0, 0)
    assert tracker.outstanding() == 30


def test_the_tail_of_the_last_range_committed_comes_with_the_offset() -> None:
    tracker = AckTracker()
    tracker.track("f", 0, 0)
    tracker.sent("f", 0, 0, 10, events=1, tail="t10")
    tracker.sent("f", 0, 10, 30, events=2, tail="t30")
    assert tracker.acked("f", 0, 10) is None
    assert tracker.acked("f", 0, 0) == (30, "t30")
