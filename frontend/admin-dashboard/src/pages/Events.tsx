import { useCallback, useEffect, useRef, useState } from "react";
import { Alert, Button, Empty, TextField, describeError, formatTime, unwrap, useServices, type components } from "@realtimeorder/shared";

type Event = components["schemas"]["EventOut"];

export function EventsPage() {
  const { api } = useServices();
  const [orderId, setOrderId] = useState("");
  const [type, setType] = useState("");
  const [events, setEvents] = useState<Event[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  // Each keystroke in a filter asks again; an answer to an older question is not shown.
  const latest = useRef(0);

  const load = useCallback(
    async (cursor: string | null) => {
      const ticket = ++latest.current;
      try {
        const page = await unwrap(
          api.GET("/analytics/events", {
            params: { query: { limit: 50, ...(orderId.trim() ? { orderId: orderId.trim() } : {}), ...(type ? { type: [type] } : {}), ...(cursor ? { cursor } : {}) } },
          }),
        );
        if (ticket !== latest.current) return;
        setEvents((current) => (cursor ? [...current, ...page.items] : page.items));
        setNext(page.nextCursor);
        setError(null);
      } catch (e) {
        if (ticket === latest.current) setError(describeError(e));
      }
    },
    [api, orderId, type],
  );
  useEffect(() => {
    void load(null);
  }, [load]);

  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Event log</h1>
      <div className="grid gap-3 sm:grid-cols-2">
        <TextField label="Order id" value={orderId} onChange={(e) => setOrderId(e.target.value)} />
        <TextField label="Event type" list="event-types" value={type} onChange={(e) => setType(e.target.value)} hint="Such as order.created" />
        <datalist id="event-types">
          {["order.created", "order.confirmed", "order.failed", "order.shipped", "order.delivered", "order.cancelled"].map((t) => (
            <option key={t} value={t} />
          ))}
        </datalist>
      </div>
      {error && <Alert>{error}</Alert>}
      {events.length === 0 && !error && <Empty>No events match.</Empty>}
      {events.length > 0 && (
      <ul className="divide-y divide-slate-200 rounded-lg border border-slate-200 bg-white text-sm dark:divide-slate-700 dark:border-slate-700 dark:bg-slate-900">
        {events.map((event) => (
          <li key={event.eventId} className="p-3" data-event-type={event.type} data-order={event.orderId}>
            <button type="button" className="flex w-full flex-wrap items-center gap-3 text-left" aria-expanded={open === event.eventId} onClick={() => setOpen(open === event.eventId ? null : event.eventId)}>
              <span className="font-mono text-xs">{formatTime(event.occurredAt)}</span>
              <span className="font-semibold">{event.type}</span>
              <span className="font-mono text-xs">order {event.orderId.slice(0, 8)} v{event.version ?? "?"}</span>
              <span className="text-xs text-slate-600 dark:text-slate-400">from {event.source}</span>
            </button>
            {open === event.eventId && <pre className="mt-2 overflow-x-auto rounded bg-slate-100 p-2 text-xs dark:bg-slate-800">{JSON.stringify(event.data, null, 2)}</pre>}
          </li>
        ))}
      </ul>
      )}
      {next && <Button variant="secondary" onClick={() => void load(next)}>Older events</Button>}
    </div>
  );
}
