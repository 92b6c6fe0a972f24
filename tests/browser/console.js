// Drives headless chromium through the consoles of a demo cluster, as an operator would:
// log in on the master, see the master and its slaves with their lag, run a SELECT and see its
// rows; log in on a slave, run DDL and see the refusal. Run by tests/console_browser.rs, which
// starts the cluster and passes (in the environment):
//   CHROMIUM          the browser binary (Debian's /usr/bin/chromium)
//   MASTER_CONSOLE    http://127.0.0.1:<port> of the master's console
//   SLAVE_CONSOLES    the slaves' console URLs, space-separated
//   CONSOLE_USER, CONSOLE_PASSWORD   a proxy user
//   SELECT_SQL        the SELECT to run on the master
//   EXPECT_ROWS       JSON array of the rows (arrays of strings) it must show
//   DDL_SQL           the DDL to run on a slave
//   SCREENSHOTS       optional directory for a PNG of each page
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const env = (name) => {
  const v = process.env[name];
  if (v === undefined || v === "") throw new Error(`${name} is not set`);
  return v;
};

let checks = 0;
function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
  checks += 1;
  console.log(`ok - ${what}`);
}

async function login(page, base) {
  await page.goto(base + "/");
  check(new URL(page.url()).pathname === "/login", `${base}/ sends a browser without a session to /login`);
  await page.fill('input[name="user"]', env("CONSOLE_USER"));
  await page.fill('input[name="password"]', env("CONSOLE_PASSWORD"));
  await Promise.all([page.waitForURL(base + "/"), page.click('#login button[type="submit"]')]);
  await page.waitForSelector("#topology");
  check(true, `logged in on ${base}`);
}

async function topology(page) {
  return page.$$eval("#topology tbody tr", (rows) =>
    rows.map((r) => ({
      name: r.dataset.node,
      role: r.querySelector(".role").textContent,
      state: r.querySelector(".state").textContent,
      lag: r.querySelector(".lag").textContent,
      lagMs: r.querySelector(".lag-ms").textContent,
    })),
  );
}

async function run(page, sql) {
  await page.fill('#query textarea[name="sql"]', sql);
  await Promise.all([page.waitForLoadState("load"), page.click('#query button[type="submit"]')]);
  await page.waitForSelector("#result");
}

async function shot(page, name) {
  const dir = process.env.SCREENSHOTS;
  if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

async function main() {
  const master = env("MASTER_CONSOLE");
  const slaves = env("SLAVE_CONSOLES").split(" ").filter(Boolean);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "myrelay-chromium-"));
  // A fresh profile of our own: playwright passes it as --user-data-dir.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: env("CHROMIUM"),
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const problems = [];
  try {
    const page = context.pages()[0] || (await context.newPage());
    // A script error or a blocked resource (the page's CSP) would break the live view.
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console error: ${m.text()}`);
    });

    await login(page, master);
    const nodes = await topology(page);
    const names = nodes.map((n) => n.name);
    check(names[0] === "master" && nodes[0].role === "master", `master listed first: ${JSON.stringify(names)}`);
    const expectedSlaves = slaves.map((_, i) => `slave${i + 1}`);
    for (const name of expectedSlaves) {
      const n = nodes.find((x) => x.name === name);
      check(n !== undefined, `${name} listed on the master's console`);
      check(n.role === "slave" && n.state === "streaming", `${name} is a streaming slave (${n.state})`);
      check(/^\d+$/.test(n.lag) && /^\d+$/.test(n.lagMs), `${name} shows its lag (${n.lag} entries, ${n.lagMs} ms)`);
    }
    // The live view polls /api/status: the uptime counter moves without a reload.
    const uptime = await page.textContent('[data-counter="uptime"]');
    await page.waitForFunction(
      (before) => document.querySelector('[data-counter="uptime"]').textContent !== before,
      uptime,
      { timeout: 10000 },
    );
    const live = await topology(page);
    check(live.length === nodes.length, "the live view keeps every node");
    await shot(page, "master-console");

    await run(page, env("SELECT_SQL"));
    const rows = await page.$$eval("#result table.rows tbody tr", (trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll("td")).map((td) => td.textContent)),
    );
    const expected = JSON.parse(env("EXPECT_ROWS"));
    check(JSON.stringify(rows) === JSON.stringify(expected), `the SELECT shows its ${expected.length} rows: ${JSON.stringify(rows)}`);
    check((await page.$("#query-error")) === null, "no error shown for the SELECT");
    await shot(page, "master-select");

    for (const [i, slave] of slaves.entries()) {
      const slavePage = await context.newPage();
      slavePage.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      await login(slavePage, slave);
      const seen = await topology(slavePage);
      check(seen.some((n) => n.role === "master") && seen.some((n) => n.name === `slave${i + 1}`), `slave${i + 1} shows its master and itself`);
      await run(slavePage, env("DDL_SQL"));
      const code = await slavePage.getAttribute("#query-error", "data-code");
      const text = await slavePage.textContent("#query-error");
      check(code === "1290" && text.includes("ERROR 1290 (HY000)") && text.includes("master"), `slave${i + 1} refuses the DDL: ${text}`);
      const refusal = await slavePage.$$eval("#refusals tbody tr td", (tds) => tds.map((td) => td.textContent));
      check(refusal.includes(env("DDL_SQL")) && refusal.includes("1290"), "the refusal is listed with its statement and code");
      await shot(slavePage, `slave${i + 1}-ddl`);
      // Login state is per node: the master's session is still there.
      await page.reload();
      check((await page.$("#topology")) !== null, "the master's console session survives a slave login");
    }
    check(problems.length === 0, `no script or console errors ${JSON.stringify(problems)}`);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(`console browser test: all ${checks} checks passed`);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  console.error(`console browser test: failed after ${checks} checks`);
  process.exit(1);
});
