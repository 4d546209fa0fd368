/**
 * A Vite plugin that forwards the page's API traffic to the Plugboard server the page names, so
 * the browser talks only to its own origin (the server sends no CORS headers). `POST /graphql`
 * goes to `{server}/graphql` and the WebSocket `/graphql/ws` to `{server}/graphql/ws`; the page
 * names the server in the `X-Plugboard-Server` header or, for the WebSocket, the `server` query
 * parameter. It serves `vite` (dev) and `vite preview` alike, and forwards nothing else.
 */
import http from "node:http";
import https from "node:https";
import type { Duplex } from "node:stream";
import type { Connect, HttpServer, Plugin } from "vite";

const SERVER_HEADER = "x-plugboard-server";
const SERVER_PARAM = "server";

const GRAPHQL_PATH = "/graphql";
const WEBSOCKET_PATH = "/graphql/ws";

export function plugboardProxy(): Plugin {
  const attach = (server: { middlewares: Connect.Server; httpServer: HttpServer | null }) => {
    server.middlewares.use(GRAPHQL_PATH, (req, res, next) => {
      if (pathOf(req) !== "/") return next();
      const target = serverOf(req);
      if (!target) return refuse(res, `name the Plugboard server (http or https URL) in ${SERVER_HEADER}`);
      forwardRequest(req, res, upstreamUrl(target, GRAPHQL_PATH));
    });
    server.httpServer?.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      // Other upgrades (Vite's own HMR socket) are not ours.
      if (pathOf(req) !== WEBSOCKET_PATH) return;
      const target = serverOf(req);
      if (!target) return void socket.destroy();
      forwardUpgrade(req, socket, head, upstreamUrl(target, WEBSOCKET_PATH));
    });
  };
  return { name: "plugboard-proxy", configureServer: attach, configurePreviewServer: attach };
}

function pathOf(req: http.IncomingMessage): string {
  return new URL(req.url ?? "/", "http://page").pathname;
}

/** The server the page named, when it is an http(s) URL. */
function serverOf(req: http.IncomingMessage): URL | null {
  const fromHeader = req.headers[SERVER_HEADER];
  const named =
    typeof fromHeader === "string" ? fromHeader : new URL(req.url ?? "/", "http://page").searchParams.get(SERVER_PARAM);
  if (!named) return null;
  try {
    const url = new URL(named);
    return url.protocol === "http:" || url.protocol === "https:" ? url : null;
  } catch {
    return null;
  }
}

function upstreamUrl(server: URL, path: string): URL {
  return new URL(server.pathname.replace(/\/$/, "") + path, server);
}

function upstreamHeaders(req: http.IncomingMessage, target: URL): http.OutgoingHttpHeaders {
  const { [SERVER_HEADER]: _named, ...headers } = req.headers;
  return { ...headers, host: target.host };
}

function send(target: URL, options: http.RequestOptions): http.ClientRequest {
  return (target.protocol === "https:" ? https : http).request(target, options);
}

function forwardRequest(req: http.IncomingMessage, res: http.ServerResponse, target: URL) {
  const upstream = send(target, { method: req.method, headers: upstreamHeaders(req, target) });
  upstream.on("response", (answer) => {
    res.writeHead(answer.statusCode ?? 502, answer.headers);
    answer.pipe(res);
  });
  upstream.on("error", (error) => {
    if (res.headersSent) return void res.destroy();
    refuse(res, `cannot reach the Plugboard server at ${target.origin}: ${error.message}`, 502);
  });
  req.pipe(upstream);
}

function forwardUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, target: URL) {
  const upstream = send(target, { method: "GET", headers: upstreamHeaders(req, target) });
  upstream.on("upgrade", (answer, upstreamSocket, upstreamHead) => {
    const lines = [`HTTP/1.1 101 ${answer.statusMessage ?? "Switching Protocols"}`];
    for (let i = 0; i < answer.rawHeaders.length; i += 2) {
      lines.push(`${answer.rawHeaders[i]}: ${answer.rawHeaders[i + 1]}`);
    }
    socket.write(lines.join("\r\n") + "\r\n\r\n");
    if (upstreamHead.length) socket.write(upstreamHead);
    if (head.length) upstreamSocket.write(head);
    upstreamSocket.on("error", () => socket.destroy());
    socket.on("error", () => upstreamSocket.destroy());
    upstreamSocket.pipe(socket).pipe(upstreamSocket);
  });
  upstream.on("response", (answer) => {
    socket.end(`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ""}\r\n\r\n`);
  });
  upstream.on("error", () => socket.destroy());
  upstream.end();
}

function refuse(res: http.ServerResponse, message: string, status = 400) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ errors: [{ message, extensions: { code: "PROXY" } }] }));
}
