// Drives headless chromium through the consoles of a demo cluster, as an operator would:
// log in on the master, see the master and its slaves with their lag, run a SELECT and see its
// rows; log in on a slave, run DDL and see the refusal; see every node from every console; watch
// the plots while a load runs and a slave is killed and restarted. Run by
// tests/console_browser.rs, which starts the cluster and passes (in the environment):
//   CHROMIUM          the browser binary (Debian's /usr/bin/chromium)
//   MASTER_CONSOLE    http://127.0.0.1:<port> of the master's console
//   SLAVE_CONSOLES    the slaves' console URLs, space-separated
//   CONSOLE_USER, CONSOLE_PASSWORD   a proxy user
//   SELECT_SQL        the SELECT to run on the master
//   EXPECT_ROWS       JSON array of the rows (arrays of strings) it must show
//   DDL_SQL           the DDL to run on a slave
//   NODES             JSON array of {name, address, console} of every node
//   SCREENSHOTS       optional directory for a PNG of each page
// What only the test can do (start the load, kill and restart a slave) it asks for with a line
// "@<what>" on stdout, and waits for the test's answer on stdin.
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

const answers = require("readline").createInterface({ input: process.stdin });
const pending = [];
answers.on("line", (line) => {
  const next = pending.shift();
  if (next) next(line);
});
// Asks the test for something and waits for its answer.
function ask(what) {
  return new Promise((resolve) => {
    pending.push(resolve);
    console.log(`@${what}`);
  });
}

// Polls `probe` (run in the page) until it returns a truthy value, which it returns.
async function until(page, what, probe, arg, timeout = 20000) {
  try {
    const handle = await page.waitForFunction(probe, arg, { timeout, polling: 250 });
    return await handle.jsonValue();
  } catch (e) {
    throw new Error(`timed out waiting for ${what}`);
  }
}

// Every node shows in `page`'s cluster table at its client address, with its console linked.
async function seesEveryNode(page, who) {
  const nodes = JSON.parse(env("NODES"));
  const seen = await until(
    page,
    `${who} to list every node`,
    (nodes) => {
      const rows = Array.from(document.querySelectorAll("#topology tbody tr"));
      const ok = nodes.every((n) =>
        rows.some((r) => {
          if (r.dataset.node !== n.name || r.querySelector(".address").textContent !== n.address) return false;
          const a = r.querySelector(".console a");
          return r.classList.contains("this") || (a !== null && a.getAttribute("href") === `http://${n.console}/`);
        }),
      );
      const boxes = document.querySelectorAll("#cluster-map g.node").length;
      return ok && boxes === nodes.length ? rows.map((r) => r.dataset.node) : null;
    },
    nodes,
  );
  check(true, `${who} shows every node with its client address and console link: ${JSON.stringify(seen)}`);
}

// The plots' numbers: each series' data attributes, by chart and series name.
async function series(page, chart) {
  return page.$$eval(`#chart-${chart} path[data-series]`, (paths) =>
    Object.fromEntries(paths.map((p) => [p.dataset.series, { ...p.dataset }])),
  );
}

async function shot(page, name) {
  const dir = process.env.SCREENSHOTS;
  if (dir) await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage: true });
}

