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

// GraphiQL does not always hand the parsed document to the fetcher; parse it then.
function isSubscription(documentAST, query, operationName) {
  let document = documentAST;
  if (!document) {
    try {
      document = parse(query);
    } catch {
      return false;
    }
  }
  const operations = (document?.definitions ?? []).filter((d) => d.kind === "OperationDefinition");
  const chosen = operationName ? operations.find((d) => d.name?.value === operationName) : operations[0];
  return chosen?.operation === "subscription";
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

async function fetcher(params, options = {}) {
  if (isSubscription(options.documentAST, params.query, params.operationName)) {
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
