import { createContext, useContext, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { createApi, type Api } from "./api/client";
import type { RuntimeConfig } from "./config";
import { LiveConnection, type LiveState } from "./live";
import { SessionStore, type Session } from "./session";

export interface AppServices {
  config: RuntimeConfig;
  session: SessionStore;
  api: Api;
  live: LiveConnection;
}

export function createServices(config: RuntimeConfig, sessionKey: string): AppServices {
  const session = new SessionStore(sessionKey, config.apiUrl);
  return { config, session, api: createApi(config.apiUrl, session), live: new LiveConnection(config, session) };
}

const Services = createContext<AppServices | null>(null);
export const ServicesProvider = Services.Provider;

export function useServices(): AppServices {
  const services = useContext(Services);
  if (services === null) throw new Error("useServices outside ServicesProvider");
  return services;
}

export function useSession(): Session | null {
  const { session } = useServices();
  return useSyncExternalStore(
    (notify) => session.subscribe(notify),
    () => session.session,
  );
}

/** The live connection runs while someone is signed in. */
export function useLiveWhileSignedIn(): LiveState {
  const { live } = useServices();
  const session = useSession();
  const signedIn = session !== null;
  const [state, setState] = useState<LiveState>(live.state);
  useEffect(() => live.onState(setState), [live]);
  useEffect(() => {
    if (!signedIn) return;
    live.start();
    return () => live.stop();
  }, [live, signedIn]);
  return signedIn ? state : "offline";
}

/** Call `handler` for each `event` pushed on the live connection (the latest handler). */
export function useLiveEvent<T>(event: string, handler: (payload: T) => void): void {
  const { live } = useServices();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => live.on<T>(event, (payload) => latest.current(payload)), [live, event]);
}

/** Runs `handler` each time the live connection (re)connects. */
export function useConnected(handler: () => void): void {
  const { live } = useServices();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(() => live.onConnect(() => latest.current()), [live]);
}

export async function signOut(services: AppServices): Promise<void> {
  const current = services.session.session;
  services.live.stop();
  services.session.clear();
  if (current) {
    await fetch(`${services.config.apiUrl}/auth/logout`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ refreshToken: current.refreshToken }),
    }).catch(() => undefined);
  }
}
