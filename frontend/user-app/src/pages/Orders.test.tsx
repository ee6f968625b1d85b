// @vitest-environment jsdom
import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createServices, ORDER_UPDATED, ServicesProvider, type OrderSummary, type OrderUpdate } from "@realtimeorder/shared";
import { OrdersPage } from "./Orders";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const order = {
  id: "0b8f3a52-0000-4000-8000-000000000002",
  userId: "u1",
  status: "CREATED",
  version: 1,
  currency: "EUR",
  total: "8.00",
  createdAt: "2026-01-02T10:00:00Z",
  updatedAt: "2026-01-02T10:00:00Z",
  items: [{ productId: "p1", name: "Widget", quantity: 2, unitPrice: "4.00", lineTotal: "8.00" }],
} as OrderSummary;

const confirmed: OrderUpdate = { orderId: order.id, userId: "u1", status: "CONFIRMED", version: 2, time: "2026-01-02T10:00:01Z" };

afterEach(() => {
  document.body.innerHTML = "";
  localStorage.clear();
  vi.restoreAllMocks();
});

const status = () => document.querySelector(`tr[data-order="${order.id}"] td:last-child`)?.textContent;
const ok = (data: unknown) => ({ data, response: new Response(null, { status: 200 }) });

describe("OrdersPage", () => {
  it("applies a push that overtook the page's answer, and reads the page again on a connection", async () => {
    const services = createServices({ apiUrl: "http://api", socketUrl: "http://api", socketPath: "/socket.io/" }, "orders-test");
    let answer: (value: unknown) => void = () => undefined;
    const get = vi
      .spyOn(services.api, "GET")
      .mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)) as never)
      .mockResolvedValue(ok({ items: [{ ...order, status: "SHIPPED", version: 3 }], nextCursor: null }) as never);
    const root = document.createElement("div");
    document.body.append(root);
    act(() => createRoot(root).render(<ServicesProvider value={services}><OrdersPage /></ServicesProvider>));
    const socket = services.live.socket as unknown as { emitReserved: (event: string, ...args: unknown[]) => void };

    act(() => socket.emitReserved(ORDER_UPDATED, confirmed));
    await act(async () => answer(ok({ items: [order], nextCursor: null })));
    await vi.waitFor(() => expect(status()).toContain("CONFIRMED"));

    act(() => socket.emitReserved("connect"));
    await vi.waitFor(() => expect(get).toHaveBeenCalledTimes(2));
    await vi.waitFor(() => expect(status()).toContain("SHIPPED"));
  });
});
