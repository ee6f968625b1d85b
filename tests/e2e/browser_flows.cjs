// The web apps' end-to-end flows in Debian's Chromium, driven by playwright-core (no browser
// download), against the platform tests/e2e/conftest.py starts. Run by test_web_apps.py, which
// passes everything through the environment; each flow prints PASS or throws, and the first
// failure ends the run with its stack.
//
// Every main screen is saved in light and dark mode (SCREENSHOTS) and checked with axe-core:
// a serious or critical violation fails the run once the flows are through (all are listed).
//
// Nothing waits for time: each step waits for what the user would see, and data a page reads
// once when it opens (analytics, event log, dead letters) is first awaited through the API.
"use strict";

const fs = require("node:fs");
const path = require("node:path");
const { chromium } = require("playwright-core");

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const USER_APP = env("USER_APP_URL");
const ADMIN_APP = env("ADMIN_URL");
const GATEWAY = env("GATEWAY_URL");
const CONTROL = env("CONTROL_URL");
const SCREENSHOTS = env("SCREENSHOTS");
const AXE = env("AXE_PATH");
const PRODUCT = env("PRODUCT_NAME");
const SCARCE = { id: env("SCARCE_PRODUCT_ID"), name: env("SCARCE_PRODUCT_NAME") };
const WAIT = 30_000;
const DAY = 86_400_000;

