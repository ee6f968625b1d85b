import type { components } from "./api/schema";

export type User = components["schemas"]["UserOut"];
export type TokenPair = components["schemas"]["TokenPair"];

export interface Session {
  accessToken: string;
  refreshToken: string;
  /** Epoch milliseconds when the access token stops being accepted. */
  expiresAt: number;
  user: User;
}

/** Refresh this long before the access token expires, so no request meets an expired one. */
export const REFRESH_MARGIN_MS = 30_000;

export class SessionExpired extends Error {
  constructor() {
    super("Your session has ended. Please sign in again.");
  }
}

type Listener = (session: Session | null) => void;
type Fetch = typeof fetch;

/**
 * The signed-in session of one app, kept in localStorage under `key`.
 *
 * Auth rotates refresh tokens and treats a reused one as theft (it revokes the whole login), so
 * every refresh goes through one in-flight promise: concurrent requests that all find the
 * access token stale share a single POST /auth/refresh.
 */
export class SessionStore {
  private current: Session | null;
  private refreshing: Promise<Session> | null = null;
  private readonly listeners = new Set<Listener>();

  constructor(
    private readonly key: string,
    private readonly apiUrl: string,
    private readonly http: Fetch = (...args) => fetch(...args),
    private readonly now: () => number = Date.now,
    private readonly storage: Storage | null = typeof localStorage === "undefined" ? null : localStorage,
  ) {
    this.current = this.read();
  }

  get session(): Session | null {
    return this.current;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  signIn(pair: TokenPair): Session {
    const session: Session = {
      accessToken: pair.accessToken,
      refreshToken: pair.refreshToken,
      expiresAt: this.now() + pair.expiresIn * 1000,
      user: pair.user,
    };
    this.set(session);
    return session;
  }

  clear(): void {
    this.set(null);
  }

  /** A valid access token: the current one, or a fresh one when it is about to expire. */
  async accessToken(): Promise<string | null> {
    const session = this.current;
    if (session === null) return null;
    if (session.expiresAt - this.now() > REFRESH_MARGIN_MS) return session.accessToken;
    return (await this.refresh()).accessToken;
  }

  /** A new token pair from the refresh token (one request however many callers ask). */
  refresh(): Promise<Session> {
    if (this.refreshing === null) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<Session> {
    const session = this.current;
    if (session === null) throw new SessionExpired();
    let response: Response;
    try {
      response = await this.http(`${this.apiUrl}/auth/refresh`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refreshToken: session.refreshToken }),
      });
    } catch (error) {
      throw error instanceof Error ? error : new Error(String(error));
    }
    if (response.status === 401 || response.status === 403 || response.status === 422) {
      this.clear();
      throw new SessionExpired();
    }
    if (!response.ok) throw new Error(`The session could not be renewed (${response.status}).`);
    return this.signIn((await response.json()) as TokenPair);
  }

  private set(session: Session | null): void {
    this.current = session;
    if (session === null) this.storage?.removeItem(this.key);
    else this.storage?.setItem(this.key, JSON.stringify(session));
    for (const listener of this.listeners) listener(session);
  }

  private read(): Session | null {
    try {
      const raw = this.storage?.getItem(this.key);
      const value = raw ? (JSON.parse(raw) as Session) : null;
      return value && typeof value.refreshToken === "string" ? value : null;
    } catch {
      return null;
    }
  }
}
