import { useState, type FormEvent } from "react";
import { Alert, Button, Card, TextField, ThemeToggle, describeError, unwrap, useServices, useSession, type ThemeChoice } from "@realtimeorder/shared";

export function LoginPage({ theme, onTheme }: { theme: ThemeChoice; onTheme: (t: ThemeChoice) => void }) {
  const { api, session } = useServices();
  const current = useSession();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(
    current && current.user.role !== "ADMIN" ? "This account is not an administrator's." : null,
  );

  async function submit(event: FormEvent) {
    event.preventDefault();
    setError(null);
    try {
      const pair = await unwrap(api.POST("/auth/login", { body: { email, password } }));
      if (pair.user.role !== "ADMIN") {
        setError("This account is not an administrator's.");
        return;
      }
      session.signIn(pair);
    } catch (e) {
      setError(describeError(e));
    }
  }

  return (
    <main id="main" className="mx-auto max-w-md px-4 py-16">
      <div className="mb-4 flex justify-end">
        <ThemeToggle choice={theme} onChange={onTheme} />
      </div>
      <Card title="Administrator sign in">
        <form onSubmit={submit} className="space-y-4" noValidate>
          <TextField label="Email" type="email" autoComplete="email" value={email} onChange={(e) => setEmail(e.target.value)} required />
          <TextField label="Password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
          {error && <Alert>{error}</Alert>}
          <Button type="submit" className="w-full">Sign in</Button>
        </form>
      </Card>
    </main>
  );
}
