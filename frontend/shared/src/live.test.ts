import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createRequire } from "node:module";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LiveConnection, SESSION_ENDED, type LiveState } from "./live";
import { SessionStore, type Session, type TokenPair } from "./session";

// The real socket.io-client against a tiny server speaking just enough of Engine.IO 4 and
// Socket.IO 5 over a WebSocket (the only transport LiveConnection uses): it accepts or refuses
// each CONNECT by its token, pushes events and disconnects, as the gateway does. The WebSocket
// server is `ws`, which socket.io-client itself runs on in Node; it has no type declarations.

interface WsSocket {
  send(data: string): void;
  close(): void;
  on(event: "message", listener: (data: Buffer) => void): void;
}
interface WsServer {
  on(event: "connection", listener: (socket: WsSocket) => void): void;
  close(): void;
}
const { WebSocketServer } = createRequire(import.meta.url)("ws") as {
  WebSocketServer: new (options: { server: Server; path: string }) => WsServer;
};

/** How the server answers a CONNECT carrying `token`: "accept", or refuse with this message. */
type Verdict = (token: string | undefined) => "accept" | { refuse: string };

class TinyGateway {
  /** The token of every CONNECT, in order (undefined: none). */
  readonly tokens: (string | undefined)[] = [];
  private readonly sockets = new Set<WsSocket>();
  private readonly wss: WsServer;
  private waiters: { count: number; resolve: () => void }[] = [];

  private constructor(
    readonly http: Server,
    private readonly verdict: Verdict,
  ) {
    this.wss = new WebSocketServer({ server: http, path: "/socket.io/" });
    this.wss.on("connection", (socket) => {
      socket.send(`0${JSON.stringify({ sid: `e${Math.random()}`, upgrades: [], pingInterval: 25_000, pingTimeout: 20_000, maxPayload: 1_000_000 })}`);
      socket.on("message", (data) => this.receive(socket, data.toString()));
    });
  }

