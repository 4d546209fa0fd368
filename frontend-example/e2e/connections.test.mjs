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

  /** Waits until the server has `email` in `role` in the demo team. */
  const expectRole = async (email, role) => {
    for (let tries = 0; tries < 50; tries += 1) {
      const { team } = await plugboard.graphql(`query($t: ID!) { team(id: $t) { members { email role } } }`, {
        t: plugboard.teamId,
      });
      if (team.members.find((m) => m.email === email)?.role === role) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`${email} did not become ${role}`);
  };

  /** The viewer kind a token gets, or the error code it is refused with. */
  const asToken = async (token) => {
    const response = await fetch(`${plugboard.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: "{ viewer { kind } }" }),
    });
    const body = await response.json();
    return body.data?.viewer?.kind ?? body.errors?.[0]?.extensions?.code;
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
    // The page calls the server directly: the server lets its origin in.
    const sitePort = await freePort();
    plugboard = await startPlugboard({
      dataDir: path.join(tempDir, "data"),
      providerUrl: provider.url,
      logFile: path.join(RESULTS, "plugboard.log"),
      env: { PLUGBOARD_CORS_ORIGINS: `http://127.0.0.1:${sitePort}` },
    });
    site = await preview({
      root: ROOT,
      logLevel: "warn",
      preview: { host: "127.0.0.1", port: sitePort, strictPort: true, open: false },
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
    await row("Records").getByLabel("Scopes").getByText("profile", { exact: true }).waitFor();

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

  step("show the flows that use a connection and its scope warnings", async () => {
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
    await page.reload();
    const crm = row("CRM renamed");
    await crm.getByText("Nightly contact sync").waitFor();
    await crm.getByRole("note").getByText("misses contacts.read").waitFor();
  });

  step("manage the team: members, roles and tokens", async () => {
    await page.getByRole("navigation", { name: "Views" }).getByRole("button", { name: "Team" }).click();
    const team = page.getByRole("region", { name: "Team" });
    await team.getByRole("row", { name: "demo@plugboard.local" }).waitFor();

    const add = page.getByRole("form", { name: "Add member" });
    await add.getByLabel("E-mail").fill("bob@example.com");
    await add.getByLabel("Role").selectOption("MEMBER");
    await add.getByRole("button", { name: "Add member" }).click();
    await team.getByRole("row", { name: "bob@example.com" }).waitFor();
    await page.getByLabel("Role of bob@example.com").selectOption("MONITORING");
    await expectRole("bob@example.com", "MONITORING");
    // The last ADMIN cannot step down.
    await page.getByLabel("Role of demo@plugboard.local").selectOption("MEMBER");
    await team.getByRole("alert").getByText("keeps at least one ADMIN").waitFor();
    await expectRole("demo@plugboard.local", "ADMIN");
    await screenshot("team-members");

    const tokens = page.getByRole("region", { name: "Service tokens" });
    await tokens.getByLabel("Token name").fill("nightly runner");
    await tokens.getByRole("button", { name: "Create token" }).click();
    const value = await tokens.getByRole("status").locator("code").innerText();
    assert.match(value, /^pbs_/, "the new token is shown once");
    await tokens.getByRole("row", { name: "nightly runner" }).waitFor();
    assert.equal(await asToken(value), "SERVICE", "and works");
    await screenshot("service-token");
    await tokens.getByRole("row", { name: "nightly runner" }).getByRole("button", { name: "Revoke" }).click();
    await tokens.getByRole("row", { name: "nightly runner" }).waitFor({ state: "detached" });
    assert.equal(await asToken(value), "UNAUTHENTICATED", "a revoked token is refused");

    await team.getByRole("row", { name: "bob@example.com" }).getByRole("button", { name: "Remove" }).click();
    await team.getByRole("row", { name: "bob@example.com" }).waitFor({ state: "detached" });
    await page.getByRole("navigation", { name: "Views" }).getByRole("button", { name: "Connections" }).click();
    await row("CRM renamed").waitFor();
  });

  step("delete a connection in use after the extra confirmation", async () => {
    const crm = row("CRM renamed");
    await crm.getByRole("button", { name: "Delete" }).click();
    await crm.getByRole("button", { name: "Confirm delete" }).click();
    // The refusal names the flows that would break; the row's own list of flows shows the same
    // name, so the test looks inside the refusal.
    await crm.getByRole("alert").getByText("Nightly contact sync (active)").waitFor();
    await screenshot("in-use");
    await crm.getByRole("button", { name: "Delete anyway" }).click();
    await crm.waitFor({ state: "detached" });
    await page.getByText("No connections match.").waitFor();
  });

  step("page through connections with cursors", async () => {
    for (let i = 1; i <= 12; i += 1) {
      await plugboard.graphql(
        `mutation($input: CreateConnectionInput!) { createConnection(input: $input) { connection { id } } }`,
        {
          input: {
            teamId: plugboard.teamId,
            app: "test-crm",
            name: `Bulk ${String(i).padStart(2, "0")}`,
            fields: { api_key: GOOD_API_KEY },
          },
        },
      );
    }
    await page.reload();
    await row("Bulk 10").waitFor();
    const pager = page.getByRole("navigation", { name: "Pages" });
    await pager.getByText("1–10 of 12").waitFor();
    assert.equal(await row("Bulk 11").count(), 0, "the first page holds ten");
    await pager.getByRole("button", { name: "Next page" }).click();
    await row("Bulk 12").waitFor();
    await row("Bulk 01").waitFor({ state: "detached" });
    await pager.getByText("11–12 of 12").waitFor();
    assert.equal(await pager.getByRole("button", { name: "Next page" }).isDisabled(), true);
    await screenshot("second-page");
    await pager.getByRole("button", { name: "Previous page" }).click();
    await row("Bulk 01").waitFor();
  });
});
