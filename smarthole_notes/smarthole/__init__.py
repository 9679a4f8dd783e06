"""The SmartHole client: registration, routed messages, responses."""

from smarthole_notes.smarthole.client import (
    DEFAULT_BACKOFF,
    Backoff,
    ConnectionStatus,
    SmartHoleClient,
)
from smarthole_notes.smarthole.notifications import (
    NotificationKind,
    NotificationLimits,
    NotificationOutcome,
    NotificationResult,
    notification_title,
)
from smarthole_notes.smarthole.protocol import (
    InputMethod,
    Priority,
    RoutedMessage,
    description_problem,
    name_problem,
    url_problem,
)

__all__ = [
    "DEFAULT_BACKOFF",
    "Backoff",
    "ConnectionStatus",
    "InputMethod",
    "NotificationKind",
    "NotificationLimits",
    "NotificationOutcome",
    "NotificationResult",
    "Priority",
    "RoutedMessage",
    "SmartHoleClient",
    "description_problem",
    "name_problem",
    "notification_title",
    "url_problem",
]
