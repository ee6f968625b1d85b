import { useEffect, useRef, useState } from "react";
import {
  Alert,
  Button,
  Card,
  Empty,
  Link,
  ORDER_UPDATED,
  STATUSES,
  SelectField,
  StatusBadge,
  TextField,
  describeError,
  formatMoney,
  formatTime,
  unwrap,
  useConnected,
  useLiveEvent,
  useServices,
  type OrderSummary,
  type OrderUpdate,
} from "@realtimeorder/shared";

const PAGE_SIZE = 10;

function withPushes(items: OrderSummary[], pushed: Map<string, OrderUpdate>): OrderSummary[] {
  return items.map((o) => {
    const update = pushed.get(o.id);
    return update && update.version > o.version ? { ...o, status: update.status, version: update.version } : o;
  });
}

/** The order history: status and date filters, pages by cursor (back is a stack of cursors). */
export function OrdersPage() {
  const { api } = useServices();
  const [status, setStatus] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [page, setPage] = useState<{ items: OrderSummary[]; nextCursor: string | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const cursor = cursors[cursors.length - 1] ?? null;
  // The newest push per order: applied to every page as it arrives, so a push that overtakes a
  // page's answer is not lost. A new connection reads the page again (what changed meanwhile).
  const pushed = useRef(new Map<string, OrderUpdate>());
  const [connection, setConnection] = useState(0);
  useConnected(() => setConnection((n) => n + 1));

  useEffect(() => {
    setError(null);
    unwrap(
      api.GET("/orders", {
        params: {
          query: {
            limit: PAGE_SIZE,
            ...(status ? { status: [status] } : {}),
            ...(from ? { from: new Date(`${from}T00:00:00`).toISOString() } : {}),
            ...(to ? { to: new Date(`${to}T23:59:59.999`).toISOString() } : {}),
            ...(cursor ? { cursor } : {}),
          },
        },
      }),
    )
      .then((answer) => setPage({ ...answer, items: withPushes(answer.items, pushed.current) }))
      .catch((e: unknown) => setError(describeError(e)));
  }, [api, status, from, to, cursor, connection]);

  useLiveEvent<OrderUpdate>(ORDER_UPDATED, (update) => {
    const known = pushed.current.get(update.orderId);
    if (!known || update.version > known.version) pushed.current.set(update.orderId, update);
    setPage((current) => current && { ...current, items: withPushes(current.items, pushed.current) });
  });

  const refilter = (set: (value: string) => void) => (value: string) => {
    set(value);
    setCursors([null]);
  };

  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Your orders</h1>
      <Card>
        <div className="grid gap-3 sm:grid-cols-3">
          <SelectField label="Status" value={status} onChange={(e) => refilter(setStatus)(e.target.value)}>
            <option value="">All statuses</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>{s}</option>
            ))}
          </SelectField>
          <TextField label="From" type="date" value={from} onChange={(e) => refilter(setFrom)(e.target.value)} />
          <TextField label="To" type="date" value={to} onChange={(e) => refilter(setTo)(e.target.value)} />
        </div>
      </Card>
      {error && <Alert>{error}</Alert>}
      {page && page.items.length === 0 && <Empty>No orders match these filters.</Empty>}
      {page && page.items.length > 0 && (
        <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white dark:border-slate-700 dark:bg-slate-900">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Your orders, newest first</caption>
            <thead className="bg-slate-100 dark:bg-slate-800">
              <tr>
                <th scope="col" className="px-3 py-2">Order</th>
                <th scope="col" className="px-3 py-2">Placed</th>
                <th scope="col" className="px-3 py-2">Items</th>
                <th scope="col" className="px-3 py-2">Total</th>
                <th scope="col" className="px-3 py-2">Status</th>
              </tr>
            </thead>
            <tbody>
              {page.items.map((order) => (
                <tr key={order.id} className="border-t border-slate-200 dark:border-slate-700" data-order={order.id}>
                  <td className="px-3 py-2">
                    <Link to={`/orders/${order.id}`} className="font-medium text-indigo-700 underline dark:text-indigo-300">
                      {order.id.slice(0, 8)}
                    </Link>
                  </td>
                  <td className="px-3 py-2">{formatTime(order.createdAt)}</td>
                  <td className="px-3 py-2">{order.items.reduce((n, i) => n + i.quantity, 0)}</td>
                  <td className="px-3 py-2">{formatMoney(order.total, order.currency)}</td>
                  <td className="px-3 py-2"><StatusBadge status={order.status} /></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav aria-label="Pages" className="flex justify-between">
        <Button variant="secondary" disabled={cursors.length <= 1} onClick={() => setCursors(cursors.slice(0, -1))}>
          Newer
        </Button>
        <Button variant="secondary" disabled={!page?.nextCursor} onClick={() => page?.nextCursor && setCursors([...cursors, page.nextCursor])}>
          Older
        </Button>
      </nav>
    </div>
  );
}
