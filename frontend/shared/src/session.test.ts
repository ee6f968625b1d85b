import { describe, expect, it, vi } from "vitest";
import { authorizedFetch } from "./api/client";
import { REFRESH_MARGIN_MS, SessionExpired, SessionStore, type TokenPair } from "./session";

const user = { id: "u1", email: "ada@example.com", name: "Ada", role: "USER" as const, active: true, createdAt: "2026-01-01T00:00:00Z" };
const pair = (n: number, expiresIn = 900): TokenPair => ({ accessToken: `access-${n}`, refreshToken: `refresh-${n}`, tokenType: "Bearer", expiresIn, user });
const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

function memoryStorage(): Storage {
  const data = new Map<string, string>();
  return {
    get length() { return data.size; },
    clear: () => data.clear(),
    getItem: (k) => data.get(k) ?? null,
    key: (i) => [...data.keys()][i] ?? null,
    removeItem: (k) => void data.delete(k),
    setItem: (k, v) => void data.set(k, v),
  };
}

function store(http: typeof fetch, clock = { now: 1_000_000 }) {
  return new SessionStore("test", "http://api", http, () => clock.now, memoryStorage());
}

describe("SessionStore", () => {
  it("hands out the current token while it is fresh", async () => {
    const http = vi.fn<typeof fetch>();
    const session = store(http);
    session.signIn(pair(1));
    expect(await session.accessToken()).toBe("access-1");
    expect(http).not.toHaveBeenCalled();
  });

  it("renews a token about to expire, once for many callers (auth refuses a reused refresh token)", async () => {
    const clock = { now: 1_000_000 };
    const http = vi.fn<typeof fetch>(async () => json(pair(2)));
    const session = store(http, clock);
    session.signIn(pair(1, 60));
    clock.now += 60_000 - REFRESH_MARGIN_MS + 1;
    const tokens = await Promise.all([session.accessToken(), session.accessToken(), session.accessToken()]);
    expect(tokens).toEqual(["access-2", "access-2", "access-2"]);
    expect(http).toHaveBeenCalledTimes(1);
    const [, init] = http.mock.calls[0]!;
    expect(JSON.parse(String(init?.body))).toEqual({ refreshToken: "refresh-1" });
    expect(session.session?.refreshToken).toBe("refresh-2");
  });

  it("signs out when the refresh token is refused", async () => {
    const session = store(vi.fn<typeof fetch>(async () => json({ status: 401 }, 401)));
    session.signIn(pair(1, 1));
    const seen: unknown[] = [];
    session.subscribe((s) => seen.push(s));
    await expect(session.refresh()).rejects.toBeInstanceOf(SessionExpired);
    expect(session.session).toBeNull();
    expect(seen).toEqual([null]);
  });

  it("keeps the session in storage across page loads", () => {
    const storage = memoryStorage();
    const first = new SessionStore("k", "http://api", fetch, Date.now, storage);
    first.signIn(pair(1));
    expect(new SessionStore("k", "http://api", fetch, Date.now, storage).session?.accessToken).toBe("access-1");
  });
});

describe("authorizedFetch", () => {
  it("signs requests and, refused with 401, renews the token and sends the request again", async () => {
    const seen: (string | null)[] = [];
    const http = vi.fn<typeof fetch>(async (input) => {
      if (typeof input === "string") return json(pair(2)); // the session's POST /auth/refresh
      const request = input as Request;
      seen.push(request.headers.get("Authorization"));
      return request.headers.get("Authorization") === "Bearer access-2" ? json({ ok: true }) : json({}, 401);
    });
    const session = store(http);
    session.signIn(pair(1));
    const response = await authorizedFetch(session, http)(new Request("http://api/orders", { method: "POST", body: "{}" }));
    expect(response.status).toBe(200);
    expect(seen).toEqual(["Bearer access-1", "Bearer access-2"]);
  });

  it("sends anonymous requests unsigned", async () => {
    const http = vi.fn<typeof fetch>(async () => json([]));
    await authorizedFetch(store(http), http)(new Request("http://api/inventory/products"));
    expect((http.mock.calls[0]![0] as Request).headers.get("Authorization")).toBeNull();
  });
});
