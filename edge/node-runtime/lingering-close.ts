/**
 * An answer given before the request's body was read (413 body too large, 415 wrong content
 * type, 401 ...) must reach the client, and must not break its connection for the next request.
 *
 * Node's server would keep the connection and discard the rest of the body (or, in
 * @hono/node-server's cleanup, destroy the socket after 500 ms), and closing a socket that still
 * has unread input makes the kernel send a reset, which can destroy the answer before the client
 * has read it. So: such an answer says `Connection: close` (a client opens a new connection for
 * its next request), and the connection is closed the lingering way: our side is shut (FIN)
 * after the answer, the rest of the client's input is read and discarded, and the socket is
 * destroyed once the client has closed its side, or after LINGER_MS / LINGER_BYTES.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";

const LINGER_MS = 2000;
const LINGER_BYTES = 16 * 1024 * 1024;

function lingeringClose(socket: Socket): void {
  // From here on the socket is ours: no more HTTP parsing of what the client still sends.
  socket.removeAllListeners("data");
  let read = 0;
  const done = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(done, LINGER_MS);
  timer.unref();
  socket.on("data", (chunk: Buffer) => {
    read += chunk.length;
    if (read > LINGER_BYTES) done();
  });
  socket.once("end", done);
  socket.once("error", done);
  socket.end();
  socket.resume();
}

export function closeUnreadConnectionsCleanly(server: Server): void {
  server.prependListener("request", (req: IncomingMessage, res: ServerResponse) => {
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: unknown[]) {
      if (!req.complete) {
        // Node adds "Connection: close" and ends the socket after the answer (destroySoon).
        this.shouldKeepAlive = false;
        const socket = req.socket;
        (socket as Socket & { destroySoon?: () => void }).destroySoon = () =>
          lingeringClose(socket);
      }
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as ServerResponse["writeHead"];
  });
}