const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const accessibilityReport = [];
const seriousViolations = [];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function api(method, route, body) {
  const response = await fetch(`${GATEWAY}${route}`, {
    method,
    headers: { Authorization: `Bearer ${env("ADMIN_TOKEN")}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  check(response.ok, `${method} ${route}: ${response.status} ${await response.clone().text()}`);
  return response.json();
}

/** `probe()` until it returns something truthy (polled, at most WAIT): data a page reads once. */
async function eventually(what, probe) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    const found = await probe();
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function newPage(browser, scheme = "light") {
  // Reduced motion: the charts draw at once (Recharts honours it), so screenshots are stable.
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: scheme, reducedMotion: "reduce" });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT);
  page.on("pageerror", (error) => console.log(`  page error: ${error.message}`));
  return page;
}

/** Screenshots in both colour schemes, each checked by axe-core. */
async function capture(page, name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.waitForFunction((dark) => document.documentElement.classList.contains("dark") === dark, scheme === "dark");
    await page.screenshot({ path: path.join(SCREENSHOTS, `${name}-${scheme}.png`), fullPage: true });
    if (!(await page.evaluate(() => "axe" in window))) await page.addScriptTag({ path: AXE });
    const violations = await page.evaluate(async () => {
      const result = await window.axe.run(document, { resultTypes: ["violations"] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")).slice(0, 5) }));
    });
    const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
    accessibilityReport.push({ screen: `${name}-${scheme}`, violations });
    if (serious.length) seriousViolations.push({ screen: `${name}-${scheme}`, violations: serious });
  }
  await page.emulateMedia({ colorScheme: "light" });
}

async function register(page, name) {
  const email = `${name.toLowerCase()}-${Date.now()}-${Math.floor(Math.random() * 1e6)}@example.com`;
  await page.goto(`${USER_APP}/#/register`);
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("button", { name: /Sign out/ }).waitFor();
  return email;
}

function addToCart(page, productName) {
  return page.getByRole("listitem").filter({ hasText: productName }).getByRole("button", { name: /Add to cart/ }).click();
}

async function placeOrder(page, productName) {
  await page.goto(`${USER_APP}/#/`);
  await addToCart(page, productName);
  await page.getByRole("link", { name: /^Cart \(1\)$/ }).click();
  await page.getByLabel("Recipient").fill("Ada Lovelace");
  await page.getByLabel("Address", { exact: true }).fill("1 Analytical Way");
  await page.getByLabel("City").fill("London");
  await page.getByLabel("Postal code").fill("N1 9GU");
  await page.getByLabel("Country code").fill("GB");
  await page.getByRole("button", { name: "Place order" }).click();
  await page.waitForURL(uuid);
  return page.url().match(uuid)[0];
}

const step = (page, status) => page.locator(`[data-step="${status}"][data-done="true"]`);
/** The texts of a table row's cells, once the row is shown. */
async function cells(row) {
  await row.waitFor();
  return (await row.locator("td").allTextContents()).map((text) => text.trim());
}
const isoDay = (time) => new Date(time).toISOString().slice(0, 10);

/** Analytics: the admin sets a date range and sees the orders the platform holds in it. */
async function analytics(admin) {
  // What the orders service holds (the fixture's warm-up order and the flows' orders) is what
  // the charts must show once the analytics projection has consumed their events.
  const { items: orders } = await api("GET", "/orders?limit=100");
  const byStatus = {};
  for (const o of orders) byStatus[o.status] = (byStatus[o.status] ?? 0) + 1;
  const earning = orders.filter((o) => ["CONFIRMED", "SHIPPED", "DELIVERED"].includes(o.status));
  const revenueCents = earning.reduce((sum, o) => sum + Math.round(Number(o.total) * 100), 0);
  // The day before the first order, up to today: the first day's bar is empty.
  const from = isoDay(Math.min(...orders.map((o) => Date.parse(o.createdAt))) - DAY);
  const to = isoDay(Date.now());
  const range = `from=${from}&to=${to}`;
  await eventually("the analytics projection to hold every order as it stands", async () => {
    const report = await api("GET", `/analytics/status-distribution?${range}`);
    const seen = Object.fromEntries(report.statuses.map((s) => [s.status, s.orders]));
    return JSON.stringify(seen, Object.keys(byStatus).sort()) === JSON.stringify(byStatus, Object.keys(byStatus).sort()) && report.total === orders.length;
  });

  await admin.getByRole("link", { name: "Analytics" }).click();
  await admin.getByRole("heading", { name: "Analytics" }).waitFor();
  await admin.getByLabel("From").fill(from);
  await admin.getByLabel("To").fill(to);
  const days = (Date.parse(to) - Date.parse(from)) / DAY + 1;
  const chart = admin.getByRole("img", { name: `Orders per day: ${orders.length} in all` });
  await chart.waitFor();
  const ticks = await eventually(`the orders chart to show ${days} days`, async () => {
    const shown = await chart.locator(".recharts-xAxis-tick-labels .recharts-cartesian-axis-tick-value").allTextContents();
    return shown.length === days && shown;
  });
  check(ticks[0] === from && ticks[ticks.length - 1] === to, `the chart's days are ${ticks}, not ${from} to ${to}`);
  check((await chart.locator(".recharts-bar-rectangle path").count()) > 0, "the orders chart draws no bars");
  const figure = async (name) => (await admin.locator(`[data-figure="${name}"] dd`).textContent())?.trim() ?? "";
  check((await figure("orders")).startsWith(`${orders.length} `), `orders: ${await figure("orders")}`);
  check((await figure("confirmedOrders")).startsWith(`${earning.length} `), `confirmed orders: ${await figure("confirmedOrders")}`);
  check((await figure("failedOrders")).startsWith(`${byStatus.FAILED ?? 0} `), `failed orders: ${await figure("failedOrders")}`);
  const revenue = await figure("revenue-EUR");
  check(revenue.replace(/[^0-9]/g, "") === String(revenueCents), `revenue ${revenue} is not ${revenueCents / 100} EUR`);
  const label = await admin.locator('div[role="img"][aria-label^="Status distribution: "]').getAttribute("aria-label");
  const shares = label.slice("Status distribution: ".length);
  for (const [status, count] of Object.entries(byStatus)) {
    check(shares.split(", ").includes(`${status} ${count}`), `the status chart says ${shares}, not ${status} ${count}`);
  }
  await admin.getByText("Live rates are unavailable").waitFor();
  await capture(admin, "admin-analytics");
  return `${orders.length} orders, ${revenue}, ${shares}`;
}

/** The event log: the admin finds an order's events, then one type of them. */
async function eventLog(admin, orderId) {
  const types = ["order.created", "order.confirmed", "order.shipped"];
  await eventually(`the event log to hold ${types} of the order`, async () => {
    const page = await api("GET", `/analytics/events?orderId=${orderId}`);
    return types.every((type) => page.items.some((e) => e.type === type));
  });
  await admin.getByRole("link", { name: "Event log" }).click();
  await admin.getByRole("heading", { name: "Event log" }).waitFor();
  await admin.locator("li[data-event-type]").first().waitFor();
  await admin.getByLabel("Order id").fill(orderId);
  for (const type of types) await admin.locator(`li[data-order="${orderId}"][data-event-type="${type}"]`).waitFor();
  await admin.waitForFunction((id) => [...document.querySelectorAll("li[data-event-type]")].every((li) => li.dataset.order === id), orderId);
  await capture(admin, "admin-events");
  await admin.getByLabel("Event type").fill("order.shipped");
  await admin.waitForFunction(() => [...document.querySelectorAll("li[data-event-type]")].map((li) => li.dataset.eventType).join() === "order.shipped");
  const shipped = admin.locator(`li[data-order="${orderId}"][data-event-type="order.shipped"]`);
  await shipped.getByRole("button").click();
  const data = await shipped.locator("pre").textContent();
  check(data.includes(orderId) && data.includes('"SHIPPED"'), `the shipped event's data: ${data}`);
}

/** The broker monitor: topics with their messages, consumer groups with their lag, queues. */
async function monitor(admin) {
  await admin.getByRole("link", { name: "Kafka & RabbitMQ" }).click();
  await admin.getByRole("heading", { name: "Kafka & RabbitMQ" }).waitFor();
  const [topic, messages] = await cells(admin.locator('tr[data-topic="order.created"]'));
  check(topic === "order.created" && Number(messages) > 0, `order.created holds ${messages} messages`);
  const [group, state, lag, topics] = await cells(admin.locator('tr[data-group^="web-analytics-"]').first());
  check(state === "stable" && /^\d+$/.test(lag) && topics.includes("order.created ("), `analytics' group: ${group} ${state} lag ${lag} on ${topics}`);
  const queue = admin.locator('tr[data-queue="push.notifications"]');
  await admin.waitForFunction(() => document.querySelector('tr[data-queue="push.notifications"] td:nth-child(4)')?.textContent === "1");
  const [, ready, unacked, consumers] = await cells(queue);
  check(/^\d+$/.test(ready) && /^\d+$/.test(unacked), `push.notifications: ready ${ready}, unacked ${unacked}`);
  await admin.locator('tr[data-queue="notifications.dlq"]').waitFor();
  await capture(admin, "admin-monitor");
  return `order.created ${messages} messages, analytics lag ${lag}, push.notifications ready ${ready} with ${consumers} consumer`;
}

/** The push of `eventType` for `orderId`, dead-lettered by the refusing push provider. */
function deadLetter(orderId, eventType) {
  return eventually(`the ${eventType} push of ${orderId} in the dead letters`, async () => {
    const { items } = await api("GET", `/notifications/dlq?orderId=${orderId}`);
    return items.find((letter) => letter.channel === "push" && letter.eventType === eventType);
  });
}

/** The delivery's status in the order's delivery trail (admin API). */
async function deliveryStatus(orderId, deliveryId) {
  const trail = await api("GET", `/notifications/orders/${orderId}`);
  const delivery = trail.notifications.flatMap((n) => n.deliveries).find((d) => d.id === deliveryId);
  return delivery?.status;
}

/** The dead-letter browser: one dead letter replayed (and delivered), another discarded. */
async function deadLetters(admin, replayOrder, discardOrder) {
  const toReplay = await deadLetter(replayOrder, "order.shipped");
  const toDiscard = await deadLetter(discardOrder, "order.shipped");
  await admin.getByRole("link", { name: "Dead letters" }).click();
  await admin.getByRole("heading", { name: "Dead letters" }).waitFor();
  await admin.locator("li[data-dead-letter]").first().waitFor();
  await capture(admin, "admin-dead-letters");

  const status = admin.getByLabel("Status");
  const row = (letter) => admin.locator(`li[data-dead-letter="${letter.id}"]`);
  await admin.getByLabel("Order id").fill(replayOrder);
  await admin.waitForFunction((id) => [...document.querySelectorAll("li[data-dead-letter]")].every((li) => li.dataset.order === id), replayOrder);
  check(/400/.test(await row(toReplay).textContent()), "the dead letter does not show the provider's refusal");
  await fetch(`${CONTROL}/push-provider/accept`, { method: "POST" });
  await row(toReplay).getByRole("button", { name: /^Replay/ }).click();
  await admin.getByText("Sent again.").waitFor();
  await row(toReplay).waitFor({ state: "detached" });
  await status.selectOption("replayed");
  await row(toReplay).waitFor();
  await eventually("the replayed push to be delivered", async () => (await deliveryStatus(replayOrder, toReplay.deliveryId)) === "sent");

  await status.selectOption("dead");
  await admin.getByLabel("Order id").fill(discardOrder);
  await row(toDiscard).getByRole("button", { name: /^Discard/ }).click();
  await admin.getByText("Discarded.").waitFor();
  await row(toDiscard).waitFor({ state: "detached" });
  await status.selectOption("discarded");
  await row(toDiscard).waitFor();
  check((await deliveryStatus(discardOrder, toDiscard.deliveryId)) === "discarded", "the discarded push's delivery is not discarded");
  const waiting = (await api("GET", "/notifications/dlq?status=dead&limit=100")).items.map((letter) => letter.id);
  check(!waiting.includes(toReplay.id) && !waiting.includes(toDiscard.id), "a handled dead letter still waits for a decision");
}

async function main() {
  fs.mkdirSync(SCREENSHOTS, { recursive: true });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
  let order;
  let customer;
  try {
    // -- an admin watches the orders table while a customer registers and orders ---------------
    const admin = await newPage(browser);
    await admin.goto(ADMIN_APP);
    await capture(admin, "admin-login");
    await admin.getByLabel("Email").fill(env("ADMIN_EMAIL"));
    await admin.getByLabel("Password").fill(env("ADMIN_PASSWORD"));
    await admin.getByRole("button", { name: "Sign in" }).click();
    await admin.getByRole("heading", { name: "Orders" }).waitFor();
    await admin.locator('[data-live="online"]').waitFor();

    customer = await newPage(browser);
    await register(customer, "Ada");
    await customer.getByRole("heading", { name: "Products" }).waitFor();
    await capture(customer, "user-catalogue");
    order = await placeOrder(customer, PRODUCT);
    await customer.evaluate(() => {
      window.sameDocument = true;
    });
    await step(customer, "CONFIRMED").waitFor();
    check(await customer.evaluate(() => window.sameDocument === true), "the tracker reloaded the page");
    await capture(customer, "user-tracker");
    console.log("PASS a customer registers, orders, and sees CONFIRMED without reloading");

    const row = admin.locator(`tr[data-order="${order}"]`);
    await admin.locator(`tr[data-order="${order}"][data-status="CONFIRMED"]`).waitFor();
    await capture(admin, "admin-orders");
    const allowed = (await row.getByRole("button").allTextContents()).map((text) => text.split(" order ")[0]);
    check(JSON.stringify(allowed) === JSON.stringify(["Ship", "Cancel"]), `a CONFIRMED order offers ${allowed}`);
    await row.getByRole("button", { name: "Ship" }).click();
    await admin.locator(`tr[data-order="${order}"][data-status="SHIPPED"]`).waitFor();
    console.log("PASS the admin sees the new order appear live and ships it");

    await step(customer, "SHIPPED").waitFor();
    await customer.getByRole("link", { name: /Notifications \(\d+ unread\)/ }).click();
    await customer.locator('[data-event="order.shipped"][data-read="false"]').first().waitFor();
    await capture(customer, "user-notifications");
    await customer.getByRole("button", { name: "Mark all read" }).click();
    await customer.getByRole("link", { name: /^Notifications$/ }).waitFor();
    console.log("PASS the customer sees SHIPPED and a new notification, and marks it read");

    await customer.goto(`${USER_APP}/#/orders`);
    await customer.locator(`tr[data-order="${order}"]`).waitFor();
    await capture(customer, "user-orders");
    await admin.getByRole("link", { name: "Products & stock" }).click();
    await admin.getByRole("heading", { name: "Products & stock" }).waitFor();
    await admin.getByText(PRODUCT).first().waitFor();
    await capture(admin, "admin-products");

    // -- out of stock: the order fails with inventory's reason -----------------------------------
    await customer.goto(`${USER_APP}/#/`);
    await addToCart(customer, SCARCE.name);
    await api("PUT", `/inventory/stock/${SCARCE.id}`, { onHand: 0, reason: "sold out elsewhere" });
    await customer.getByRole("link", { name: /^Cart \(1\)$/ }).click();
    await customer.getByRole("button", { name: "Place order" }).click();
    await customer.waitForURL(uuid);
    await step(customer, "FAILED").waitFor();
    const alert = await customer.getByRole("alert").first().textContent();
    check(/could not be completed: some items are no longer in stock/.test(alert ?? ""), `the failure is not in plain words: ${alert}`);
    console.log(`PASS an out-of-stock order shows FAILED with the reason (${alert})`);

    // -- another customer cannot see the first one's order ---------------------------------------
    const stranger = await newPage(browser);
    await register(stranger, "Eve");
    await stranger.goto(`${USER_APP}/#/orders/${order}`);
    await stranger.getByRole("heading", { name: "Order not found" }).waitFor();
    check((await stranger.getByText("Ada Lovelace").count()) === 0, "the stranger sees the order");
    console.log("PASS a user cannot see another user's order");

    // -- the connection drops, the order moves on, the tracker catches up ------------------------
    const second = await placeOrder(customer, PRODUCT);
    await step(customer, "CONFIRMED").waitFor();
    await fetch(`${CONTROL}/cut`, { method: "POST" });
    await customer.locator('[data-live="online"]').waitFor({ state: "detached" });
    await api("PUT", `/orders/${second}/status`, { status: "SHIPPED" });
    await customer.waitForTimeout(1500);
    check((await step(customer, "SHIPPED").count()) === 0, "a push arrived through a cut connection");
    await fetch(`${CONTROL}/restore`, { method: "POST" });
    await step(customer, "SHIPPED").waitFor();
    console.log("PASS the connection is cut and restored, and the tracker catches up (order.sync)");

    // -- a phone-sized screen ------------------------------------------------------------------------
    await customer.setViewportSize({ width: 390, height: 844 });
    await customer.goto(`${USER_APP}/#/orders/${second}`);
    await step(customer, "SHIPPED").waitFor();
    await capture(customer, "user-tracker-phone");

    // -- the admin's analytics, event log, broker monitor and dead letters -------------------------
    console.log(`PASS the admin sets a date range and sees the orders in the charts (${await analytics(admin)})`);
    await eventLog(admin, order);
    console.log("PASS the admin finds the order's events in the event log, and filters them by type");
    console.log(`PASS the admin sees the topics, consumer lag and queue depths (${await monitor(admin)})`);
    await deadLetters(admin, order, second);
    console.log("PASS the admin replays a dead-lettered push (delivered, gone from the queue) and discards another");

    // -- session.ended: signing out in another tab ends this tab's session too ---------------------
    await customer.locator('[data-live="online"]').waitFor();
    const otherTab = await customer.context().newPage();
    await otherTab.goto(`${USER_APP}/#/`);
    await otherTab.getByRole("button", { name: /Sign out/ }).click();
    await otherTab.getByRole("link", { name: "Sign in" }).waitFor();
    await customer.getByRole("button", { name: "Sign in" }).waitFor();
    await customer.locator("[data-live]").waitFor({ state: "detached" });
    console.log("PASS signing out in another tab ends the tracker's live session (session.ended) and shows the sign-in form");

    check(seriousViolations.length === 0, `axe found serious violations: ${JSON.stringify(seriousViolations, null, 2)}`);
    console.log("PASS every main screen, light and dark, has no serious accessibility violation");
  } catch (error) {
    // What each page showed when a step failed, beside the screenshots.
    for (const [index, page] of browser.contexts().flatMap((c) => c.pages()).entries()) {
      await page.screenshot({ path: path.join(SCREENSHOTS, `failure-${index}.png`), fullPage: true }).catch(() => undefined);
    }
    throw error;
  } finally {
    fs.writeFileSync(path.join(SCREENSHOTS, "accessibility.json"), JSON.stringify(accessibilityReport, null, 2));
    await browser.close();
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error.stack || String(error));
    process.exit(1);
  },
);
