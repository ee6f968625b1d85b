import { useCallback, useEffect, useState, type FormEvent } from "react";
import { Alert, Button, Card, TextField, describeError, formatMoney, unwrap, useServices, type components } from "@realtimeorder/shared";

type Product = components["schemas"]["ProductOut"];

export function ProductsPage() {
  const { api } = useServices();
  const [products, setProducts] = useState<Product[]>([]);
  const [message, setMessage] = useState<{ tone: "error" | "success"; text: string } | null>(null);
  const [draft, setDraft] = useState({ sku: "", name: "", price: "", currency: "EUR", initialStock: "0", description: "" });

  const load = useCallback(() => {
    unwrap(api.GET("/inventory/products", { params: { query: { limit: 100 } } }))
      .then((page) => setProducts(page.items))
      .catch((e: unknown) => setMessage({ tone: "error", text: describeError(e) }));
  }, [api]);
  useEffect(load, [load]);

  const report = (text: string) => setMessage({ tone: "success", text });
  const fail = (e: unknown) => setMessage({ tone: "error", text: describeError(e) });

  async function create(event: FormEvent) {
    event.preventDefault();
    try {
      const product = await unwrap(
        api.POST("/inventory/products", {
          body: { ...draft, price: draft.price, initialStock: Number(draft.initialStock) || 0 },
        }),
      );
      setDraft({ ...draft, sku: "", name: "", price: "", description: "" });
      report(`${product.name} created.`);
      load();
    } catch (e) {
      fail(e);
    }
  }

  async function setStock(product: Product, onHand: number) {
    try {
      await unwrap(api.PUT("/inventory/stock/{product_id}", { params: { path: { product_id: product.id } }, body: { onHand, reason: "Set in the admin dashboard" } }));
      report(`Stock of ${product.name} set to ${onHand}.`);
      load();
    } catch (e) {
      fail(e);
    }
  }

  async function patch(product: Product, body: components["schemas"]["ProductPatch"], what: string) {
    try {
      await unwrap(
        api.PATCH("/inventory/products/{product_id}", { params: { path: { product_id: product.id } }, body: { ...body, version: product.version } }),
      );
      report(`${product.name}: ${what}.`);
      load();
    } catch (e) {
      fail(e);
    }
  }

  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Products & stock</h1>
      {message && <Alert tone={message.tone}>{message.text}</Alert>}
      <Card title="New product">
        <form onSubmit={create} className="grid gap-3 sm:grid-cols-3">
          <TextField label="SKU" value={draft.sku} onChange={(e) => setDraft({ ...draft, sku: e.target.value })} required />
          <TextField label="Name" value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} required />
          <TextField label="Price" inputMode="decimal" value={draft.price} onChange={(e) => setDraft({ ...draft, price: e.target.value })} required />
          <TextField label="Currency" maxLength={3} value={draft.currency} onChange={(e) => setDraft({ ...draft, currency: e.target.value })} />
          <TextField label="Initial stock" type="number" min={0} value={draft.initialStock} onChange={(e) => setDraft({ ...draft, initialStock: e.target.value })} />
          <TextField label="Description" value={draft.description} onChange={(e) => setDraft({ ...draft, description: e.target.value })} />
          <Button type="submit" className="sm:col-span-3 sm:justify-self-start">Create product</Button>
        </form>
      </Card>
      <div className="overflow-x-auto rounded-lg border border-slate-200 bg-white dark:border-slate-700 dark:bg-slate-900">
        <table className="w-full text-left text-sm">
          <caption className="sr-only">Products with their stock</caption>
          <thead className="bg-slate-100 dark:bg-slate-800">
            <tr>
              {["Product", "Price", "On hand", "Reserved", "Available", "Set stock", "Sale"].map((h) => (
                <th key={h} scope="col" className="px-3 py-2">{h}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            {products.map((p) => (
              <ProductRow key={p.id} product={p} onStock={(n) => void setStock(p, n)} onActive={(active) => void patch(p, { active }, active ? "on sale" : "withdrawn")} />
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function ProductRow({ product, onStock, onActive }: { product: Product; onStock: (n: number) => void; onActive: (active: boolean) => void }) {
  const [onHand, setOnHand] = useState(String(product.stock.onHand));
  useEffect(() => setOnHand(String(product.stock.onHand)), [product.stock.onHand]);
  return (
    <tr className="border-t border-slate-200 dark:border-slate-700">
      <td className="px-3 py-2">
        <span className="font-medium">{product.name}</span>
        <span className="block font-mono text-xs text-slate-600 dark:text-slate-400">{product.sku}</span>
      </td>
      <td className="px-3 py-2">{formatMoney(product.price, product.currency)}</td>
      <td className="px-3 py-2">{product.stock.onHand}</td>
      <td className="px-3 py-2">{product.stock.reserved}</td>
      <td className="px-3 py-2">{product.stock.available}</td>
      <td className="px-3 py-2">
        <form className="flex gap-1" onSubmit={(e) => { e.preventDefault(); onStock(Number(onHand)); }}>
          <label className="sr-only" htmlFor={`stock-${product.id}`}>On hand of {product.name}</label>
          <input id={`stock-${product.id}`} type="number" min={0} value={onHand} onChange={(e) => setOnHand(e.target.value)} className="w-20 rounded-md border border-slate-300 bg-white px-2 py-1 dark:border-slate-600 dark:bg-slate-900" />
          <Button type="submit" variant="secondary" className="min-h-8 px-2 py-1 text-xs">Set</Button>
        </form>
      </td>
      <td className="px-3 py-2">
        <span className="mr-2 text-xs">{product.active ? "On sale" : "Withdrawn"}</span>
        <Button variant="ghost" className="min-h-8 px-2 py-1 text-xs" onClick={() => onActive(!product.active)}>
          {product.active ? "Withdraw" : "Put on sale"}
          <span className="sr-only"> {product.name}</span>
        </Button>
      </td>
    </tr>
  );
}
