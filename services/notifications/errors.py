"""The notifications service's domain errors; each carries its HTTP status (services.kit.errors)."""

from __future__ import annotations

from services.kit.errors import Conflict, InvalidInput, NotFound


class NotificationNotFound(NotFound):
    """Also the answer for someone else's notification: whether it exists is theirs alone."""

    def __init__(self, notification_id: object) -> None:
        super().__init__(f"There is no notification {notification_id}.")


class InvalidCursor(InvalidInput):
    code = "invalid-cursor"

    def __init__(self) -> None:
        super().__init__("The cursor is not valid; start again without one.")


class DeadLetterNotFound(NotFound):
    def __init__(self, dead_letter_id: object) -> None:
        super().__init__(f"There is no dead letter {dead_letter_id}.")


class DeadLetterResolved(Conflict):
    code = "dead-letter-resolved"

    def __init__(self, status: str) -> None:
        super().__init__(f"This dead letter was {status} already.")


class NotReplayable(Conflict):
    code = "not-replayable"

    def __init__(self, why: str) -> None:
        super().__init__(f"This dead letter cannot be replayed: {why}.")
