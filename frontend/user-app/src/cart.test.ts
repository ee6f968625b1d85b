import { describe, expect, it } from "vitest";
import { cartReducer, cartTotals, type CartLine } from "./cart";

const line = (productId: string, quantity: number, price = "2.50", currency = "EUR"): CartLine => ({ productId, name: productId, price, currency, quantity });

describe("cartReducer", () => {
  it("adds up one product's quantities, within what is available", () => {
    let cart = cartReducer([], { type: "add", line: line("a", 2), available: 5 });
    cart = cartReducer(cart, { type: "add", line: line("a", 2), available: 5 });
    cart = cartReducer(cart, { type: "add", line: line("a", 9), available: 5 });
    expect(cart).toEqual([line("a", 5)]);
  });

  it("does not add what is out of stock", () => {
    expect(cartReducer([], { type: "add", line: line("a", 1), available: 0 })).toEqual([]);
  });

  it("removes a line set to zero and clears", () => {
    const cart = [line("a", 1), line("b", 2)];
    expect(cartReducer(cart, { type: "set", productId: "a", quantity: 0 })).toEqual([line("b", 2)]);
    expect(cartReducer(cart, { type: "set", productId: "b", quantity: 3 })[1]?.quantity).toBe(3);
    expect(cartReducer(cart, { type: "clear" })).toEqual([]);
  });

  it("totals per currency in exact cents", () => {
    expect(cartTotals([line("a", 3, "0.10"), line("b", 1, "19.99"), line("c", 2, "5.00", "USD")])).toEqual({ EUR: "20.29", USD: "10.00" });
  });
});
