"""A consumed batch cut into groups never separates the messages of one key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import Message

from services.kit.kafka import keyed_groups


@dataclass(frozen=True)
class Fetched:
    """Stands for a consumed message: its key and a name to follow it by."""

    order: bytes | None
    name: str

    def key(self) -> bytes | None:
        return self.order


def batch(*pairs: tuple[str, str]) -> list[Message]:
    return [cast(Message, Fetched(order.encode(), name)) for order, name in pairs]


def names(groups: list[list[Message]]) -> list[list[str]]:
    return [[cast(Any, message).name for message in group] for group in groups]


def test_a_keys_messages_join_the_group_of_its_first() -> None:
    # Partition by partition: the confirmations first, then the creations.
    fetched = batch(("a", "a2"), ("b", "b2"), ("c", "c2"), ("a", "a1"), ("b", "b1"), ("c", "c1"))

    assert names(keyed_groups(fetched, 4)) == [["a2", "a1", "b2", "b1"], ["c2", "c1"]]


def test_cut_by_position_the_same_batch_would_part_an_order() -> None:
    fetched = batch(("a", "a2"), ("b", "b2"), ("c", "c2"), ("a", "a1"), ("b", "b1"), ("c", "c1"))

    assert names(keyed_groups(fetched, 6)) == [["a2", "a1", "b2", "b1", "c2", "c1"]]
    assert names(keyed_groups(fetched, 1)) == [["a2", "a1"], ["b2", "b1"], ["c2", "c1"]]


def test_distinct_keys_keep_their_order_in_groups_of_the_size() -> None:
    fetched = batch(*((str(n), f"m{n}") for n in range(5)))

    assert names(keyed_groups(fetched, 2)) == [["m0", "m1"], ["m2", "m3"], ["m4"]]
    assert keyed_groups([], 2) == []


def test_messages_without_a_key_are_bound_to_none() -> None:
    fetched = [cast(Message, Fetched(None, f"m{n}")) for n in range(3)]

    assert names(keyed_groups(fetched, 2)) == [["m0", "m1"], ["m2"]]
