import { useCallback, useEffect, useState } from "react";
import {
  Alert,
  Button,
  Empty,
  ORDER_UPDATED,
  TextField,
  describeError,
  formatMoney,
  unwrap,
  useLiveEvent,
  useServices,
  type components,
} from "@realtimeorder/shared";
import type { CartAction } from "../cart";

type Product = components["schemas"]["ProductOut"];

/** Availability is read again this often while the page is open, and after each order update. */
const REFRESH_MS = 15_000;

export function CataloguePage({ dispatch }: { dispatch: (action: CartAction) => void }) {
  const { api } = useServices();
  const [products, setProducts] = useState<Product[] | null>(null);
  const [query, setQuery] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [added, setAdded] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      const page = await unwrap(api.GET("/inventory/products", { params: { query: { limit: 100, ...(query ? { q: query } : {}) } } }));
      setProducts(page.items);
      setError(null);
    } catch (e) {
      setError(describeError(e));
    }
  }, [api, query]);

  useEffect(() => {
    void load();
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") void load();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [load]);
  useLiveEvent(ORDER_UPDATED, () => void load());

  return (
    <div className="space-y-4">
      <div className="flex flex-wrap items-end justify-between gap-3">
        <h1 className="text-2xl font-bold">Products</h1>
        <form role="search" onSubmit={(e) => e.preventDefault()} className="w-full sm:w-72">
          <TextField label="Search products" type="search" value={query} onChange={(e) => setQuery(e.target.value)} />
        </form>
      </div>
      {error && <Alert>{error}</Alert>}
      {added && <Alert tone="success">{added}</Alert>}
      {products?.length === 0 && <Empty>No products match.</Empty>}
      <ul className="grid gap-4 sm:grid-cols-2 lg:grid-cols-3">
        {products?.map((product) => (
          <ProductCard key={product.id} product={product} onAdd={(quantity) => {
            dispatch({
              type: "add",
              available: product.stock.available,
              line: { productId: product.id, name: product.name, price: product.price, currency: product.currency, quantity },
            });
            setAdded(`${quantity} × ${product.name} added to your cart.`);
          }} />
        ))}
      </ul>
    </div>
  );
}

function ProductCard({ product, onAdd }: { product: Product; onAdd: (quantity: number) => void }) {
  const [quantity, setQuantity] = useState(1);
  const available = product.stock.available;
  const out = available <= 0;
  return (
    <li className="flex flex-col rounded-lg border border-slate-200 bg-white p-4 shadow-sm dark:border-slate-700 dark:bg-slate-900" data-product={product.sku}>
      <h2 className="font-semibold">{product.name}</h2>
      <p className="mt-1 line-clamp-3 flex-1 text-sm text-slate-600 dark:text-slate-400">{product.description}</p>
      <p className="mt-3 text-lg font-bold">{formatMoney(product.price, product.currency)}</p>
      <p className={`text-sm ${out ? "font-semibold text-red-700 dark:text-red-300" : "text-slate-600 dark:text-slate-400"}`} data-available={available}>
        {out ? "Out of stock" : `${available} available`}
      </p>
      <div className="mt-3 flex items-end gap-2">
        <TextField
          label={`Quantity of ${product.name}`}
          type="number"
          min={1}
          max={Math.max(1, available)}
          value={quantity}
          onChange={(e) => setQuantity(Math.max(1, Number(e.target.value) || 1))}
          className="w-24 [&_label]:sr-only"
        />
        <Button onClick={() => onAdd(quantity)} disabled={out}>
          Add to cart<span className="sr-only">: {product.name}</span>
        </Button>
      </div>
    </li>
  );
}
