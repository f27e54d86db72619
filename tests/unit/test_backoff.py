import pytest

from agents._backoff import Backoff


def upper_bound(a: float, b: float) -> float:
    return b


def test_ceiling_doubles_from_base_to_cap() -> None:
    backoff = Backoff(0.025, 1.0, uniform=upper_bound)
    delays = [backoff.next() for _ in range(8)]
    assert delays == pytest.approx([0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_full_jitter_draws_between_zero_and_ceiling() -> None:
    calls: list[tuple[float, float]] = []

    def record(a: float, b: float) -> float:
        calls.append((a, b))
        return (a + b) / 2

    backoff = Backoff(0.1, 0.3, uniform=record)
    assert [backoff.next() for _ in range(3)] == pytest.approx([0.05, 0.1, 0.15])
    assert calls == [(0.0, 0.1), (0.0, 0.2), (0.0, 0.3)]


def test_real_random_delays_stay_within_bounds() -> None:
    backoff = Backoff(0.01, 0.5)
    delays = [backoff.next() for _ in range(200)]
    assert all(0.0 <= d <= 0.5 for d in delays)
    assert len(set(delays)) > 150  # jittered, not a fixed schedule


def test_reset_starts_fast_again() -> None:
    backoff = Backoff(0.1, 10, uniform=upper_bound)
    for _ in range(5):
        backoff.next()
    backoff.reset()
    assert backoff.next() == pytest.approx(0.1)


def test_base_above_cap_is_clamped() -> None:
    assert Backoff(5, 1, uniform=upper_bound).next() == 1


def test_non_positive_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        Backoff(0, 1)
