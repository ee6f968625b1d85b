import { useCallback, useEffect, useRef, useState } from "react";
import {
  ADMIN_TRANSITIONS,
  Alert,
  Button,
  Card,
  Empty,
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
  type Status,
} from "@realtimeorder/shared";

const PAGE_SIZE = 25;

/** Every order, newest first; new orders appear and statuses change in place as they happen. */
export function OrdersPage() {
  const { api } = useServices();
  const [status, setStatus] = useState("");
  const [q, setQ] = useState("");
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [orders, setOrders] = useState<OrderSummary[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const cursor = cursors[cursors.length - 1] ?? null;
  const firstPage = cursors.length === 1;

  // The list is read again on every connection of the live socket (the first included: pushes
  // sent before the socket joined the admin room never reach it) and once more after a load
  // during which a push arrived (the answer may predate what the push announced).
  const [generation, setGeneration] = useState(0);
  const loading = useRef(true);
  const pushedWhileLoading = useRef(false);
  useConnected(() => setGeneration((g) => g + 1));

  useEffect(() => {
    let current = true;
    loading.current = true;
    unwrap(
      api.GET("/orders", {
        params: {
          query: {
            limit: PAGE_SIZE,
            ...(status ? { status: [status] } : {}),
            ...(q.trim() ? { q: q.trim() } : {}),
            ...(from ? { from: new Date(`${from}T00:00:00`).toISOString() } : {}),
            ...(to ? { to: new Date(`${to}T23:59:59.999`).toISOString() } : {}),
            ...(cursor ? { cursor } : {}),
          },
        },
      }),
    )
      .then((page) => {
        if (!current) return;
        setOrders(page.items);
        setNext(page.nextCursor);
        setError(null);
      })
      .catch((e: unknown) => current && setError(describeError(e)))
      .finally(() => {
        if (!current) return;
        loading.current = false;
        if (pushedWhileLoading.current) {
          pushedWhileLoading.current = false;
          setGeneration((g) => g + 1);
        }
      });
    return () => {
      current = false;
    };
  }, [api, status, q, from, to, cursor, generation]);

  const matchesFilters = useCallback(
    (order: OrderSummary) => firstPage && !q.trim() && !from && !to && (!status || order.status === status),
    [firstPage, q, from, to, status],
  );

  useLiveEvent<OrderUpdate>(ORDER_UPDATED, (update) => {
    if (loading.current) pushedWhileLoading.current = true;
    let known = false;
    setOrders((current) =>
      current?.map((o) => {
        if (o.id !== update.orderId) return o;
        known = true;
        return update.version > o.version ? { ...o, status: update.status, version: update.version, updatedAt: update.time } : o;
      }) ?? null,
    );
    if (known) return;
    // A new order (or one from before this page loaded): fetch it for its total and items.
    unwrap(api.GET("/orders/{order_id}", { params: { path: { order_id: update.orderId } } }))
      .then((order) => {
        if (!matchesFilters(order)) return;
        setOrders((current) => {
          if (!current) return current;
          // Two pushes in quick succession fetch twice: keep the newer answer.
          if (current.some((o) => o.id === order.id)) return current.map((o) => (o.id === order.id && order.version > o.version ? order : o));
          return [order, ...current].slice(0, PAGE_SIZE);
        });
      })
      .catch(() => undefined);
  });

  async function move(order: OrderSummary, target: Status) {
    setError(null);
    try {
      const updated =
        target === "CANCELLED"
          ? await unwrap(api.POST("/orders/{order_id}/cancel", { params: { path: { order_id: order.id } }, body: { expectedVersion: order.version } }))
          : await unwrap(
              api.PUT("/orders/{order_id}/status", {
                params: { path: { order_id: order.id } },
                body: { status: target, expectedVersion: order.version },
              }),
            );
      setOrders((current) => current?.map((o) => (o.id === updated.id && updated.version >= o.version ? updated : o)) ?? null);
    } catch (e) {
      setError(describeError(e));
    }
  }

  const refilter = (set: (v: string) => void) => (v: string) => {
    set(v);
    setCursors([null]);
  };

  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Orders</h1>
      <Card>
        <div className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
          <SelectField label="Status" value={status} onChange={(e) => refilter(setStatus)(e.target.value)}>
            <option value="">All statuses</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>{s}</option>
            ))}
          </SelectField>
          <TextField label="Search (order, product, customer)" type="search" value={q} onChange={(e) => refilter(setQ)(e.target.value)} />
          <TextField label="From" type="date" value={from} onChange={(e) => refilter(setFrom)(e.target.value)} />
          <TextField label="To" type="date" value={to} onChange={(e) => refilter(setTo)(e.target.value)} />
        </div>
      </Card>
      {error && <Alert>{error}</Alert>}
      {orders?.length === 0 && <Empty>No orders match.</Empty>}
      {orders && orders.length > 0 && (
        <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white dark:border-slate-700 dark:bg-slate-900">
          <table className="w-full text-left text-sm" data-testid="orders">
            <caption className="sr-only">Orders, newest first, updated live</caption>
            <thead className="bg-slate-100 dark:bg-slate-800">
              <tr>
                {["Order", "Customer", "Placed", "Total", "Status", "Change status"].map((h) => (
                  <th key={h} scope="col" className="px-3 py-2">{h}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {orders.map((order) => (
                <tr key={order.id} className="border-t border-slate-200 dark:border-slate-700" data-order={order.id} data-status={order.status}>
                  <td className="px-3 py-2 font-mono text-xs">{order.id.slice(0, 8)}</td>
                  <td className="px-3 py-2 font-mono text-xs">{order.userId.slice(0, 8)}</td>
                  <td className="px-3 py-2">{formatTime(order.createdAt)}</td>
                  <td className="px-3 py-2">{formatMoney(order.total, order.currency)}</td>
                  <td className="px-3 py-2"><StatusBadge status={order.status} /></td>
                  <td className="px-3 py-2">
                    <div className="flex flex-wrap gap-1">
                      {ADMIN_TRANSITIONS[order.status].map((target) => (
                        <Button
                          key={target}
                          variant={target === "CANCELLED" ? "secondary" : "primary"}
                          className="min-h-8 px-2 py-1 text-xs"
                          onClick={() => void move(order, target)}
                        >
                          {target === "CANCELLED" ? "Cancel" : target === "SHIPPED" ? "Ship" : "Mark delivered"}
                          <span className="sr-only"> order {order.id.slice(0, 8)}</span>
                        </Button>
                      ))}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <nav aria-label="Pages" className="flex justify-between">
        <Button variant="secondary" disabled={firstPage} onClick={() => setCursors(cursors.slice(0, -1))}>Newer</Button>
        <Button variant="secondary" disabled={!next} onClick={() => next && setCursors([...cursors, next])}>Older</Button>
      </nav>
    </div>
  );
}
