import { useEffect, useState, type FormEvent } from "react";
import { Alert, Button, Card, TextField, describeError, unwrap, useServices, type components } from "@realtimeorder/shared";

type Preferences = components["schemas"]["PreferencesOut"];
type Channel = components["schemas"]["Channel"];
type EventType = components["schemas"]["EventType"];

const CHANNELS: Channel[] = ["email", "sms", "push"];
const EVENT_LABELS: Record<EventType, string> = {
  "order.created": "Order placed",
  "order.confirmed": "Order confirmed",
  "order.failed": "Order failed",
  "order.shipped": "Order shipped",
  "order.delivered": "Order delivered",
  "order.cancelled": "Order cancelled",
};

export function PreferencesPage() {
  const { api } = useServices();
  const [prefs, setPrefs] = useState<Preferences | null>(null);
  const [email, setEmail] = useState("");
  const [phone, setPhone] = useState("");
  const [message, setMessage] = useState<{ tone: "error" | "success"; text: string } | null>(null);

  useEffect(() => {
    unwrap(api.GET("/notifications/preferences"))
      .then((p) => {
        setPrefs(p);
        setEmail(p.email ?? "");
        setPhone(p.phone ?? "");
      })
      .catch((e: unknown) => setMessage({ tone: "error", text: describeError(e) }));
  }, [api]);

  function toggle(event: EventType, channel: Channel, on: boolean) {
    if (!prefs) return;
    setPrefs({ ...prefs, channels: { ...prefs.channels, [event]: { ...prefs.channels[event], [channel]: on } } });
  }

  async function save(e: FormEvent) {
    e.preventDefault();
    if (!prefs) return;
    setMessage(null);
    try {
      const saved = await unwrap(
        api.PUT("/notifications/preferences", {
          body: { channels: prefs.channels as Record<string, Record<string, boolean>>, email: email || null, phone: phone || null },
        }),
      );
      setPrefs(saved);
      setMessage({ tone: "success", text: "Your preferences are saved." });
    } catch (err) {
      setMessage({ tone: "error", text: describeError(err) });
    }
  }

  if (!prefs) return message ? <Alert>{message.text}</Alert> : <p role="status">Loading your preferences…</p>;
  const events = Object.keys(EVENT_LABELS) as EventType[];
  return (
    <form onSubmit={save} className="space-y-4">
      <Card title="Notification preferences">
        <p className="mb-3 text-sm text-slate-600 dark:text-slate-400">Every update also appears in your notification center.</p>
        <div className="overflow-x-auto">
          <table className="w-full text-sm">
            <caption className="sr-only">Channels for each kind of order update</caption>
            <thead>
              <tr>
                <th scope="col" className="py-2 text-left">Update</th>
                {CHANNELS.map((c) => (
                  <th scope="col" key={c} className="px-3 py-2 capitalize">{c === "sms" ? "SMS" : c}</th>
                ))}
              </tr>
            </thead>
            <tbody>
              {events.map((event) => (
                <tr key={event} className="border-t border-slate-200 dark:border-slate-700">
                  <th scope="row" className="py-2 text-left font-normal">{EVENT_LABELS[event]}</th>
                  {CHANNELS.map((channel) => (
                    <td key={channel} className="px-3 py-2 text-center">
                      <input
                        type="checkbox"
                        className="h-5 w-5 accent-indigo-600"
                        aria-label={`${EVENT_LABELS[event]} by ${channel}`}
                        checked={prefs.channels[event]?.[channel] ?? false}
                        onChange={(e) => toggle(event, channel, e.target.checked)}
                      />
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="mt-4 grid gap-3 sm:grid-cols-2">
          <TextField label="Email for notifications" type="email" value={email} onChange={(e) => setEmail(e.target.value)} />
          <TextField label="Phone for SMS" type="tel" value={phone} onChange={(e) => setPhone(e.target.value)} hint="International format, such as +4930123456." />
        </div>
        {message && <div className="mt-4"><Alert tone={message.tone}>{message.text}</Alert></div>}
        <Button type="submit" className="mt-4">Save preferences</Button>
      </Card>
    </form>
  );
}
