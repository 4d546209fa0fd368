// The GraphiQL page Plugboard serves on GET /graphql. Everything it needs is in this bundle: no
// CDN, no inline script, so it works offline and under the page's strict Content-Security-Policy.
// The server passes its settings in a JSON block (`#plugboard-graphiql`), which is data, not code.
import { createElement } from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { parse } from "graphql";
import { createClient } from "graphql-ws";
import "graphiql/style.css";
import "./page.css";

const settings = JSON.parse(document.getElementById("plugboard-graphiql").textContent);

const endpoint = new URL(settings.endpoint, window.location.href).href;
const subscriptionUrl = new URL(settings.subscriptionEndpoint, window.location.href);
subscriptionUrl.protocol = subscriptionUrl.protocol === "https:" ? "wss:" : "ws:";

// The link printed at first start may carry the demo token in the fragment (which never reaches
// the server or its logs); it goes into the headers editor and out of the address bar.
function headersFromFragment() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("token");
  if (!token) return null;
  history.replaceState(null, "", window.location.pathname + window.location.search);
  return JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2);
}

// The operations of the query being sent. GraphiQL's own parsed document can lag behind the
// editor (it may be missing, or still the previous query's), so the query text is parsed here.
function operationsOf(query) {
  try {
    return parse(query).definitions.filter((d) => d.kind === "OperationDefinition");
  } catch {
    return [];
  }
}

// GraphiQL can pass the name of an operation the editor held before (a replaced `query Start`);
// a name the query does not define is dropped, so its only operation runs.
function normalized(params) {
  const operations = operationsOf(params.query);
  const named = params.operationName && operations.find((d) => d.name?.value === params.operationName);
  const operationName = named ? params.operationName : undefined;
  const chosen = named || (operations.length === 1 ? operations[0] : undefined);
  return { params: { ...params, operationName }, subscription: chosen?.operation === "subscription" };
}

// One WebSocket per set of headers: the server authenticates in `connection_init`, so the
// headers editor's Authorization is what the socket presents.
const sockets = new Map();
function socketFor(headers) {
  const key = JSON.stringify(headers ?? {});
  if (!sockets.has(key)) {
    sockets.set(key, createClient({ url: subscriptionUrl.href, connectionParams: headers ?? {}, lazy: true }));
  }
  return sockets.get(key);
}

async function* subscribe(params, headers) {
  yield* socketFor(headers).iterate({
    query: params.query,
    variables: params.variables ?? undefined,
    operationName: params.operationName ?? undefined,
  });
}

async function fetcher(given, options = {}) {
  const { params, subscription } = normalized(given);
  if (subscription) {
    return subscribe(params, options.headers);
  }
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json", ...(options.headers ?? {}) },
    body: JSON.stringify(params),
  });
  return response.json();
}

const fragmentHeaders = headersFromFragment();
const root = createRoot(document.getElementById("graphiql"));
root.render(
  createElement(GraphiQL, {
    fetcher,
    defaultQuery: settings.defaultQuery,
    defaultHeaders: fragmentHeaders ?? settings.defaultHeaders,
    headers: fragmentHeaders ?? undefined,
    isHeadersEditorEnabled: true,
    defaultEditorToolsVisibility: "headers",
    shouldPersistHeaders: false,
  }),
);
