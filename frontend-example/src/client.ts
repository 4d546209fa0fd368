/**
 * The GraphQL client: queries and mutations over `POST {server}/graphql`, subscriptions over the
 * `graphql-transport-ws` WebSocket at `{server}/graphql/ws`. The browser calls the server
 * directly; the server allows this page's origin through `PLUGBOARD_CORS_ORIGINS`.
 */
import { Client, fetchExchange, subscriptionExchange } from "urql";
import { createClient as createWsClient } from "graphql-ws";
import type { Settings } from "./settings";

export type ApiClient = { client: Client; settings: Settings; dispose: () => void };

export function createApiClient(settings: Settings): ApiClient {
  const { serverUrl, token } = settings;
  const wsUrl = new URL("/graphql/ws", serverUrl);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  const ws = createWsClient({
    url: wsUrl.href,
    connectionParams: { Authorization: `Bearer ${token}` },
  });
  const client = new Client({
    url: new URL("/graphql", serverUrl).href,
    // The server answers GraphiQL to a GET, so every operation is a POST.
    preferGetMethod: false,
    fetchOptions: { headers: { Authorization: `Bearer ${token}` } },
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
