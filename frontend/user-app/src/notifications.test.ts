import { describe, expect, it } from "vitest";

import { pushedUnreadCount, unreadLabel } from "./notifications";

describe("unreadLabel", () => {
  it("says the count while the service counts", () => {
    expect(unreadLabel(1)).toBe("1");
    expect(unreadLabel(99)).toBe("99");
  });

  it("says 99+ once the service stopped counting", () => {
    expect(unreadLabel(100)).toBe("99+");
  });
});

describe("pushedUnreadCount", () => {
  it("reads the count of an unread push and the one a new notification carries", () => {
    expect(pushedUnreadCount({ userId: "u", unreadCount: 3 })).toBe(3);
    expect(pushedUnreadCount({ id: "n1", title: "Order confirmed", unreadCount: 0 })).toBe(0);
  });

  it("is null for a payload without one", () => {
    expect(pushedUnreadCount({ id: "n1", title: "Order confirmed" })).toBeNull();
    expect(pushedUnreadCount(null)).toBeNull();
  });
});
