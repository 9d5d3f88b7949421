// The widget end to end in headless Chromium (Debian's, driven by playwright-core): load the demo
// page from a local stack, send a message, see the echo agent's reply, reload and see the
// conversation resume, send again. Exits non-zero on any failure; saves screenshots.
//
//   node widget_e2e.mjs <stack URL> <artifacts folder> <allowed site URL> <denied site URL>
//
// The two sites are pages of other origins that embed the widget with its one tag: the first
// origin is allowed (the widget talks to the API across origins: preflights, CORS, a cross-origin
// EventSource), the second is not (the widget gets no session).
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [base, artifacts, allowedSite, deniedSite] = process.argv.slice(2);
if (!base || !artifacts || !allowedSite || !deniedSite) {
  console.error("usage: node widget_e2e.mjs <stack URL> <artifacts folder> <allowed site URL> <denied site URL>");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });
const executablePath = process.env.HOOKGATE_CHROMIUM || "/usr/bin/chromium";
// The machine has no network: without these Chromium waits on connections it will never get.
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const userDataDir = mkdtempSync(join(tmpdir(), "hookgate-chromium-"));
const problems = [];
let context;
const step = (what) => console.log(`[e2e] ${what}`);
// What the browser saw of the API, printed when a step fails: the stream's and the messages'
// answers that were not 2xx, and each stream window's status, so a failure says where it stopped.
const traffic = [];
const watch = (p, name) => p.on("response", (r) => {
  const u = new URL(r.url());
  if (u.pathname.startsWith("/v1/web/") && (r.status() >= 300 || u.pathname !== "/v1/web/stream")) {
    traffic.push(`${new Date().toISOString()} ${name} ${r.request().method()} ${u.pathname} ${r.status()}`);
  }
});
// A reply waits on the worker and the agent: on a 2-core machine running the whole suite, under
// load from other tests' bursts, it can take longer than a page action's 20 s.
const replyTimeout = 60000;

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath, headless: true, args, viewport: { width: 1024, height: 720 }, timeout: 30000,
  });
  const page = context.pages()[0] || (await context.newPage());
  page.setDefaultTimeout(20000);
  watch(page, "demo");
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/Failed to load resource: net::ERR_(EMPTY_RESPONSE|CONNECTION)/.test(msg.text())) {
      problems.push(`console error: ${msg.text()}`);
    }
  });

  step(`open ${base}/widget/demo`);
  const resp = await page.goto(`${base}/widget/demo`);
  if (!resp || resp.status() !== 200) throw new Error(`demo page: HTTP ${resp && resp.status()}`);

  // Accessible by role and name: the conversation log and the labelled message box.
  const log = page.getByRole("log", { name: "Conversation" });
  const box = page.getByRole("textbox", { name: "Message" });
  await box.waitFor();
  await log.waitFor();
  await page.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith("hookgate-widget:")));
  const session = await page.evaluate(() => JSON.parse(Object.entries(localStorage).find(([k]) => k.startsWith("hookgate-widget:"))[1]));
  step(`session ${session.session_id}`);

  const first = "Hello! Is anyone there?"; // a fresh browser profile: a new session, an empty thread
  step("type a message and press Enter");
  await box.click();
  await page.keyboard.type(first);
  await page.keyboard.press("Enter");
  await log.locator("li.user", { hasText: first }).waitFor();
  step("wait for the agent's reply");
  await log.locator("li.assistant", { hasText: first }).waitFor({ timeout: replyTimeout });
  await log.locator("li.user.pending").waitFor({ state: "detached" });

  step("reload: the conversation resumes from the stream");
  await page.reload();
  await log.locator("li.user", { hasText: first }).waitFor();
  await log.locator("li.assistant", { hasText: first }).waitFor();
  const again = await page.evaluate(() => JSON.parse(Object.entries(localStorage).find(([k]) => k.startsWith("hookgate-widget:"))[1]));
  if (again.session_id !== session.session_id) throw new Error(`a reload opened another session (${again.session_id})`);

  step("send again after the reload, with the Send button");
  const second = "Great, the reply came back after the reload.";
  await box.fill(second);
  await page.getByRole("button", { name: "Send" }).click();
  await log.locator("li.assistant", { hasText: second }).waitFor({ timeout: replyTimeout });
  // Let a stream window or two go by (the browser reconnects after each): nothing repeats.
  await page.waitForTimeout(4000);
  for (const text of [first, second]) {
    for (const role of ["user", "assistant"]) {
      const n = await log.locator(`li.${role}`, { hasText: text }).count();
      if (n !== 1) throw new Error(`${n} ${role} bubbles say "${text}"`);
    }
  }
  await page.screenshot({ path: join(artifacts, "widget.png") });
  step(`screenshot ${join(artifacts, "widget.png")}`);

  step("keyboard: Escape closes the panel, the launcher reopens it with focus in the box");
  await box.focus();
  await page.keyboard.press("Escape");
  await box.waitFor({ state: "hidden" });
  const launcher = page.getByRole("button", { name: "Chat" });
  if ((await launcher.getAttribute("aria-expanded")) !== "false") throw new Error("launcher not collapsed");
  await page.keyboard.press("Enter"); // focus went back to the launcher
  await box.waitFor();
  if (!(await box.evaluate((el) => el.getRootNode().activeElement === el))) throw new Error("focus is not in the message box");

  step("on a phone the panel fills the screen");
  await page.setViewportSize({ width: 390, height: 844 });
  const panel = await page.getByRole("region", { name: "Hookgate demo" }).boundingBox();
  if (!panel || Math.round(panel.width) !== 390) throw new Error(`panel is ${panel && panel.width}px wide on a 390px screen`);
  await page.screenshot({ path: join(artifacts, "widget-phone.png") });

  step(`the widget on another, allowed origin: ${allowedSite}`);
  const shop = await context.newPage();
  shop.setDefaultTimeout(20000);
  watch(shop, "shop");
  shop.on("pageerror", (err) => problems.push(`shop page error: ${err.message}`));
  await shop.goto(allowedSite);
  const shopLog = shop.getByRole("log", { name: "Conversation" });
  const shopBox = shop.getByRole("textbox", { name: "Message" });
  await shop.waitForFunction(() => Object.keys(localStorage).some((k) => k.startsWith("hookgate-widget:")));
  const across = "Hello from another origin";
  await shopBox.fill(across);
  await shopBox.press("Enter");
  await shopLog.locator("li.assistant", { hasText: across }).waitFor({ timeout: replyTimeout });
  if ((await shopLog.locator("li").count()) !== 2) throw new Error("the shop's widget shows another session's messages");

  step(`the widget on an origin that is not allowed: ${deniedSite}`);
  const denied = await context.newPage();
  denied.setDefaultTimeout(20000);
  await denied.goto(deniedSite);
  await denied.getByRole("status").filter({ hasText: "Chat is unavailable" }).waitFor();
  if (!(await denied.getByRole("button", { name: "Send" }).isDisabled())) throw new Error("Send is enabled without a session");
  if (await denied.evaluate(() => Object.keys(localStorage).length)) throw new Error("a session was stored on a denied origin");

  if (problems.length) throw new Error(problems.join("\n"));
  step("ok");
} catch (err) {
  console.error(`[e2e] FAILED: ${err.message}`);
  if (problems.length) console.error(problems.join("\n"));
  try {
    const page = context && context.pages()[0];
    if (page) {
      const seen = await page.evaluate(() => {
        const host = [...document.querySelectorAll("*")].find((el) => el.shadowRoot) || document;
        const root = host.shadowRoot || document;
        const items = [...root.querySelectorAll("li")].map((li) => `${li.className}: ${li.textContent.trim()}`);
        const status = root.querySelector("[role=status]");
        return { items, status: status ? status.textContent : "" };
      });
      console.error(`[e2e] the conversation: ${JSON.stringify(seen.items)}; status: ${JSON.stringify(seen.status)}`);
    }
    console.error(`[e2e] the API's answers (non-2xx, and every message and session call):\n${traffic.join("\n")}`);
    if (page) await page.screenshot({ path: join(artifacts, "widget-failure.png") });
  } catch {}
  process.exitCode = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}
