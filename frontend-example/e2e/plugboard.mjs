// The real Plugboard server for the end-to-end test: a catalog of two apps pointing at the fake
// provider, SQLite in a temporary directory, and the demo token it prints on first start.
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET } from "./fake-provider.mjs";

const REPO = path.resolve(import.meta.dirname, "../..");
const BINARY = path.join(REPO, "target/debug/plugboard");
const TOKEN_HEADING = "Its token (shown only now):";

export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts `plugboard serve` in `dataDir`; its output goes to `logFile`. `env` adds settings. */
export async function startPlugboard({ dataDir, providerUrl, logFile, env: extraEnv = {} }) {
  if (!fs.existsSync(BINARY)) {
    const built = spawnSync("cargo", ["build"], { cwd: REPO, stdio: "inherit" });
    if (built.status !== 0) throw new Error("cargo build failed");
  }
  const providersDir = path.join(dataDir, "providers");
  writeCatalog(providersDir, providerUrl);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Only what is set here configures the server, whatever the caller's environment holds.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("PLUGBOARD_") && key !== "DATABASE_URL"),
  );
  Object.assign(env, {
    PLUGBOARD_LISTEN: `127.0.0.1:${port}`,
    PLUGBOARD_DATA_DIR: dataDir,
    PLUGBOARD_PROVIDERS_DIR: providersDir,
    PLUGBOARD_EGRESS_ALLOW_PRIVATE: "true",
    PLUGBOARD_APP_TEST_OAUTH_CLIENT_ID: OAUTH_CLIENT_ID,
    PLUGBOARD_APP_TEST_OAUTH_CLIENT_SECRET: OAUTH_CLIENT_SECRET,
    // Once a year: no scheduled check runs in the middle of a step.
    PLUGBOARD_CHECK_CRON: "0 0 0 1 1 *",
    RUST_LOG: "warn",
    ...extraEnv,
  });
  const child = spawn(BINARY, ["serve"], { cwd: dataDir, env, stdio: ["ignore", "pipe", "pipe"] });
  const log = fs.createWriteStream(logFile);
  child.stdout.pipe(log);
  child.stderr.pipe(log);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const stop = () => {
    child.kill();
    return exited;
  };
  try {
    const token = await demoToken(child);
    await waitUntilHealthy(url);
    const plugboard = { url, token, stop, graphql: (query, variables) => graphql(url, token, query, variables) };
    const viewer = await plugboard.graphql("{ viewer { teams { id } } }");
    return { ...plugboard, teamId: viewer.viewer.teams[0].id };
  } catch (error) {
    await stop();
    throw new Error(`${error.message}; see ${logFile}`);
  }
}

/** The indented line after the heading, on the server's first start. */
function demoToken(child) {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error("plugboard printed no demo token within 60 s")), 60_000);
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const lines = output.split("\n");
      const at = lines.findIndex((line) => line.trim() === TOKEN_HEADING);
      // The token's line is complete once another line has begun after it.
      if (at >= 0 && at + 2 < lines.length) {
        clearTimeout(timer);
        resolve(lines[at + 1].trim());
      }
    });
    child.once("exit", (code) => reject(new Error(`plugboard exited with ${code} before printing a token`)));
  });
}

async function waitUntilHealthy(url) {
  for (let tries = 0; tries < 100; tries += 1) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`plugboard did not answer ${url}/healthz`);
}

async function graphql(url, token, query, variables = {}) {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** The two apps of the test catalog, shaped like `write_test_catalog` in tests/api/helpers.rs. */
function writeCatalog(dir, provider) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, "test-crm.toml"),
    `key = "test-crm"
name = "Test CRM"
description = "A CRM that exists only in the tests."
docs_url = "https://example.com/docs"
auth_type = "API_KEY"
api_base_url = "${provider}/crm"

[[fields]]
key = "region"
label = "Region"
default = "eu"

[[fields]]
key = "api_key"
label = "API key"
secret = true
required = true

[credentials]
headers = [{ name = "Authorization", value = "Bearer {api_key}" }]

[verify]
path = "/me"
account_pointer = "/user/email"

[[modules]]
key = "list-contacts"
name = "List contacts"
scopes = ["contacts.read"]
`,
  );
  fs.writeFileSync(
    path.join(dir, "test-oauth.toml"),
    `key = "test-oauth"
name = "Test OAuth"
description = "An OAuth 2.0 provider that exists only in the tests."
docs_url = "https://example.com/docs"
auth_type = "OAUTH2"
api_base_url = "${provider}/oauth-api"
default_scopes = ["profile"]

[oauth]
authorize_url = "${provider}/oauth/authorize"
token_url = "${provider}/oauth/token"
client_auth = "basic"

[[fields]]
key = "client_id"
label = "Client ID (advanced)"

[[fields]]
key = "client_secret"
label = "Client secret (advanced)"
secret = true

[credentials]
headers = [{ name = "Authorization", value = "Bearer {access_token}" }]

[verify]
path = "/me"
account_pointer = "/email"

[[modules]]
key = "read-records"
name = "Read records"
scopes = ["profile"]
`,
  );
}
