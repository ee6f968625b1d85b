// @vitest-environment jsdom
import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ORDER_UPDATED, createServices, ServicesProvider, type OrderSummary, type OrderUpdate } from "@realtimeorder/shared";
import { OrdersPage } from "./Orders";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const summary = (n: number, status: OrderSummary["status"] = "CREATED"): OrderSummary => ({
  id: `0b8f3a52-0000-4000-8000-00000000000${n}`,
  userId: "u1",
  status,
  version: status === "CREATED" ? 1 : 2,
  currency: "EUR",
  total: "8.00",
  createdAt: "2026-01-02T10:00:00Z",
  updatedAt: "2026-01-02T10:00:00Z",
  items: [{ productId: "p1", sku: "W-1", name: "Widget", quantity: 2, unitPrice: "4.00", lineTotal: "8.00" }],
});
const older = summary(1);
const placed = summary(2);
const pushed: OrderUpdate = { orderId: placed.id, status: "CREATED", version: 1, time: placed.createdAt } as OrderUpdate;

afterEach(() => {
  document.body.innerHTML = "";
  localStorage.clear();
  vi.restoreAllMocks();
});

/** The page over a fake API: `lists` answers GET /orders, one call after another. */
function render(lists: Promise<OrderSummary[]>[]) {
  const services = createServices({ apiUrl: "http://api", socketUrl: "http://api", socketPath: "/socket.io/" }, "orders-test");
  const answer = (data: unknown) => ({ data, response: new Response(null, { status: 200 }) });
  let listCalls = 0;
  const get = vi.spyOn(services.api, "GET").mockImplementation((async (path: string) => {
    if (path === "/orders") {
      const items = await (lists[Math.min(listCalls++, lists.length - 1)] ?? Promise.resolve([]));
      return answer({ items, nextCursor: null });
    }
    return answer(placed); // GET /orders/{order_id}: the pushed order
  }) as never);
  const root = document.createElement("div");
  document.body.append(root);
  act(() => createRoot(root).render(<ServicesProvider value={services}><OrdersPage /></ServicesProvider>));
  const socket = services.live.socket as unknown as { emitReserved: (event: string, payload?: unknown) => void };
  return { get, socket, listCalls: () => listCalls };
}

const rows = () => [...document.querySelectorAll("tr[data-order]")].map((row) => row.getAttribute("data-order"));

describe("OrdersPage", () => {
  it("does not lose an order pushed while the list was still loading", async () => {
    let answerFirst: (items: OrderSummary[]) => void = () => undefined;
    const first = new Promise<OrderSummary[]>((resolve) => (answerFirst = resolve));
    const { socket } = render([first, Promise.resolve([placed, older])]);

    act(() => socket.emitReserved(ORDER_UPDATED, pushed));
    // The answer was read before the order was placed: it does not have it.
    await act(async () => answerFirst([older]));
    await vi.waitFor(() => expect(rows()).toEqual([placed.id, older.id]));
  });

  it("reads the list again on every connection, the first one included", async () => {
    const { socket, listCalls } = render([Promise.resolve([older]), Promise.resolve([placed, older])]);
    await vi.waitFor(() => expect(rows()).toEqual([older.id]));
    act(() => socket.emitReserved("connect"));
    await vi.waitFor(() => expect(rows()).toEqual([placed.id, older.id]));
    expect(listCalls()).toBe(2);
  });
});
