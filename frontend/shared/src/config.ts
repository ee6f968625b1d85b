/**
 * Where the API and its Socket.IO endpoint live, read at run time from `config.json` beside
 * index.html (the chart mounts it; `make up` and the tests' static server write it), so one
 * build works on every host. Without the file the page's own origin is assumed.
 */
export interface RuntimeConfig {
  apiUrl: string;
  socketUrl: string;
  socketPath: string;
}

export function resolveConfig(raw: unknown, origin: string): RuntimeConfig {
  const given = (raw ?? {}) as Partial<Record<keyof RuntimeConfig, unknown>>;
  const text = (value: unknown): string | undefined =>
    typeof value === "string" && value.trim() !== "" ? value.trim().replace(/\/+$/, "") : undefined;
  const apiUrl = text(given.apiUrl) ?? origin;
  return {
    apiUrl,
    socketUrl: text(given.socketUrl) ?? apiUrl,
    socketPath: typeof given.socketPath === "string" && given.socketPath ? given.socketPath : "/socket.io/",
  };
}

export async function loadConfig(): Promise<RuntimeConfig> {
  let raw: unknown = null;
  try {
    const response = await fetch("./config.json", { cache: "no-store" });
    if (response.ok) raw = await response.json();
  } catch {
    // no config.json: the API is on this origin
  }
  return resolveConfig(raw, window.location.origin);
}
