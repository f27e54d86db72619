import pytest

from agents._backoff import Backoff, polling_delay


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


def test_polling_ceiling_doubles_per_second_of_waiting() -> None:
    ceilings = [polling_delay(t, 0.025, 1.0, uniform=upper_bound) for t in (0, 1, 2, 3, 4, 5, 6)]
    assert ceilings == pytest.approx([0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0])


def test_polling_delay_is_full_jitter_under_the_ceiling() -> None:
    delays = [polling_delay(2.0, 0.025, 1.0) for _ in range(300)]
    assert all(0.0 <= d <= 0.1 for d in delays)
    assert max(delays) > 0.05 and len(set(delays)) > 250


def test_polling_delay_never_overflows_after_a_long_wait() -> None:
    assert polling_delay(10**9, 0.025, 1.0, uniform=upper_bound) == 1.0
    assert polling_delay(-5, 0.025, 1.0, uniform=upper_bound) == 0.025
