import { useCallback, useEffect, useRef, useState } from "react";
import {
  Link,
  LiveIndicator,
  NOTIFICATION_CREATED,
  NOTIFICATION_UNREAD,
  ThemeToggle,
  match,
  navigate,
  signOut,
  unwrap,
  useConnected,
  useLiveEvent,
  useLiveWhileSignedIn,
  usePath,
  useServices,
  useSession,
  useTheme,
} from "@realtimeorder/shared";
import { useCart } from "./cart";
import { pushedUnreadCount, unreadLabel } from "./notifications";
import { AuthPage } from "./pages/Auth";
import { CartPage } from "./pages/Cart";
import { CataloguePage } from "./pages/Catalogue";
import { NotificationsPage } from "./pages/Notifications";
import { OrdersPage } from "./pages/Orders";
import { PreferencesPage } from "./pages/Preferences";
import { TrackerPage } from "./pages/Tracker";

/**
 * The unread badge: read once signed in and again on every connection (what changed while the
 * socket was down), then kept by the count each `notification.created` carries and by
 * `notification.unread` pushes (after a read). An answer overtaken by a push while in flight is
 * dropped: the push is at least as new.
 */
function useUnreadCount(signedIn: boolean): [number, (count: number) => void] {
  const { api } = useServices();
  const [unread, setUnread] = useState(0);
  const pushes = useRef(0);
  const refresh = useCallback(() => {
    if (!signedIn) return;
    const seen = pushes.current;
    unwrap(api.GET("/notifications", { params: { query: { limit: 1 } } }))
      .then((page) => {
        if (pushes.current === seen) setUnread(page.unreadCount);
      })
      .catch(() => undefined);
  }, [api, signedIn]);
  useEffect(refresh, [refresh]);
  useConnected(refresh);
  const pushed = (payload: unknown) => {
    const count = pushedUnreadCount(payload);
    if (count === null) return;
    pushes.current += 1;
    setUnread(count);
  };
  useLiveEvent<unknown>(NOTIFICATION_UNREAD, pushed);
  useLiveEvent<unknown>(NOTIFICATION_CREATED, pushed);
  return [unread, setUnread];
}

export function App() {
  const services = useServices();
  const session = useSession();
  const path = usePath();
  const [theme, setTheme] = useTheme();
  const live = useLiveWhileSignedIn();
  const [cart, dispatchCart] = useCart();
  const [unread, setUnread] = useUnreadCount(session !== null);
  const logout = useCallback(() => {
    void signOut(services).then(() => navigate("/"));
  }, [services]);

  const nav = [
    { to: "/", label: "Shop", active: path === "/" },
    { to: "/cart", label: `Cart (${cart.reduce((n, l) => n + l.quantity, 0)})`, active: path === "/cart" },
    ...(session
      ? [
          { to: "/orders", label: "Orders", active: path.startsWith("/orders") },
          { to: "/notifications", label: unread ? `Notifications (${unreadLabel(unread)} unread)` : "Notifications", active: path === "/notifications" },
          { to: "/settings", label: "Settings", active: path === "/settings" },
        ]
      : []),
  ];

  let page;
  const order = match("/orders/:id", path);
  const needsSignIn = path.startsWith("/orders") || path === "/notifications" || path === "/settings" || path === "/checkout";
  if (path === "/login" || path === "/register" || (needsSignIn && !session)) {
    page = <AuthPage mode={path === "/register" ? "register" : "login"} next={needsSignIn ? path : "/"} />;
  } else if (order) {
    page = <TrackerPage orderId={order.id ?? ""} key={order.id} />;
  } else if (match("/orders", path)) {
    page = <OrdersPage />;
  } else if (path === "/cart" || path === "/checkout") {
    page = <CartPage lines={cart} dispatch={dispatchCart} />;
  } else if (path === "/notifications") {
    page = <NotificationsPage onUnread={setUnread} />;
  } else if (path === "/settings") {
    page = <PreferencesPage />;
  } else {
    page = <CataloguePage dispatch={dispatchCart} />;
  }

  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:left-2 focus:top-2 focus:rounded focus:bg-white focus:p-2 focus:text-black">
        Skip to content
      </a>
      <header className="border-b border-slate-200 bg-white dark:border-slate-800 dark:bg-slate-900">
        <div className="mx-auto flex max-w-5xl flex-wrap items-center gap-x-4 gap-y-2 px-4 py-3">
          <Link to="/" className="text-lg font-bold text-indigo-700 dark:text-indigo-300">
            RealTimeOrder
          </Link>
          <nav aria-label="Main" className="order-3 flex w-full flex-wrap gap-1 sm:order-none sm:w-auto">
            {nav.map((item) => (
              <Link
                key={item.to}
                to={item.to}
                aria-current={item.active ? "page" : undefined}
                className={`rounded-md px-3 py-1.5 text-sm font-medium ${item.active ? "bg-indigo-100 text-indigo-900 dark:bg-indigo-900 dark:text-indigo-100" : "text-slate-700 hover:bg-slate-100 dark:text-slate-200 dark:hover:bg-slate-800"}`}
              >
                {item.label}
              </Link>
            ))}
          </nav>
          <div className="ml-auto flex items-center gap-3">
            {session && <LiveIndicator state={live} />}
            <ThemeToggle choice={theme} onChange={setTheme} />
            {session ? (
              <button type="button" onClick={logout} className="rounded-md px-2 py-1 text-sm underline-offset-2 hover:underline">
                Sign out <span className="sr-only">{session.user.email}</span>
              </button>
            ) : (
              <Link to="/login" className="rounded-md px-2 py-1 text-sm font-medium hover:underline">
                Sign in
              </Link>
            )}
          </div>
        </div>
      </header>
      <main id="main" className="mx-auto max-w-5xl px-4 py-6">
        {page}
      </main>
    </div>
  );
}
