import { describe, expect, it } from "vitest";

import { unreadLabel } from "./notifications";

describe("unreadLabel", () => {
  it("says the count while the service counts", () => {
    expect(unreadLabel(1)).toBe("1");
    expect(unreadLabel(99)).toBe("99");
  });

  it("says 99+ once the service stopped counting", () => {
    expect(unreadLabel(100)).toBe("99+");
  });
});