  static async start(verdict: Verdict = () => "accept", port = 0): Promise<TinyGateway> {
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
    return new TinyGateway(http, verdict);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  /** Resolves once `count` CONNECTs have arrived in all. */
  connects(count: number): Promise<void> {
    if (this.tokens.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /**
   * What the gateway does when a token is revoked: session.ended, then a disconnect (after
   * `between`, when given: the two may reach a client with any delay between them).
   */
  async endSessions(reason = "revoked", between?: () => Promise<void>): Promise<void> {
    const sockets = [...this.sockets];
    this.sockets.clear();
    for (const socket of sockets) socket.send(`42${JSON.stringify([SESSION_ENDED, { reason }])}`);
    if (between) await between();
    for (const socket of sockets) socket.send("41");
  }

  async stop(): Promise<void> {
    this.wss.close();
    this.http.closeAllConnections();
    await new Promise((resolve) => this.http.close(resolve));
  }

  private receive(socket: WsSocket, packet: string): void {
    if (packet === "3") return; // a pong
    if (!packet.startsWith("40")) return;
    const auth = packet.length > 2 ? (JSON.parse(packet.slice(2)) as { token?: string }) : {};
    this.tokens.push(auth.token);
    const verdict = this.verdict(auth.token);
    if (verdict === "accept") {
      this.sockets.add(socket);
      socket.send(`40${JSON.stringify({ sid: `s${this.tokens.length}` })}`);
    } else {
      socket.send(`44${JSON.stringify({ message: verdict.refuse })}`);
    }
    this.waiters = this.waiters.filter((waiter) => {
      if (this.tokens.length < waiter.count) return true;
      waiter.resolve();
      return false;
    });
  }
}

const user = { id: "u1", email: "ada@example.com", name: "Ada", role: "USER" as const, active: true, createdAt: "2026-01-01T00:00:00Z" };
const pair = (n: number): TokenPair => ({ accessToken: `access-${n}`, refreshToken: `refresh-${n}`, tokenType: "Bearer", expiresIn: 900, user });
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

/** A session signed in with access-1 whose renewals hand out access-2, access-3 ... */
function signedIn(renew: () => Response | Promise<Response> = (() => {
  let n = 1;
  return () => json(pair(++n));
})()) {
  const refresh = vi.fn<typeof fetch>(async () => renew());
  const session = new SessionStore("live-test", "http://api", refresh, Date.now, null);
  session.signIn(pair(1));
  return { session, refresh };
}

/** Resolves when `predicate` holds, checked on each change `subscribe` reports. */
function until<T>(subscribe: (notify: (value: T) => void) => () => void, predicate: (value: T) => boolean): Promise<void> {
  return new Promise((resolve) => {
    const stop = subscribe((value) => {
      if (!predicate(value)) return;
      stop();
      resolve();
    });
  });
}

/** Every promise continuation queued so far has run (the renewal is all promises, no I/O). */
const settled = () => new Promise<void>((resolve) => setImmediate(resolve));

const online = (live: LiveConnection) =>
  live.state === "online" ? Promise.resolve() : until<LiveState>((notify) => live.onState(notify), (state) => state === "online");

let gateway: TinyGateway | null = null;
let live: LiveConnection | null = null;
afterEach(async () => {
  live?.stop();
  live = null;
  await gateway?.stop();
  gateway = null;
});

function connect(session: SessionStore, url: string): LiveConnection {
  live = new LiveConnection({ apiUrl: "http://api", socketUrl: url, socketPath: "/socket.io/" }, session);
  return live;
}

describe("LiveConnection", () => {
  it("connects with the current access token and announces the connection", async () => {
    gateway = await TinyGateway.start();
    const { session, refresh } = signedIn();
    const connection = connect(session, gateway.url);
    const announced = vi.fn();
    connection.onConnect(announced);
    connection.start();
    await online(connection);
    expect(gateway.tokens).toEqual(["access-1"]);
    expect(announced).toHaveBeenCalledTimes(1);
    expect(refresh).not.toHaveBeenCalled();
  });

  it("on session.ended renews the token and connects again with the new one, announcing it", async () => {
    gateway = await TinyGateway.start();
    const { session, refresh } = signedIn();
    const connection = connect(session, gateway.url);
    const announced = vi.fn();
    connection.onConnect(announced);
    connection.start();
    await online(connection);

    gateway.endSessions();
    await gateway.connects(2);
    await online(connection);
    expect(gateway.tokens).toEqual(["access-1", "access-2"]);
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(JSON.parse(String(refresh.mock.calls[0]![1]?.body))).toEqual({ refreshToken: "refresh-1" });
    expect(announced).toHaveBeenCalledTimes(2); // the tracker catches up (order.sync) after each
  });

  it("connects again when the disconnect arrives after the renewal has finished", async () => {
    gateway = await TinyGateway.start();
    const { session, refresh } = signedIn();
    const connection = connect(session, gateway.url);
    connection.start();
    await online(connection);

    await gateway.endSessions("revoked", async () => {
      await vi.waitFor(() => expect(refresh).toHaveBeenCalledTimes(1));
      await settled();
    });
    await gateway.connects(2);
    await online(connection);
    expect(gateway.tokens).toEqual(["access-1", "access-2"]);
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it("renews the token when the server refuses the connection, then connects with the new one", async () => {
    gateway = await TinyGateway.start((token) => (token === "access-1" ? { refuse: "token revoked" } : "accept"));
    const { session, refresh } = signedIn();
    const connection = connect(session, gateway.url);
    connection.start();
    await online(connection);
    expect(gateway.tokens).toEqual(["access-1", "access-2"]);
    expect(refresh).toHaveBeenCalledTimes(1);
  });

  it("signs out and stops connecting when the renewal after session.ended is refused", async () => {
    gateway = await TinyGateway.start();
    const { session, refresh } = signedIn(() => json({ status: 401, detail: "session revoked" }, 401));
    const connection = connect(session, gateway.url);
    connection.start();
    await online(connection);

    const signedOut = until<Session | null>((notify) => session.subscribe(notify), (s) => s === null);
    gateway.endSessions();
    await signedOut;
    await settled();
    expect(refresh).toHaveBeenCalledTimes(1);
    expect(connection.socket.connected).toBe(false);
    expect(connection.socket.active).toBe(false); // no reconnection is scheduled either
    expect(gateway.tokens).toEqual(["access-1"]);
  });

  it("leaves a network failure to the client's own retries, without renewing the token", async () => {
    const unused = await TinyGateway.start();
    const { url } = unused;
    const port = Number(new URL(url).port);
    await unused.stop();

    const { session, refresh } = signedIn();
    const connection = connect(session, url);
    const refused = until<LiveState>((notify) => connection.onState(notify), (state) => state === "offline");
    connection.start();
    await refused;
    expect(connection.socket.active).toBe(true); // socket.io-client tries again by itself

    gateway = await TinyGateway.start(() => "accept", port);
    await online(connection);
    expect(gateway.tokens).toEqual(["access-1"]);
    expect(refresh).not.toHaveBeenCalled();
  });
});
