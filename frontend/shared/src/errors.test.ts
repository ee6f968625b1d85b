import { describe, expect, it } from "vitest";
import { resolveConfig } from "./config";
import { describeError } from "./errors";

describe("describeError", () => {
  it("names each invalid field in plain words", () => {
    const problem = {
      type: "https://realtimeorder.io/problems/invalid-input",
      status: 422,
      detail: "The request is not valid.",
      errors: [
        { field: "shippingAddress.country", message: "Value error, must be an ISO 3166-1 alpha-2 country code, such as DE or US" },
        { field: "items.0.quantity", message: "Input should be less than or equal to 1000" },
      ],
    };
    expect(describeError(problem)).toBe(
      "Country: must be an ISO 3166-1 alpha-2 country code, such as DE or US. Quantity: Input should be less than or equal to 1000.",
    );
  });

  it("explains unavailable products, busy services and lost connections", () => {
    expect(describeError({ type: "x/product-unavailable", detail: "Widget is not for sale" })).toBe("Widget is not for sale.");
    expect(describeError({ type: "x/upstream-unavailable", status: 502 })).toMatch(/unavailable right now/);
    for (const shed of ["overloaded", "pipeline-backlogged"]) {
      const problem = { type: `x/${shed}`, status: 503, detail: "312 or more orders are waiting for inventory's answer; retry in 2 s." };
      expect(describeError(problem)).toMatch(/busy or unavailable right now/);
    }
    expect(describeError(new TypeError("Failed to fetch"))).toMatch(/cannot be reached/);
  });
});

describe("resolveConfig", () => {
  it("reads config.json and falls back to the page's origin", () => {
    expect(resolveConfig({ apiUrl: "https://api.example.com/" }, "https://shop.example.com")).toEqual({
      apiUrl: "https://api.example.com",
      socketUrl: "https://api.example.com",
      socketPath: "/socket.io/",
    });
    expect(resolveConfig(null, "https://shop.example.com").apiUrl).toBe("https://shop.example.com");
  });
});
