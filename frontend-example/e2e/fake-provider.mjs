// A stand-in for third-party providers on a local port: an API-key service (`/crm/me`) that
// accepts one key, and an OAuth 2.0 provider (`/oauth/authorize`, `/oauth/token`, `/oauth-api/me`)
// with single-use codes, rotating refresh tokens and Basic client authentication.
import http from "node:http";

export const GOOD_API_KEY = "good-crm-key";
export const CRM_ACCOUNT = "sales@crm.test";
export const OAUTH_ACCOUNT = "owner@provider.test";
export const OAUTH_CLIENT_ID = "plugboard-e2e";
export const OAUTH_CLIENT_SECRET = "e2e-client-secret";

// Slow enough that the page shows "Verifying..." for a moment.
const CRM_DELAY_MS = 1000;

export async function startFakeProvider() {
  const codes = new Set();
  const liveAccess = new Set();
  const liveRefresh = new Set();
  let issued = 0;

  const issueTokens = () => {
    issued += 1;
    const access = `access-${issued}`;
    const refresh = `refresh-${issued}`;
    liveAccess.add(access);
    liveRefresh.add(refresh);
    return {
      access_token: access,
      refresh_token: refresh,
      token_type: "Bearer",
      expires_in: 3600,
      scope: "profile records.read",
    };
  };

  const routes = {
    "GET /crm/me": async (req, res) => {
      await new Promise((resolve) => setTimeout(resolve, CRM_DELAY_MS));
      if (bearer(req) === GOOD_API_KEY) return json(res, 200, { user: { email: CRM_ACCOUNT } });
      json(res, 401, { error: "invalid api key" });
    },
    "GET /oauth/authorize": (req, res, url) => {
      const redirect = url.searchParams.get("redirect_uri");
      const state = url.searchParams.get("state");
      if (!redirect || !state) return json(res, 400, { error: "invalid_request" });
      const code = `code-${(issued += 1)}`;
      codes.add(code);
      const back = new URL(redirect);
      back.searchParams.set("code", code);
      back.searchParams.set("state", state);
      res.writeHead(302, { location: back.href }).end();
    },
    "POST /oauth/token": async (req, res) => {
      const expected = `Basic ${Buffer.from(`${OAUTH_CLIENT_ID}:${OAUTH_CLIENT_SECRET}`).toString("base64")}`;
      if (req.headers.authorization !== expected) return json(res, 401, { error: "invalid_client" });
      const form = new URLSearchParams(await body(req));
      const grant = form.get("grant_type");
      const valid =
        (grant === "authorization_code" && codes.delete(form.get("code"))) ||
        (grant === "refresh_token" && liveRefresh.delete(form.get("refresh_token")));
      if (!valid) return json(res, 400, { error: "invalid_grant" });
      json(res, 200, issueTokens());
    },
    "GET /oauth-api/me": (req, res) => {
      if (liveAccess.has(bearer(req))) return json(res, 200, { email: OAUTH_ACCOUNT });
      json(res, 401, { error: "invalid_token" });
    },
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://provider");
    const route = routes[`${req.method} ${url.pathname}`];
    if (!route) return json(res, 404, { error: "not found" });
    Promise.resolve(route(req, res, url)).catch((error) => json(res, 500, { error: String(error) }));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    /** Withdraws every grant, as a provider does when a person revokes access. */
    revokeAll: () => {
      liveAccess.clear();
      liveRefresh.clear();
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

function bearer(req) {
  return (req.headers.authorization ?? "").replace(/^Bearer /, "");
}

function json(res, status, value) {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(value));
}

async function body(req) {
  let text = "";
  for await (const chunk of req) text += chunk;
  return text;
}
