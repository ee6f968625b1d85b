import { io, type Socket } from "socket.io-client";
import type { RuntimeConfig } from "./config";
import type { SessionStore } from "./session";
import type { OrderUpdate, TimelineEntry } from "./orders";

export const ORDER_UPDATED = "order.updated";
export const ORDER_SYNC = "order.sync";
export const SESSION_ENDED = "session.ended";
export const NOTIFICATION_CREATED = "notification.created";
export const NOTIFICATION_UNREAD = "notification.unread";

export type LiveState = "connecting" | "online" | "offline";

type Handler = (payload: unknown) => void;

/**
 * The app's one Socket.IO connection to the gateway.
 *
 * The socket authenticates with the current access token each time it (re)connects. The gateway
 * ends a socket whose token expired or was revoked with `session.ended`; the connection then
 * renews the token and connects again. A refused connection (`connect_error`) is retried the
 * same way after a renewal. Every connection, the first one included, is announced to
 * `onConnect` listeners, who catch up with `sync` (order.sync) on what they missed while not
 * connected: a push sent before the socket joined its rooms never reaches it.
 *
 * WebSocket only: several gateway replicas need no sticky sessions then.
 */
export class LiveConnection {
  readonly socket: Socket;
  private stateValue: LiveState = "connecting";
  private readonly stateListeners = new Set<(state: LiveState) => void>();
  private readonly connectListeners = new Set<() => void>();
  private stopped = false;
  /**
   * The renewal since the last connection: `session.ended` and the disconnect that follows it
   * share one, whichever arrives first and however long apart. A connection (or a refusal,
   * which needs a fresh token) ends it.
   */
  private renewal: Promise<boolean> | null = null;

  constructor(config: RuntimeConfig, private readonly session: SessionStore) {
    this.socket = io(config.socketUrl, {
      path: config.socketPath,
      transports: ["websocket"],
      autoConnect: false,
      reconnectionDelayMax: 5000,
      auth: (callback) => {
        void session.accessToken().then(
          (token) => callback({ token }),
          () => callback({}),
        );
      },
    });
    this.socket.on("connect", () => {
      this.renewal = null;
      this.setState("online");
      for (const listener of this.connectListeners) listener();
    });
    this.socket.on("disconnect", (reason) => {
      this.setState(this.stopped ? "offline" : "connecting");
      // The gateway closes a socket whose session ended (after `session.ended`): Socket.IO does
      // not reconnect such a socket by itself, so connect again once the renewal is done,
      // whichever of the two arrives first.
      if (reason === "io server disconnect") void this.renewAndConnect();
    });
    this.socket.on(SESSION_ENDED, () => void this.renewAndConnect());
    this.socket.on("connect_error", () => {
      this.renewal = null;
      this.setState("offline");
      // The server refused us (a revoked or expired token): a reconnect with the same token
      // would be refused again, so renew first. A network failure retries by itself.
      if (!this.socket.active) void this.renewAndConnect();
    });
  }

  get state(): LiveState {
    return this.stateValue;
  }

  start(): void {
    this.stopped = false;
    this.socket.connect();
  }

  stop(): void {
    this.stopped = true;
    this.socket.disconnect();
  }

  on<T>(event: string, handler: (payload: T) => void): () => void {
    this.socket.on(event, handler as Handler);
    return () => {
      this.socket.off(event, handler as Handler);
    };
  }

  onState(listener: (state: LiveState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }

  onConnect(listener: () => void): () => void {
    this.connectListeners.add(listener);
    return () => this.connectListeners.delete(listener);
  }

  /** The timeline entries of an order newer than `sinceVersion` (order.sync). */
  async sync(orderId: string, sinceVersion: number): Promise<TimelineEntry[]> {
    const answer = (await this.socket.timeout(10_000).emitWithAck(ORDER_SYNC, { orderId, sinceVersion })) as {
      updates?: TimelineEntry[];
      error?: string;
    };
    if (answer.error) throw new Error(answer.error);
    return answer.updates ?? [];
  }

  private async renewAndConnect(): Promise<void> {
    if (this.stopped || this.session.session === null) return;
    this.renewal ??= this.session.refresh().then(
      () => true,
      () => false, // signed out: the app shows the login screen
    );
    const renewed = await this.renewal;
    // `active`: connected, or a connection under way; connecting again would open a second one.
    if (renewed && !this.stopped && !this.socket.active) this.socket.connect();
  }

  private setState(state: LiveState): void {
    this.stateValue = state;
    for (const listener of this.stateListeners) listener(state);
  }
}

export type { OrderUpdate };
