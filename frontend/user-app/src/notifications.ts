import type { components } from "@realtimeorder/shared";

export type Notification = components["schemas"]["NotificationOut"];

/**
 * `current` with `incoming` merged in: one entry per id (the incoming copy wins, it is newer),
 * newest first. Pushes and page answers may overlap or cross each other on the wire.
 */
export function mergeNotifications(current: Notification[], incoming: Notification[]): Notification[] {
  const byId = new Map(current.map((n) => [n.id, n]));
  for (const notification of incoming) byId.set(notification.id, notification);
  return [...byId.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
}

/** The service counts unread notifications up to this many (notifications' UNREAD_COUNT_LIMIT). */
export const UNREAD_COUNT_LIMIT = 100;

/** The unread count as a badge says it: "99+" once the service stopped counting. */
export function unreadLabel(count: number): string {
  return count >= UNREAD_COUNT_LIMIT ? `${UNREAD_COUNT_LIMIT - 1}+` : String(count);
}

/**
 * The unread count a push carries: `notification.unread`'s, or the one riding on
 * `notification.created`; null when the payload has none.
 */
export function pushedUnreadCount(payload: unknown): number | null {
  const count = (payload as { unreadCount?: unknown } | null)?.unreadCount;
  return typeof count === "number" ? count : null;
}
