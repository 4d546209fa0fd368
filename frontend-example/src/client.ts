/**
 * The GraphQL client: queries and mutations over `POST /graphql`, subscriptions over the
 * `graphql-transport-ws` WebSocket. Both go to the page's own origin and name the Plugboard
 * server for the proxy in server-proxy.ts.
 */
import { Client, fetchExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient } from "graphql-ws";
import type { Settings } from "./settings";

export type ApiClient = { client: Client; settings: Settings; dispose: () => void };

export function createApiClient(settings: Settings): ApiClient {
  const { serverUrl, token } = settings;
  const wsUrl = new URL("/graphql/ws", window.location.href);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  wsUrl.searchParams.set("server", serverUrl);
  const ws = createWsClient({
    url: wsUrl.href,
    connectionParams: { Authorization: `Bearer ${token}` },
  });
  const client = new Client({
    url: "/graphql",
    // The server answers GraphiQL to a GET, so every operation is a POST.
    preferGetMethod: false,
    fetchOptions: { headers: { Authorization: `Bearer ${token}`, "X-Plugboard-Server": serverUrl } },
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({
            unsubscribe: ws.subscribe({ ...request, query: request.query ?? "" }, sink),
          }),
        }),
      }),
    ],
  });
  return { client, settings, dispose: () => void ws.dispose() };
}
