// The web apps' end-to-end flows in Debian's Chromium, driven by playwright-core (no browser
// download), against the platform tests/e2e/conftest.py starts. Run by test_web_apps.py, which
// passes everything through the environment; each flow prints PASS or throws, and the first
// failure ends the run with its stack.
//
// Every main screen is saved in light and dark mode (SCREENSHOTS) and checked with axe-core:
// a serious or critical violation fails the run once the flows are through (all are listed).
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
const LINK = env("LINK_CONTROL_URL");
const SCREENSHOTS = env("SCREENSHOTS");
const AXE = env("AXE_PATH");
const PRODUCT = env("PRODUCT_NAME");
const SCARCE = { id: env("SCARCE_PRODUCT_ID"), name: env("SCARCE_PRODUCT_NAME") };
const WAIT = 30_000;

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

async function newPage(browser, scheme = "light") {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, colorScheme: scheme });
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
    await fetch(`${LINK}/cut`, { method: "POST" });
    await customer.locator('[data-live="online"]').waitFor({ state: "detached" });
    await api("PUT", `/orders/${second}/status`, { status: "SHIPPED" });
    await customer.waitForTimeout(1500);
    check((await step(customer, "SHIPPED").count()) === 0, "a push arrived through a cut connection");
    await fetch(`${LINK}/restore`, { method: "POST" });
    await step(customer, "SHIPPED").waitFor();
    console.log("PASS the connection is cut and restored, and the tracker catches up (order.sync)");

    // -- a phone-sized screen ------------------------------------------------------------------------
    await customer.setViewportSize({ width: 390, height: 844 });
    await customer.goto(`${USER_APP}/#/orders/${second}`);
    await step(customer, "SHIPPED").waitFor();
    await capture(customer, "user-tracker-phone");
    check(seriousViolations.length === 0, `axe found serious violations: ${JSON.stringify(seriousViolations, null, 2)}`);
    console.log("PASS every main screen, light and dark, has no serious accessibility violation");
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
