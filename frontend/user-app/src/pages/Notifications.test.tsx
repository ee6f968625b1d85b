// @vitest-environment jsdom
import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createServices, NOTIFICATION_CREATED, ServicesProvider } from "@realtimeorder/shared";
import { mergeNotifications, type Notification } from "../notifications";
import { NotificationsPage } from "./Notifications";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

function notification(id: string, createdAt: string, read = false): Notification {
  return {
    id,
    orderId: "o1",
    orderVersion: 1,
    eventType: "order.confirmed",
    title: `Title ${id}`,
    body: "Body",
    data: {},
    createdAt,
    read,
    readAt: read ? createdAt : null,
  } as Notification;
}

const older = notification("n1", "2026-01-02T10:00:00Z");
const newer = notification("n2", "2026-01-02T11:00:00Z");

afterEach(() => {
  document.body.innerHTML = "";
  localStorage.clear();
  vi.restoreAllMocks();
});

const shown = () => [...document.querySelectorAll("[data-testid=notifications] li p:first-child")].map((p) => p.textContent);

describe("mergeNotifications", () => {
  it("keeps one entry per id, the incoming copy winning, newest first", () => {
    const merged = mergeNotifications([older, newer], [notification("n1", older.createdAt, true)]);
    expect(merged.map((n) => [n.id, n.read])).toEqual([["n2", false], ["n1", true]]);
  });
});

describe("NotificationsPage", () => {
  it("keeps a push that arrives before the first page, and fetches the newest page again on a connection", async () => {
    const services = createServices({ apiUrl: "http://api", socketUrl: "http://api", socketPath: "/socket.io/" }, "notifications-test");
    let answer: (value: unknown) => void = () => undefined;
    const get = vi
      .spyOn(services.api, "GET")
      .mockImplementationOnce(() => new Promise((resolve) => (answer = resolve)) as never)
      .mockResolvedValue({ data: { items: [newer, older], nextCursor: null, unreadCount: 2 }, response: new Response(null, { status: 200 }) } as never);
    const root = document.createElement("div");
    document.body.append(root);
    act(() => createRoot(root).render(<ServicesProvider value={services}><NotificationsPage onUnread={() => undefined} /></ServicesProvider>));
    const socket = services.live.socket as unknown as { emitReserved: (event: string, ...args: unknown[]) => void };

    act(() => socket.emitReserved(NOTIFICATION_CREATED, newer));
    await act(async () => answer({ data: { items: [older], nextCursor: null, unreadCount: 1 }, response: new Response(null, { status: 200 }) }));
    await vi.waitFor(() => expect(shown()).toEqual(["Unread: Title n2", "Unread: Title n1"]));

    act(() => socket.emitReserved("connect"));
    await vi.waitFor(() => expect(get).toHaveBeenCalledTimes(2));
    await vi.waitFor(() => expect(shown()).toEqual(["Unread: Title n2", "Unread: Title n1"]));
  });
});