// The master's plots while sysbench runs: they have points, statements/s rises, hovering shows a
// sample's time and values; slave1 killed and restarted leaves a gap in its lag series and two
// events.
async function plotsUnderLoad(page) {
  await until(page, "the plots to have 3 samples", () => Number(document.querySelector("#chart-statements svg").dataset.points) >= 3);
  const total = (s) => Object.values(s).reduce((sum, x) => sum + Number(x.now || 0), 0);
  const idle = total(await series(page, "statements"));
  check((await page.$$("#chart-statements path[data-series]")).length >= 1, `statements/s has its series, ${idle.toFixed(1)}/s before the load`);
  check((await ask("load")) === "loading", "the load started");
  const busy = await until(
    page,
    "statements/s to rise under the load",
    (idle) => {
      const now = Array.from(document.querySelectorAll("#chart-statements path[data-series]")).reduce((sum, p) => sum + Number(p.dataset.now || 0), 0);
      return now >= Math.max(20, 5 * idle) ? now : null;
    },
    idle,
  );
  check(true, `statements/s rose from ${idle.toFixed(1)} to ${busy.toFixed(1)} under the load`);
  // A few more seconds of it, for the screenshot.
  const seen = Number(await page.getAttribute("#chart-statements svg", "data-points"));
  await until(page, "more samples under the load", (seen) => Number(document.querySelector("#chart-statements svg").dataset.points) >= seen + 4, seen);
  const latency = await series(page, "latency");
  check(Number(latency.p99.points) > 0 && Number(latency.p99.now) > 0, `latency p99 plotted (${latency.p99.now} ms now)`);
  const clients = await series(page, "clients");
  check(Number(clients.clients.peak) >= 4, `clients plotted (peak ${clients.clients.peak})`);
  const lag = await series(page, "lag");
  check(lag.slave1 && lag.slave2 && Number(lag.slave1.points) > 0, `lag plotted per slave: ${Object.keys(lag).join(", ")}`);
  // Hovering shows the nearest sample's time and values.
  const plot = await page.$("#chart-statements svg");
  const box = await plot.boundingBox();
  await page.mouse.move(box.x + box.width * 0.97, box.y + box.height / 2);
  const tip = await page.waitForSelector("#chart-statements .tip", { timeout: 5000 });
  const tipText = await tip.textContent();
  check(/\d\d:\d\d:\d\d UTC/.test(tipText) && tipText.includes("total:"), `hovering shows a sample: ${tipText}`);
  await page.mouse.move(0, 0);
  await page.waitForSelector("#chart-statements .tip", { state: "detached", timeout: 5000 });
  await shot(page, "console-under-load");

  const before = await page.$$eval("#events tbody tr[data-id]", (trs) => Math.max(0, ...trs.map((tr) => Number(tr.dataset.id))));
  check((await ask("kill slave1")) === "killed", "slave1 stopped");
  await until(page, "slave1 to show as disconnected", () => {
    const row = document.querySelector('#topology tr[data-node="slave1"] .state');
    const lag = document.querySelector('#chart-lag path[data-series="slave1"]');
    return row && row.textContent === "disconnected" && lag && lag.dataset.now === "";
  });
  check(true, "the master shows slave1 disconnected, with no lag sampled while it is down");
  check((await ask("restart")) === "restarted", "slave1 started again");
  const gap = await until(page, "slave1's lag series to resume after a gap", () => {
    const lag = document.querySelector('#chart-lag path[data-series="slave1"]');
    return lag && Number(lag.dataset.gaps) >= 1 && lag.dataset.now !== "" ? lag.dataset.gaps : null;
  });
  check(true, `slave1's lag series shows ${gap} gap(s)`);
  const kinds = await until(
    page,
    "slave1's drop and link to show as events",
    (before) => {
      const rows = Array.from(document.querySelectorAll("#events tbody tr[data-id]"))
        .filter((tr) => Number(tr.dataset.id) > before && tr.textContent.includes("slave1"))
        .map((tr) => tr.dataset.kind)
        .reverse();
      const dots = Array.from(document.querySelectorAll("#timeline circle")).map((c) => c.dataset.kind);
      const dropped = rows.indexOf("slave_dropped");
      return dropped >= 0 && rows.indexOf("slave_linked", dropped) > dropped && dots.includes("slave_dropped") && dots.includes("slave_linked") ? rows : null;
    },
    before,
  );
  check(true, `the events show slave1 dropping, then linking again: ${JSON.stringify(kinds)}`);
  await shot(page, "console-after-restart");
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
  // A CSP violation fires this event in the page; collected before any page script runs.
  await context.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation", (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
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
      await seesEveryNode(slavePage, `slave${i + 1}'s console`);
      await shot(slavePage, `slave${i + 1}-ddl`);
      check((await slavePage.evaluate(() => window.__csp)).length === 0, `no CSP violations on slave${i + 1}'s console`);
      await slavePage.close();
      // Login state is per node: the master's session is still there.
      await page.reload();
      check((await page.$("#topology")) !== null, "the master's console session survives a slave login");
    }
    await page.goto(master + "/");
    await seesEveryNode(page, "the master's console");
    await plotsUnderLoad(page);
    check((await page.evaluate(() => window.__csp)).length === 0, "no CSP violations on the master's console");
    check(problems.length === 0, `no script or console errors ${JSON.stringify(problems)}`);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  console.log(`console browser test: all ${checks} checks passed`);
  answers.close();
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  console.error(`console browser test: failed after ${checks} checks`);
  process.exit(1);
});
