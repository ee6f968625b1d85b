import { describe, expect, it } from "vitest";
import { ADMIN_TRANSITIONS, failureReason, lastVersion, ownerMayCancel, trackerReducer, type Order, type TimelineEntry } from "./orders";

const entry = (version: number, status: TimelineEntry["status"], reason: string | null = null): TimelineEntry => ({
  version, status, reason, actor: "inventory", eventId: null, at: `2026-12-01T10:00:0${version}Z`,
});

const order: Order = {
  id: "o1", userId: "u1", status: "CREATED", version: 1, total: "20.00", currency: "EUR", items: [],
  createdAt: "2026-12-01T10:00:01Z", updatedAt: "2026-12-01T10:00:01Z",
  shippingAddress: { name: "A", line1: "B", city: "C", postalCode: "D", country: "GB" },
  timeline: [entry(1, "CREATED")],
};
const push = (version: number, status: TimelineEntry["status"], reason?: string) => ({
  type: "pushed" as const,
  update: { orderId: "o1", userId: "u1", status, version, time: `2026-12-01T10:00:0${version}Z`, reason: reason ?? null },
});

describe("trackerReducer", () => {
  const loaded = trackerReducer(null, { type: "loaded", order })!;

  it("advances the status on a newer push", () => {
    const state = trackerReducer(loaded, push(2, "CONFIRMED"))!;
    expect(state.order.status).toBe("CONFIRMED");
    expect(state.timeline.map((e) => e.status)).toEqual(["CREATED", "CONFIRMED"]);
  });

  it("ignores another order's push, a duplicate and a stale one", () => {
    const confirmed = trackerReducer(loaded, push(2, "CONFIRMED"))!;
    expect(trackerReducer(confirmed, { ...push(3, "SHIPPED"), update: { ...push(3, "SHIPPED").update, orderId: "o2" } })).toBe(confirmed);
    expect(trackerReducer(confirmed, push(2, "CONFIRMED"))!.timeline).toHaveLength(2);
    expect(trackerReducer(confirmed, push(1, "CREATED"))!.order.status).toBe("CONFIRMED");
  });

  it("catches up from order.sync entries in any order, merged with pushes", () => {
    const pushed = trackerReducer(loaded, push(4, "DELIVERED"))!;
    const synced = trackerReducer(pushed, { type: "synced", entries: [entry(3, "SHIPPED"), entry(2, "CONFIRMED")] })!;
    expect(synced.timeline.map((e) => e.version)).toEqual([1, 2, 3, 4]);
    expect(synced.order.status).toBe("DELIVERED");
    expect(lastVersion(synced)).toBe(4);
  });

  it("keeps pushes that arrived before a slower reload of the order", () => {
    const early = trackerReducer(loaded, push(2, "FAILED", "out of stock"))!;
    const reloaded = trackerReducer(early, { type: "loaded", order })!;
    expect(reloaded.order.status).toBe("FAILED");
    expect(failureReason(reloaded)).toBe("out of stock");
  });

  it("words inventory's reasons for the customer", () => {
    const failed = trackerReducer(loaded, push(2, "FAILED", "1 of 1 lines refused: insufficient-stock: p1: insufficient-stock (requested 2, available 0)"))!;
    expect(failureReason(failed)).toBe("some items are no longer in stock");
  });
});

describe("transitions", () => {
  it("offers an admin only what the orders service allows", () => {
    expect(ADMIN_TRANSITIONS.CONFIRMED).toEqual(["SHIPPED", "CANCELLED"]);
    expect(ADMIN_TRANSITIONS.CREATED).toEqual(["CANCELLED"]);
    expect(ADMIN_TRANSITIONS.DELIVERED).toEqual([]);
  });

  it("lets an owner cancel until the order ships", () => {
    expect(ownerMayCancel("CREATED")).toBe(true);
    expect(ownerMayCancel("CONFIRMED")).toBe(true);
    expect(ownerMayCancel("SHIPPED")).toBe(false);
  });
});
