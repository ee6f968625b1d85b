import { useEffect, useReducer } from "react";

export interface CartLine {
  productId: string;
  name: string;
  price: string;
  currency: string;
  quantity: number;
}

export type CartAction =
  | { type: "add"; line: CartLine; available: number }
  | { type: "set"; productId: string; quantity: number }
  | { type: "remove"; productId: string }
  | { type: "clear" };

export const MAX_QUANTITY = 1000;

/** The cart: one line per product, quantities kept within 1..what is available (and 1000). */
export function cartReducer(lines: CartLine[], action: CartAction): CartLine[] {
  switch (action.type) {
    case "add": {
      const limit = Math.min(MAX_QUANTITY, Math.max(0, action.available));
      const existing = lines.find((l) => l.productId === action.line.productId);
      if (existing) {
        const quantity = Math.min(limit, existing.quantity + action.line.quantity);
        return lines.map((l) => (l === existing ? { ...l, quantity: Math.max(quantity, 1) } : l));
      }
      const quantity = Math.min(limit, action.line.quantity);
      return quantity >= 1 ? [...lines, { ...action.line, quantity }] : lines;
    }
    case "set":
      if (!Number.isFinite(action.quantity) || action.quantity < 1) return lines.filter((l) => l.productId !== action.productId);
      return lines.map((l) =>
        l.productId === action.productId ? { ...l, quantity: Math.min(MAX_QUANTITY, Math.floor(action.quantity)) } : l,
      );
    case "remove":
      return lines.filter((l) => l.productId !== action.productId);
    case "clear":
      return [];
  }
}

/** Totals per currency, as decimal strings: an order is priced in one currency. */
export function cartTotals(lines: CartLine[]): Record<string, string> {
  const cents: Record<string, number> = {};
  for (const line of lines) {
    cents[line.currency] = (cents[line.currency] ?? 0) + Math.round(Number(line.price) * 100) * line.quantity;
  }
  return Object.fromEntries(Object.entries(cents).map(([currency, total]) => [currency, (total / 100).toFixed(2)]));
}

const KEY = "rto.cart";

function stored(): CartLine[] {
  try {
    const value: unknown = JSON.parse(localStorage.getItem(KEY) ?? "[]");
    return Array.isArray(value) ? (value as CartLine[]) : [];
  } catch {
    return [];
  }
}

export function useCart(): [CartLine[], (action: CartAction) => void] {
  const [lines, dispatch] = useReducer(cartReducer, undefined, stored);
  useEffect(() => localStorage.setItem(KEY, JSON.stringify(lines)), [lines]);
  return [lines, dispatch];
}
