import time
import uuid

from services.kit.ids import new_id, uuid_at


def test_matches_the_rfc_9562_example() -> None:
    # RFC 9562, appendix A.6: unix_ts_ms 0x017F22E279B0, rand_a 0xCC3, rand_b 0x18C4DC0C0C07398F.
    made = uuid_at(0x017F22E279B0, 0xCC3 << 68 | 0x18C4DC0C0C07398F)

    assert made == uuid.UUID("017F22E2-79B0-7CC3-98C4-DC0C0C07398F")
    assert made.version == 7
    assert made.variant == uuid.RFC_4122


def test_random_bits_beyond_the_fields_are_dropped() -> None:
    assert uuid_at(1, (1 << 80) - 1) == uuid_at(1, ((1 << 80) - 1) ^ (0x3F << 62))


def test_new_ids_carry_the_time_they_were_made() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000

    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_made_a_millisecond_apart_sort_by_time() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()

    assert str(first) < str(second)
    assert first.bytes < second.bytes


def test_ids_do_not_repeat() -> None:
    made = {new_id() for _ in range(10_000)}

    assert len(made) == 10_000
