import { lazy, Suspense, useCallback } from "react";
import {
  Link,
  LiveIndicator,
  ThemeToggle,
  navigate,
  signOut,
  useLiveWhileSignedIn,
  usePath,
  useServices,
  useSession,
  useTheme,
} from "@realtimeorder/shared";
import { DeadLettersPage } from "./pages/DeadLetters";
import { EventsPage } from "./pages/Events";
import { LoginPage } from "./pages/Login";
import { MonitorPage } from "./pages/Monitor";
import { OrdersPage } from "./pages/Orders";
import { ProductsPage } from "./pages/Products";

// Recharts is most of the dashboard's weight: it loads with the analytics page, not before.
const AnalyticsPage = lazy(() => import("./pages/Analytics"));

const PAGES = [
  { to: "/", label: "Orders" },
  { to: "/products", label: "Products & stock" },
  { to: "/analytics", label: "Analytics" },
  { to: "/events", label: "Event log" },
  { to: "/monitor", label: "Kafka & RabbitMQ" },
  { to: "/dead-letters", label: "Dead letters" },
];

export function App() {
  const services = useServices();
  const session = useSession();
  const path = usePath().split("?")[0] ?? "/";
  const [theme, setTheme] = useTheme();
  const isAdmin = session?.user.role === "ADMIN";
  const live = useLiveWhileSignedIn();
  const logout = useCallback(() => void signOut(services).then(() => navigate("/")), [services]);

  if (!session || !isAdmin) return <LoginPage theme={theme} onTheme={setTheme} />;

  const page = {
    "/": <OrdersPage />,
    "/products": <ProductsPage />,
    "/analytics": <AnalyticsPage />,
    "/events": <EventsPage />,
    "/monitor": <MonitorPage />,
    "/dead-letters": <DeadLettersPage />,
  }[path] ?? <OrdersPage />;

  return (
    <div className="min-h-screen md:flex">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:rounded focus:bg-white focus:p-2 focus:text-black">
        Skip to content
      </a>
      <aside className="border-b border-slate-200 bg-white p-4 md:min-h-screen md:w-56 md:border-b-0 md:border-r dark:border-slate-800 dark:bg-slate-900">
        <p className="mb-3 text-lg font-bold text-indigo-700 dark:text-indigo-300">RTO admin</p>
        <nav aria-label="Sections">
          <ul className="flex flex-wrap gap-1 md:flex-col">
            {PAGES.map((p) => (
              <li key={p.to}>
                <Link
                  to={p.to}
                  aria-current={path === p.to ? "page" : undefined}
                  className={`block rounded-md px-3 py-1.5 text-sm font-medium ${path === p.to ? "bg-indigo-100 text-indigo-900 dark:bg-indigo-900 dark:text-indigo-100" : "hover:bg-slate-100 dark:hover:bg-slate-800"}`}
                >
                  {p.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      </aside>
      <div className="flex-1">
        <header className="flex flex-wrap items-center justify-end gap-3 border-b border-slate-200 bg-white px-4 py-2 dark:border-slate-800 dark:bg-slate-900">
          <LiveIndicator state={live} />
          <ThemeToggle choice={theme} onChange={setTheme} />
          <span className="text-sm text-slate-600 dark:text-slate-300">{session.user.email}</span>
          <button type="button" onClick={logout} className="rounded-md px-2 py-1 text-sm hover:underline">
            Sign out
          </button>
        </header>
        <main id="main" className="p-4">
          <Suspense fallback={<p role="status">Loading…</p>}>{page}</Suspense>
        </main>
      </div>
    </div>
  );
}
