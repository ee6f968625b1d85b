// @vitest-environment jsdom
import { act } from "react";
import { createRoot } from "react-dom/client";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createServices, ServicesProvider } from "@realtimeorder/shared";
import type { CartLine } from "../cart";
import { CartPage } from "./Cart";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const lines: CartLine[] = [{ productId: "p1", name: "Widget", price: "4.00", currency: "EUR", quantity: 2 }];

afterEach(() => {
  document.body.innerHTML = "";
  localStorage.clear();
});

function render(dispatch = vi.fn()) {
  const services = createServices({ apiUrl: "http://api", socketUrl: "http://api", socketPath: "/socket.io/" }, "cart-test");
  const root = document.createElement("div");
  document.body.append(root);
  act(() => createRoot(root).render(<ServicesProvider value={services}><CartPage lines={lines} dispatch={dispatch} /></ServicesProvider>));
  return { services, dispatch };
}

describe("CartPage", () => {
  it("labels every control and shows the total", () => {
    render();
    const unlabelled = [...document.querySelectorAll("input, select")].filter((el) => !document.querySelector(`label[for="${el.id}"]`) && !el.getAttribute("aria-label"));
    expect(unlabelled).toEqual([]);
    expect(document.querySelector("[data-testid=cart-total]")?.textContent).toContain("8.00");
  });

  it("changes a quantity through the labelled field", () => {
    const { dispatch } = render();
    const label = [...document.querySelectorAll("label")].find((l) => l.textContent === "Quantity of Widget");
    const input = document.getElementById(label?.htmlFor ?? "") as HTMLInputElement | null;
    expect(input?.value).toBe("2");
    act(() => {
      const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")!.set!;
      setter.call(input, "3");
      input!.dispatchEvent(new Event("input", { bubbles: true }));
    });
    expect(dispatch).toHaveBeenCalledWith({ type: "set", productId: "p1", quantity: 3 });
  });
});
