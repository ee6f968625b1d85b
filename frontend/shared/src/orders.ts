import type { components } from "./api/schema";

export type Status = components["schemas"]["Status"];
export type Order = components["schemas"]["OrderOut"];
export type OrderSummary = components["schemas"]["OrderSummary"];
export type TimelineEntry = components["schemas"]["TimelineEntry"];

export const STATUSES: Status[] = ["CREATED", "CONFIRMED", "FAILED", "SHIPPED", "DELIVERED", "CANCELLED"];

/** What a client receives on `order.updated` (services/kit/live.py OrderUpdate). */
export interface OrderUpdate {
  orderId: string;
  userId: string;
  status: Status;
  version: number;
  time: string;
  reason?: string | null;
}

/**
 * The status changes an admin may make, and the ones an owner may (cancelling), as
 * services/orders/domain.py TRANSITIONS allows them; the server refuses any other.
 * CONFIRMED and FAILED are inventory's answer, never set by hand.
 */
export const ADMIN_TRANSITIONS: Record<Status, Status[]> = {
  CREATED: ["CANCELLED"],
  CONFIRMED: ["SHIPPED", "CANCELLED"],
  SHIPPED: ["DELIVERED"],
  DELIVERED: [],
  FAILED: [],
  CANCELLED: [],
};

export function ownerMayCancel(status: Status): boolean {
  return status === "CREATED" || status === "CONFIRMED";
}

export const FINAL: ReadonlySet<Status> = new Set<Status>(["DELIVERED", "FAILED", "CANCELLED"]);

/** The steps a tracker shows; a failed or cancelled order ends where it stopped. */
export const HAPPY_PATH: Status[] = ["CREATED", "CONFIRMED", "SHIPPED", "DELIVERED"];

export interface Tracked {
  order: Order;
  /** Entries by version, oldest first, without duplicates. */
  timeline: TimelineEntry[];
}

export type TrackerAction =
  | { type: "loaded"; order: Order }
  | { type: "pushed"; update: OrderUpdate }
  | { type: "synced"; entries: TimelineEntry[] };

function merge(timeline: TimelineEntry[], entries: TimelineEntry[]): TimelineEntry[] {
  const byVersion = new Map(timeline.map((e) => [e.version, e]));
  for (const entry of entries) byVersion.set(entry.version, entry);
  return [...byVersion.values()].sort((a, b) => a.version - b.version);
}

function withNewest(state: Tracked, timeline: TimelineEntry[]): Tracked {
  const newest = timeline[timeline.length - 1];
  if (!newest || newest.version <= state.order.version) return { ...state, timeline };
  return { order: { ...state.order, status: newest.status, version: newest.version, updatedAt: newest.at }, timeline };
}

/**
 * An order's tracker state. Pushes and catch-up entries may arrive late, twice or out of
 * order (a push racing the order.sync answer after a reconnect): each is keyed by the order's
 * version, and the newest version decides the status.
 */
export function trackerReducer(state: Tracked | null, action: TrackerAction): Tracked | null {
  switch (action.type) {
    case "loaded": {
      const fresh: Tracked = { order: action.order, timeline: merge([], action.order.timeline) };
      return state && state.order.id === action.order.id ? withNewest(fresh, merge(fresh.timeline, state.timeline)) : fresh;
    }
    case "pushed": {
      if (state === null || action.update.orderId !== state.order.id) return state;
      const entry: TimelineEntry = {
        status: action.update.status,
        version: action.update.version,
        at: action.update.time,
        reason: action.update.reason ?? null,
        actor: "",
        eventId: null,
      };
      const known = state.timeline.find((e) => e.version === entry.version);
      return withNewest(state, known ? state.timeline : merge(state.timeline, [entry]));
    }
    case "synced":
      return state === null ? state : withNewest(state, merge(state.timeline, action.entries));
  }
}

/** The newest version a client has seen: what it asks order.sync for entries after. */
export function lastVersion(state: Tracked | null): number {
  return state ? Math.max(state.order.version, ...state.timeline.map((e) => e.version)) : 0;
}

export function failureReason(state: Tracked): string | null {
  const entry = [...state.timeline].reverse().find((e) => e.status === state.order.status);
  return entry?.reason ? plainReason(entry.reason) : null;
}

/**
 * Inventory's and the orders service's reasons in plain words: they are written for operators
 * (`1 of 1 lines refused: insufficient-stock: <product id>: ...`), with a stable code inside.
 */
export function plainReason(reason: string): string {
  if (reason.includes("insufficient-stock")) return "some items are no longer in stock";
  if (/inactive-product|unknown-product/.test(reason)) return "a product is no longer sold";
  if (/expired/.test(reason)) return "the items could not be held long enough and were released";
  return reason;
}

export function formatMoney(amount: string | number, currency: string): string {
  const value = typeof amount === "string" ? Number(amount) : amount;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(value);
  } catch {
    return `${value.toFixed(2)} ${currency}`;
  }
}

export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
