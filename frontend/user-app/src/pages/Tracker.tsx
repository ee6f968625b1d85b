import { useCallback, useEffect, useReducer, useRef, useState } from "react";
import {
  Alert,
  Button,
  Card,
  HAPPY_PATH,
  Link,
  ORDER_UPDATED,
  StatusBadge,
  describeError,
  failureReason,
  formatMoney,
  formatTime,
  lastVersion,
  ownerMayCancel,
  trackerReducer,
  unwrap,
  useLiveEvent,
  useConnected,
  useServices,
  type OrderUpdate,
  type Status,
} from "@realtimeorder/shared";

export function TrackerPage({ orderId }: { orderId: string }) {
  const { api, live } = useServices();
  const [state, dispatch] = useReducer(trackerReducer, null);
  const [error, setError] = useState<string | null>(null);
  const [notFound, setNotFound] = useState(false);
  const [busy, setBusy] = useState(false);
  const stateRef = useRef(state);
  stateRef.current = state;

  useEffect(() => {
    unwrap(api.GET("/orders/{order_id}", { params: { path: { order_id: orderId } } }))
      .then((order) => dispatch({ type: "loaded", order }))
      .catch((e: unknown) => {
        const status = (e as { status?: number }).status;
        if (status === 403 || status === 404 || status === 422) setNotFound(true);
        else setError(describeError(e));
      });
  }, [api, orderId]);

  useLiveEvent<OrderUpdate>(ORDER_UPDATED, (update) => dispatch({ type: "pushed", update }));

  const catchUp = useCallback(() => {
    if (stateRef.current === null) return;
    live
      .sync(orderId, lastVersion(stateRef.current))
      .then((entries) => dispatch({ type: "synced", entries }))
      .catch(() => undefined);
  }, [live, orderId]);
  // A push can arrive before the order has loaded (and is dropped), or be sent before the socket
  // joined its rooms: catch up once the order has loaded, and again on every connection.
  const loaded = state !== null;
  useEffect(() => {
    if (loaded) catchUp();
  }, [loaded, catchUp]);
  useConnected(catchUp);

  async function cancel() {
    if (!state) return;
    setBusy(true);
    setError(null);
    try {
      const order = await unwrap(
        api.POST("/orders/{order_id}/cancel", {
          params: { path: { order_id: orderId } },
          body: { expectedVersion: state.order.version },
        }),
      );
      dispatch({ type: "loaded", order });
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }

  if (notFound) {
    return (
      <Card title="Order not found">
        <p className="text-sm">There is no order {orderId} in your account. <Link to="/orders" className="underline">See your orders</Link></p>
      </Card>
    );
  }
  if (!state) return error ? <Alert>{error}</Alert> : <p role="status">Loading the order…</p>;

  const { order, timeline } = state;
  const reason = failureReason(state);
  const stoppedAt: Status | null = order.status === "FAILED" || order.status === "CANCELLED" ? order.status : null;
  const reached = new Set(timeline.map((e) => e.status));
  const steps: Status[] = stoppedAt ? [...HAPPY_PATH.filter((s) => reached.has(s)), stoppedAt] : HAPPY_PATH;

  return (
    <div className="space-y-4">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h1 className="text-2xl font-bold">Order {order.id.slice(0, 8)}</h1>
        <div className="flex items-center gap-3" aria-live="polite">
          <span className="sr-only">Status:</span>
          <StatusBadge status={order.status} />
        </div>
      </div>
      {error && <Alert>{error}</Alert>}
      {order.status === "FAILED" && <Alert>This order could not be completed{reason ? `: ${reason}` : "."}</Alert>}
      {order.status === "CANCELLED" && <Alert tone="info">This order was cancelled{reason ? `: ${reason}` : "."}</Alert>}
      <Card title="Progress">
        <ol className="flex flex-col gap-3 sm:flex-row sm:gap-0" aria-label="Order progress" data-testid="timeline">
          {steps.map((step, i) => {
            const entry = [...timeline].reverse().find((e) => e.status === step);
            const current = step === order.status;
            const done = entry !== undefined;
            return (
              <li key={step} className="flex flex-1 items-center gap-2 sm:flex-col sm:text-center" data-step={step} data-done={done} aria-current={current ? "step" : undefined}>
                <span
                  className={`flex h-8 w-8 shrink-0 items-center justify-center rounded-full text-sm font-bold ${done ? (step === "FAILED" || step === "CANCELLED" ? "bg-red-600 text-white" : "bg-indigo-600 text-white") : "border-2 border-slate-300 text-slate-500 dark:border-slate-600"}`}
                  aria-hidden="true"
                >
                  {i + 1}
                </span>
                <span>
                  <span className="block text-sm font-semibold">{step}</span>
                  <span className="block text-xs text-slate-600 dark:text-slate-400">{entry ? formatTime(entry.at) : "Pending"}</span>
                </span>
              </li>
            );
          })}
        </ol>
      </Card>
      <Card title="Items">
        <ul className="divide-y divide-slate-200 text-sm dark:divide-slate-700">
          {order.items.map((item) => (
            <li key={item.productId} className="flex justify-between py-2">
              <span>{item.quantity} × {item.name}</span>
              <span>{formatMoney(item.lineTotal, order.currency)}</span>
            </li>
          ))}
        </ul>
        <p className="mt-2 text-right font-semibold">Total {formatMoney(order.total, order.currency)}</p>
        {ownerMayCancel(order.status) && (
          <Button variant="danger" className="mt-4" onClick={() => void cancel()} disabled={busy}>
            Cancel order
          </Button>
        )}
      </Card>
    </div>
  );
}
