// @vitest-environment jsdom
import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createServices, ServicesProvider, type Order, type TimelineEntry } from "@realtimeorder/shared";
import { TrackerPage } from "./Tracker";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const created: TimelineEntry = { status: "CREATED", version: 1, at: "2026-01-02T10:00:00Z", reason: null, actor: "u1", eventId: null };
const confirmed: TimelineEntry = { status: "CONFIRMED", version: 2, at: "2026-01-02T10:00:01Z", reason: null, actor: "", eventId: null };

const order: Order = {
  id: "0b8f3a52-0000-4000-8000-000000000001",
  userId: "u1",
  status: "CREATED",
  version: 1,
  currency: "EUR",
  total: "8.00",
  createdAt: created.at,
  updatedAt: created.at,
  items: [{ productId: "p1", name: "Widget", quantity: 2, unitPrice: "4.00", lineTotal: "8.00" }],
  shippingAddress: { name: "Ada", line1: "1 Test Street", city: "Berlin", postalCode: "10115", country: "DE" },
  timeline: [created],
} as Order;

afterEach(() => {
  document.body.innerHTML = "";
  localStorage.clear();
  vi.restoreAllMocks();
});

function render() {
  const services = createServices({ apiUrl: "http://api", socketUrl: "http://api", socketPath: "/socket.io/" }, "tracker-test");
  vi.spyOn(services.api, "GET").mockResolvedValue({ data: order, response: new Response(null, { status: 200 }) } as never);
  const sync = vi.spyOn(services.live, "sync").mockResolvedValue([confirmed]);
  const root = document.createElement("div");
  document.body.append(root);
  act(() => createRoot(root).render(<ServicesProvider value={services}><TrackerPage orderId={order.id} /></ServicesProvider>));
  return { services, sync };
}

const step = (status: string) => document.querySelector(`[data-step="${status}"]`)?.getAttribute("data-done");

describe("TrackerPage", () => {
  it("catches up once the order has loaded: a push sent before that is not lost", async () => {
    const { sync } = render();
    await vi.waitFor(() => expect(step("CONFIRMED")).toBe("true"));
    expect(sync).toHaveBeenCalledWith(order.id, 1);
  });

  it("catches up again on every connection, the first one included", async () => {
    const { services, sync } = render();
    await vi.waitFor(() => expect(sync).toHaveBeenCalledTimes(1));
    act(() => {
      (services.live.socket as unknown as { emitReserved: (event: string) => void }).emitReserved("connect");
    });
    await vi.waitFor(() => expect(sync).toHaveBeenCalledTimes(2));
    expect(sync).toHaveBeenLastCalledWith(order.id, 2);
  });
});
