import { useEffect, useRef, useState } from "react";
import {
  Alert,
  Button,
  Card,
  Empty,
  Link,
  NOTIFICATION_CREATED,
  describeError,
  formatTime,
  unwrap,
  useConnected,
  useLiveEvent,
  useServices,
} from "@realtimeorder/shared";
import { mergeNotifications, type Notification } from "../notifications";

export function NotificationsPage({ onUnread }: { onUnread: (count: number) => void }) {
  const { api } = useServices();
  const [items, setItems] = useState<Notification[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  // Pushes that arrive before the first page has loaded wait here, then merge into it.
  const early = useRef<Notification[]>([]);
  const loaded = useRef(false);

  async function load(cursor: string | null) {
    try {
      const page = await unwrap(api.GET("/notifications", { params: { query: { limit: 20, ...(cursor ? { cursor } : {}) } } }));
      if (cursor) {
        setItems((current) => mergeNotifications(current ?? [], page.items));
        setNext(page.nextCursor);
      } else {
        // The newest page, first or again after a reconnect: merged, so nothing shown is lost.
        const waiting = early.current;
        early.current = [];
        if (!loaded.current) setNext(page.nextCursor);
        loaded.current = true;
        setItems((current) => mergeNotifications(mergeNotifications(current ?? [], page.items), waiting));
      }
      onUnread(page.unreadCount);
    } catch (e) {
      setError(describeError(e));
    }
  }

  useEffect(() => {
    void load(null);
  }, []);
  useConnected(() => {
    if (loaded.current) void load(null);
  });
  useLiveEvent<Notification>(NOTIFICATION_CREATED, (notification) => {
    if (!loaded.current) early.current.push(notification);
    else setItems((current) => mergeNotifications(current ?? [], [notification]));
  });

  async function markRead(id: string) {
    try {
      const updated = await unwrap(api.POST("/notifications/{notification_id}/read", { params: { path: { notification_id: id } } }));
      setItems((current) => current?.map((n) => (n.id === id ? updated : n)) ?? null);
    } catch (e) {
      setError(describeError(e));
    }
  }

  async function markAllRead() {
    try {
      const result = await unwrap(api.POST("/notifications/read-all"));
      const now = new Date().toISOString();
      setItems((current) => current?.map((n) => (n.read ? n : { ...n, read: true, readAt: now })) ?? null);
      onUnread(result.unreadCount);
    } catch (e) {
      setError(describeError(e));
    }
  }

  return (
    <Card
      title="Notifications"
      actions={
        <div className="flex gap-2">
          <Link to="/settings" className="rounded-md px-3 py-2 text-sm underline">Preferences</Link>
          <Button variant="secondary" onClick={() => void markAllRead()} disabled={!items?.some((n) => !n.read)}>
            Mark all read
          </Button>
        </div>
      }
    >
      {error && <Alert>{error}</Alert>}
      {items?.length === 0 && <Empty>No notifications yet. Updates to your orders appear here.</Empty>}
      <ul className="divide-y divide-slate-200 dark:divide-slate-700" aria-label="Notifications" data-testid="notifications">
        {items?.map((n) => (
          <li key={n.id} className="flex flex-wrap items-start gap-3 py-3" data-read={n.read} data-event={n.eventType}>
            <span className={`mt-1.5 h-2.5 w-2.5 shrink-0 rounded-full ${n.read ? "bg-transparent" : "bg-indigo-600"}`} aria-hidden="true" />
            <div className="min-w-48 flex-1">
              <p className={n.read ? "" : "font-semibold"}>
                {!n.read && <span className="sr-only">Unread: </span>}
                {n.title}
              </p>
              <p className="text-sm text-slate-700 dark:text-slate-300">{n.body}</p>
              <p className="text-xs text-slate-600 dark:text-slate-400">
                {formatTime(n.createdAt)} · <Link to={`/orders/${n.orderId}`} className="underline">View order</Link>
              </p>
            </div>
            {!n.read && (
              <Button variant="ghost" onClick={() => void markRead(n.id)}>
                Mark read<span className="sr-only">: {n.title}</span>
              </Button>
            )}
          </li>
        ))}
      </ul>
      {next && (
        <Button variant="secondary" className="mt-3" onClick={() => void load(next)}>
          Show older
        </Button>
      )}
    </Card>
  );
}
