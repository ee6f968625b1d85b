import { useCallback, useEffect, useRef, useState } from "react";
import { Alert, Button, Empty, SelectField, TextField, describeError, formatTime, unwrap, useServices, type components } from "@realtimeorder/shared";

type DeadLetter = components["schemas"]["DeadLetterOut"];
type DeadLetterStatus = DeadLetter["status"];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function DeadLettersPage() {
  const { api } = useServices();
  const [status, setStatus] = useState<DeadLetterStatus>("dead");
  const [channel, setChannel] = useState("");
  const [orderId, setOrderId] = useState("");
  const [items, setItems] = useState<DeadLetter[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [message, setMessage] = useState<{ tone: "error" | "success"; text: string } | null>(null);
  // A filter changed while a page loads asks again: an answer to an older question is not shown.
  const latest = useRef(0);
  const order = orderId.trim();
  const orderIsValid = order === "" || UUID.test(order);

  const load = useCallback(
    async (cursor: string | null) => {
      const ticket = ++latest.current;
      if (!orderIsValid) return;
      try {
        const page = await unwrap(
          api.GET("/notifications/dlq", {
            params: {
              query: {
                status,
                limit: 20,
                ...(channel ? { channel: channel as components["schemas"]["Channel"] } : {}),
                ...(order ? { orderId: order } : {}),
                ...(cursor ? { cursor } : {}),
              },
            },
          }),
        );
        if (ticket !== latest.current) return;
        setItems((current) => (cursor ? [...(current ?? []), ...page.items] : page.items));
        setNext(page.nextCursor);
      } catch (e) {
        if (ticket === latest.current) setMessage({ tone: "error", text: describeError(e) });
      }
    },
    [api, status, channel, order, orderIsValid],
  );
  useEffect(() => {
    void load(null);
  }, [load]);

  async function act(letter: DeadLetter, action: "replay" | "discard") {
    try {
      const path = { params: { path: { dead_letter_id: letter.id } } };
      if (action === "replay") await unwrap(api.POST("/notifications/dlq/{dead_letter_id}/replay", path));
      else await unwrap(api.POST("/notifications/dlq/{dead_letter_id}/discard", path));
      setMessage({ tone: "success", text: action === "replay" ? "Sent again." : "Discarded." });
      void load(null);
    } catch (e) {
      setMessage({ tone: "error", text: describeError(e) });
    }
  }

  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Dead letters</h1>
      <div className="grid gap-3 sm:grid-cols-3">
        <SelectField label="Status" value={status} onChange={(e) => setStatus(e.target.value as DeadLetterStatus)}>
          <option value="dead">Waiting for a decision</option>
          <option value="replayed">Replayed</option>
          <option value="discarded">Discarded</option>
        </SelectField>
        <SelectField label="Channel" value={channel} onChange={(e) => setChannel(e.target.value)}>
          <option value="">All channels</option>
          <option value="email">Email</option>
          <option value="sms">SMS</option>
          <option value="push">Push</option>
        </SelectField>
        <TextField
          label="Order id"
          value={orderId}
          onChange={(e) => setOrderId(e.target.value)}
          aria-invalid={!orderIsValid}
          hint={orderIsValid ? "A whole order id, not its first characters" : "An order id looks like 5b0f7c1e-3c1a-4d55-9f0e-8c2b9d1e4a10"}
        />
      </div>
      {message && <Alert tone={message.tone}>{message.text}</Alert>}
      {items?.length === 0 && <Empty>No dead letters here.</Empty>}
      {items && items.length > 0 && (
        <ul className="space-y-3" aria-label="Dead letters">
          {items.map((letter) => (
            <li
              key={letter.id}
              data-dead-letter={letter.id}
              data-order={letter.orderId ?? ""}
              data-event-type={letter.eventType ?? ""}
              className="rounded-lg border border-slate-200 bg-white p-3 text-sm dark:border-slate-700 dark:bg-slate-900"
            >
              <div className="flex flex-wrap items-center gap-3">
                <span className="font-semibold">{letter.channel ?? "?"} · {letter.eventType ?? "unreadable message"}</span>
                {letter.orderId && <span className="font-mono text-xs">order {letter.orderId.slice(0, 8)}</span>}
                <span className="font-mono text-xs">{letter.queue}</span>
                <span className="text-xs text-slate-600 dark:text-slate-400">{formatTime(letter.createdAt)} · {letter.attempts} attempt(s)</span>
                {letter.status === "dead" && (
                  <span className="ml-auto flex gap-2">
                    <Button className="min-h-8 px-3 py-1 text-xs" onClick={() => void act(letter, "replay")} disabled={!letter.deliveryId} aria-label={`Replay ${describe(letter)}`}>Replay</Button>
                    <Button variant="secondary" className="min-h-8 px-3 py-1 text-xs" onClick={() => void act(letter, "discard")} aria-label={`Discard ${describe(letter)}`}>Discard</Button>
                  </span>
                )}
              </div>
              <p className="mt-1 text-red-800 dark:text-red-300">{letter.reason}</p>
              <details className="mt-1">
                <summary className="cursor-pointer text-xs">Message</summary>
                <pre className="mt-1 overflow-x-auto rounded bg-slate-100 p-2 text-xs dark:bg-slate-800">{typeof letter.message === "string" ? letter.message : JSON.stringify(letter.message, null, 2)}</pre>
              </details>
            </li>
          ))}
        </ul>
      )}
      {next && <Button variant="secondary" onClick={() => void load(next)}>Older</Button>}
    </div>
  );
}

/** What a dead letter is, for the labels of its buttons. */
function describe(letter: DeadLetter): string {
  const order = letter.orderId ? ` of order ${letter.orderId.slice(0, 8)}` : "";
  return `the ${letter.channel ?? "unreadable"} ${letter.eventType ?? "message"}${order}`;
}
