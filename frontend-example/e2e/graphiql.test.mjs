// GraphiQL as a new user meets it: opened from the link the server prints on first start, in
// headless Chromium with every request outside the service blocked (no CDN, no internet). The
// schema shows in the docs explorer, field names complete, a query runs with the demo token and
// a subscription streams over /graphql/ws, all under the page's Content-Security-Policy.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { GOOD_API_KEY, startFakeProvider } from "./fake-provider.mjs";
import { startPlugboard } from "./plugboard.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const RESULTS = path.join(ROOT, "test-results", "graphiql");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

describe("GraphiQL", { timeout: 120_000 }, () => {
  let provider, plugboard, browser, page, tempDir;
  const blocked = [];
  const problems = [];

  before(async () => {
    fs.rmSync(RESULTS, { recursive: true, force: true });
    fs.mkdirSync(RESULTS, { recursive: true });
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "plugboard-graphiql-"));
    provider = await startFakeProvider();
    plugboard = await startPlugboard({
      dataDir: path.join(tempDir, "data"),
      providerUrl: provider.url,
      logFile: path.join(RESULTS, "plugboard.log"),
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
    const context = await browser.newContext();
    // Only the service itself answers; everything else fails as it would offline.
    await context.route("**/*", (route) => {
      const url = route.request().url();
      if (url.startsWith(`${plugboard.url}/`)) return route.continue();
      blocked.push(url);
      return route.abort("internetdisconnected");
    });
    page = await context.newPage();
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    page.on("pageerror", (error) => problems.push(String(error)));
  });

  after(async () => {
    await browser?.close();
    await plugboard?.stop();
    await provider?.close();
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  });

  const screenshot = (name) => page.screenshot({ path: path.join(RESULTS, `${name}.png`), fullPage: true });

  it("opens from the printed link with the demo token in its headers", async () => {
    await page.goto(`${plugboard.url}/graphql#token=${plugboard.token}`);
    await page.locator(".graphiql-container").waitFor();
    await page.getByText("query Start").first().waitFor();
    assert.ok(!page.url().includes(plugboard.token), `the token left the address bar: ${page.url()}`);
    await page.getByRole("button", { name: /headers/i }).first().click();
    await page.locator(".graphiql-editor-tool").getByText(plugboard.token.slice(0, 12)).first().waitFor();
    await screenshot("1-opened");
  });

  it("shows the schema in the docs explorer", async () => {
    await page.getByRole("button", { name: /documentation explorer/i }).click();
    const docs = page.locator(".graphiql-doc-explorer");
    await docs.getByText("Query", { exact: true }).first().click();
    for (const field of ["viewer", "team", "apps", "connection"]) {
      await docs.getByText(field, { exact: true }).first().waitFor();
    }
    await screenshot("2-docs");
  });

  it("runs a query with the token", async () => {
    await page.getByRole("button", { name: /execute query/i }).click();
    const result = page.locator(".graphiql-response");
    await result.getByText("demo@plugboard.local").waitFor({ timeout: 15_000 });
    const text = await result.innerText();
    assert.match(text, /"name": "Demo"/);
    assert.doesNotMatch(text, /UNAUTHENTICATED|errors/);
    await screenshot("3-result");
  });

  /** Replaces the query editor's text (CodeMirror keeps its instance on its element). */
  const setQuery = (text) =>
    page.evaluate((value) => {
      const editor = document.querySelector(".graphiql-query-editor .CodeMirror").CodeMirror;
      editor.setValue(value);
      editor.focus();
      editor.setCursor(editor.lineCount(), 0);
    }, text);

  it("completes field names from the schema", async () => {
    await setQuery("{ vie");
    await page.keyboard.type("w");
    await page.locator(".CodeMirror-hints").getByText("viewer", { exact: true }).waitFor();
    await screenshot("4-completion");
    await page.keyboard.press("Escape");
  });

  it("runs subscriptions over /graphql/ws with the headers' token", async () => {
    await setQuery(`subscription { connectionEvents(teamId: "${plugboard.teamId}") { kind connectionId } }`);
    await page.getByRole("button", { name: /execute query/i }).click();
    // Give the socket a moment to subscribe before the event happens.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const created = await plugboard.graphql(
      `mutation($input: CreateConnectionInput!) { createConnection(input: $input) { connection { id } } }`,
      { input: { teamId: plugboard.teamId, app: "test-crm", name: "From GraphiQL", fields: { api_key: GOOD_API_KEY } } },
    );
    const result = page.locator(".graphiql-response");
    await result.getByText(created.createConnection.connection.id).first().waitFor({ timeout: 15_000 });
    assert.match(await result.innerText(), /"kind": "(CREATED|STATUS_CHANGED)"/);
    await screenshot("5-subscription");
  });

  it("needed nothing from outside the service and broke no policy", () => {
    assert.deepEqual(blocked, [], "requests outside the service");
    const policy = problems.filter((text) => /Content.Security.Policy|Refused to/i.test(text));
    assert.deepEqual(policy, [], "Content-Security-Policy violations");
  });
});
