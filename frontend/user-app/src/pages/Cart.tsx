import { useRef, useState, type FormEvent } from "react";
import {
  Alert,
  Button,
  Card,
  Empty,
  Link,
  TextField,
  describeError,
  formatMoney,
  navigate,
  unwrap,
  useServices,
  useSession,
} from "@realtimeorder/shared";
import { cartTotals, type CartAction, type CartLine } from "../cart";

const ADDRESS_KEY = "rto.address";
const EMPTY_ADDRESS = { name: "", line1: "", line2: "", city: "", postalCode: "", country: "" };
type Address = typeof EMPTY_ADDRESS;

function storedAddress(): Address {
  try {
    return { ...EMPTY_ADDRESS, ...(JSON.parse(localStorage.getItem(ADDRESS_KEY) ?? "{}") as Partial<Address>) };
  } catch {
    return EMPTY_ADDRESS;
  }
}

export function CartPage({ lines, dispatch }: { lines: CartLine[]; dispatch: (action: CartAction) => void }) {
  const { api } = useServices();
  const session = useSession();
  const [address, setAddress] = useState<Address>(storedAddress);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  // One key per checkout: a retry after a lost answer replays the same order instead of
  // placing a second one. A changed cart is a new checkout.
  const idempotencyKey = useRef<string | null>(null);
  const totals = cartTotals(lines);

  function change(action: CartAction) {
    idempotencyKey.current = null;
    dispatch(action);
  }

  async function placeOrder(event: FormEvent) {
    event.preventDefault();
    if (!session) {
      navigate("/checkout");
      return;
    }
    setBusy(true);
    setError(null);
    idempotencyKey.current ??= crypto.randomUUID();
    try {
      localStorage.setItem(ADDRESS_KEY, JSON.stringify(address));
      const order = await unwrap(
        api.POST("/orders", {
          body: {
            items: lines.map((l) => ({ productId: l.productId, quantity: l.quantity })),
            shippingAddress: { ...address, line2: address.line2 || null },
          },
          params: { header: { "Idempotency-Key": idempotencyKey.current } },
        }),
      );
      idempotencyKey.current = null;
      dispatch({ type: "clear" });
      navigate(`/orders/${order.id}`);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }

  if (lines.length === 0) {
    return (
      <Card title="Your cart">
        <Empty>
          Your cart is empty. <Link to="/" className="font-medium text-indigo-700 underline dark:text-indigo-300">Browse products</Link>
        </Empty>
      </Card>
    );
  }

  const field = (key: keyof Address, label: string, extra: Record<string, unknown> = {}) => (
    <TextField label={label} value={address[key]} onChange={(e) => setAddress({ ...address, [key]: e.target.value })} {...extra} />
  );

  return (
    <form onSubmit={placeOrder} className="grid gap-6 lg:grid-cols-2" noValidate>
      <Card title="Your cart">
        <ul className="divide-y divide-slate-200 dark:divide-slate-700">
          {lines.map((line) => (
            <li key={line.productId} className="flex flex-wrap items-end gap-3 py-3">
              <div className="min-w-40 flex-1">
                <p className="font-medium">{line.name}</p>
                <p className="text-sm text-slate-600 dark:text-slate-400">{formatMoney(line.price, line.currency)} each</p>
              </div>
              <TextField
                label={`Quantity of ${line.name}`}
                type="number"
                min={1}
                value={line.quantity}
                onChange={(e) => change({ type: "set", productId: line.productId, quantity: Number(e.target.value) })}
                className="w-24"
              />
              <Button variant="ghost" onClick={() => change({ type: "remove", productId: line.productId })} >
                Remove<span className="sr-only"> {line.name}</span>
              </Button>
            </li>
          ))}
        </ul>
        <p className="mt-3 text-right text-lg font-semibold" data-testid="cart-total">
          Total: {Object.entries(totals).map(([currency, total]) => formatMoney(total, currency)).join(" + ")}
        </p>
        {Object.keys(totals).length > 1 && (
          <Alert tone="info">Products priced in different currencies must be ordered separately.</Alert>
        )}
      </Card>
      <Card title="Shipping address">
        <div className="grid gap-3 sm:grid-cols-2">
          {field("name", "Recipient", { autoComplete: "name", className: "sm:col-span-2" })}
          {field("line1", "Address", { autoComplete: "address-line1", className: "sm:col-span-2" })}
          {field("line2", "Address line 2 (optional)", { autoComplete: "address-line2", className: "sm:col-span-2" })}
          {field("city", "City", { autoComplete: "address-level2" })}
          {field("postalCode", "Postal code", { autoComplete: "postal-code" })}
          {field("country", "Country code", { autoComplete: "country", hint: "Two letters, such as DE or US.", maxLength: 2 })}
        </div>
        {error && <div className="mt-4"><Alert>{error}</Alert></div>}
        <Button type="submit" disabled={busy} className="mt-4 w-full">
          {session ? "Place order" : "Sign in to place your order"}
        </Button>
      </Card>
    </form>
  );
}
