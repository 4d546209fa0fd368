// The Connections page end to end: the built page in headless Chromium, the real Plugboard
// server on SQLite, and a fake provider, walked through create, verify, edit, OAuth consent,
// reauthorization and delete. Screenshots of every step land in test-results/.
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { preview } from "vite";
import { GOOD_API_KEY, OAUTH_ACCOUNT, startFakeProvider } from "./fake-provider.mjs";
import { freePort, startPlugboard } from "./plugboard.mjs";

const ROOT = path.resolve(import.meta.dirname, "..");
const RESULTS = path.join(ROOT, "test-results");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

describe("the Connections page", { timeout: 180_000 }, () => {
  let provider, plugboard, site, browser, page, tempDir;
  let shot = 0;

  const screenshot = (name) =>
    page.screenshot({
      path: path.join(RESULTS, `${String((shot += 1)).padStart(2, "0")}-${name}.png`),
      fullPage: true,
    });
  const row = (name) => page.getByRole("row", { name, exact: true });
  const badge = (name, label) =>
    row(name)
      .locator(".badge", { hasText: new RegExp(`^${label}$`) })
      .waitFor();

  /** Clicks what opens the consent popup and waits until the popup has reported and closed. */
  const consentInPopup = async (button) => {
    const [popup] = await Promise.all([page.waitForEvent("popup"), button.click()]);
    if (!popup.isClosed()) await popup.waitForEvent("close");
  };

  /** Runs a step; a failing one leaves a screenshot of what the page showed. */
  const step = (name, body) =>
    it(name, async () => {
      try {
        await body();
        await screenshot(name.replace(/\W+/g, "-"));
      } catch (error) {
        await screenshot(`FAILED-${name.replace(/\W+/g, "-")}`).catch(() => {});
        throw error;
      }
    });

  /** Picks an app in the catalog search of a new connection and names the connection. */
  const startCreate = async (search, appName, connectionName) => {
    await page.getByRole("button", { name: "New connection" }).click();
    const panel = page.getByRole("region", { name: "New connection" });
    await panel.getByLabel("Search apps").fill(search);
    await panel.getByRole("button", { name: appName, exact: true }).click();
    await panel.getByLabel("Name").fill(connectionName);
    return panel;
  };

  const connectionNamed = async (name) => {
    const listed = await plugboard.graphql(
      `query($teamId: ID!, $search: String) { team(id: $teamId) { connections(search: $search) { edges { node { id name } } } } }`,
      { teamId: plugboard.teamId, search: name },
    );
    return listed.team.connections.edges.map((edge) => edge.node).find((node) => node.name === name);
  };

  before(async () => {
    fs.rmSync(RESULTS, { recursive: true, force: true });
    fs.mkdirSync(RESULTS, { recursive: true });
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), "plugboard-e2e-"));
    provider = await startFakeProvider();
    plugboard = await startPlugboard({
      dataDir: path.join(tempDir, "data"),
      providerUrl: provider.url,
      logFile: path.join(RESULTS, "plugboard.log"),
    });
    site = await preview({
      root: ROOT,
      logLevel: "warn",
      preview: { host: "127.0.0.1", port: await freePort(), strictPort: true, open: false },
    });
    browser = await chromium.launchPersistentContext(path.join(tempDir, "chromium"), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    browser.setDefaultTimeout(15_000);
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on("pageerror", (error) => console.error("page error:", error));
  });

  after(async () => {
    await browser?.close();
    await site?.close();
    await plugboard?.stop();
    await provider?.close();
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  });

  step("enter the server URL and token", async () => {
    await page.goto(site.resolvedUrls.local[0]);
    await page.getByLabel("Server URL").fill(plugboard.url);
    await page.getByLabel("Token").fill(plugboard.token);
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.getByText("No connections match.").waitFor();
    await page.reload();
    await page.getByText("No connections match.").waitFor();
    assert.equal(await page.getByLabel("Token").count(), 0, "the token is kept across reloads");
  });

  step("create an API-key connection", async () => {
    const panel = await startCreate("crm", "Test CRM", "CRM main");
    assert.equal(await panel.getByLabel("API key").getAttribute("type"), "password");
    assert.equal(await panel.getByLabel("Region").inputValue(), "eu", "defaults fill the form");
    await panel.getByLabel("API key").fill(GOOD_API_KEY);
    await panel.getByRole("button", { name: "Save" }).click();
    await panel.waitFor({ state: "detached" });
    await badge("CRM main", "Active");
  });

  step("verify it", async () => {
    const crm = row("CRM main");
    await crm.getByRole("button", { name: "Verify" }).click();
    await crm.getByRole("button", { name: "Verifying..." }).waitFor();
    await screenshot("verifying");
    await crm.getByText("✓ Verified").waitFor();
    await crm.getByRole("button", { name: "Verify" }).waitFor();
  });

  step("edit it with the secret entered again", async () => {
    await row("CRM main").getByRole("button", { name: "Edit" }).click();
    let panel = page.getByRole("region", { name: "Edit connection" });
    await panel.getByLabel("Name").fill("Discarded name");
    await panel.getByRole("button", { name: "Close" }).click();
    await row("CRM main").waitFor();

    await row("CRM main").getByRole("button", { name: "Edit" }).click();
    panel = page.getByRole("region", { name: "Edit connection" });
    assert.equal(await panel.getByLabel("Name").inputValue(), "CRM main", "Close kept the original");
    assert.equal(await panel.getByLabel("Region").inputValue(), "eu", "non-secret fields are prefilled");
    const secret = panel.getByLabel("API key");
    assert.equal(await secret.inputValue(), "", "secrets are not sent back");
    assert.equal(await secret.evaluate((input) => input.required), true, "secrets are required again");
    await panel.getByLabel("Name").fill("CRM renamed");
    await panel.getByLabel("Region").fill("us");
    await secret.fill(GOOD_API_KEY);
    await screenshot("edit-form");
    await panel.getByRole("button", { name: "Save" }).click();
    await panel.waitFor({ state: "detached" });
    await badge("CRM renamed", "Active");
  });

  step("show an API error next to the control that caused it", async () => {
    await row("CRM renamed").getByRole("button", { name: "Edit" }).click();
    const panel = page.getByRole("region", { name: "Edit connection" });
    await panel.getByLabel("API key").fill(GOOD_API_KEY);
    // Someone else edits the connection while the form is open.
    const { id } = await connectionNamed("CRM renamed");
    await plugboard.graphql(
      `mutation($id: ID!, $input: EditConnectionInput!) { editConnection(id: $id, input: $input) { connection { version } } }`,
      { id, input: { fields: { region: "us", api_key: GOOD_API_KEY } } },
    );
    await panel.getByRole("button", { name: "Save" }).click();
    await panel.getByRole("alert").getByText("changed by someone else").waitFor();
    await screenshot("conflict");
    await panel.getByRole("button", { name: "Close" }).click();
  });

  step("create an OAuth connection through the consent popup", async () => {
    const panel = await startCreate("oauth", "Test OAuth", "Records");
    await consentInPopup(panel.getByRole("button", { name: "Save" }));
    await panel.waitFor({ state: "detached" });
    await badge("Records", "Active");
    await row("Records").getByText(OAUTH_ACCOUNT, { exact: true }).waitFor();

    await page.getByLabel("App").selectOption({ label: "Test OAuth" });
    await row("CRM renamed").waitFor({ state: "detached" });
    await screenshot("filtered-by-app");
    await page.getByLabel("App").selectOption({ label: "All apps" });
    await row("CRM renamed").waitFor();
  });

  step("reauthorize it", async () => {
    provider.revokeAll();
    await row("Records").getByRole("button", { name: "Verify" }).click();
    await badge("Records", "Needs reauthorization");
    await page.getByLabel("Status").selectOption({ label: "Needs reauthorization" });
    await row("CRM renamed").waitFor({ state: "detached" });
    await screenshot("needs-reauthorization");
    await page.getByLabel("Status").selectOption({ label: "All statuses" });
    await consentInPopup(row("Records").getByRole("button", { name: "Reauthorize" }));
    await badge("Records", "Active");
  });

  step("delete with a second click to confirm", async () => {
    const records = row("Records");
    await records.getByRole("button", { name: "Delete" }).click();
    const confirm = records.getByRole("button", { name: "Confirm delete" });
    assert.match(await confirm.getAttribute("class"), /danger/, "the button turns red");
    await screenshot("confirm-delete");
    await confirm.click();
    await records.waitFor({ state: "detached" });
  });

  step("delete a connection in use after the extra confirmation", async () => {
    const { id: connectionId } = await connectionNamed("CRM renamed");
    await plugboard.graphql(
      `mutation($input: CreateFlowInput!) { createFlow(input: $input) { flow { id name status } } }`,
      {
        input: {
          teamId: plugboard.teamId,
          name: "Nightly contact sync",
          status: "ACTIVE",
          modules: [{ key: "contacts", app: "test-crm", module: "list-contacts", connectionId }],
        },
      },
    );
    const crm = row("CRM renamed");
    await crm.getByRole("button", { name: "Delete" }).click();
    await crm.getByRole("button", { name: "Confirm delete" }).click();
    await crm.getByText("Nightly contact sync").waitFor();
    await screenshot("in-use");
    await crm.getByRole("button", { name: "Delete anyway" }).click();
    await crm.waitFor({ state: "detached" });
    await page.getByText("No connections match.").waitFor();
  });
});
