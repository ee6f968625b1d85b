import { useState, type FormEvent } from "react";
import { Alert, Button, Card, Link, TextField, describeError, navigate, unwrap, useServices } from "@realtimeorder/shared";

export function AuthPage({ mode, next }: { mode: "login" | "register"; next: string }) {
  const { api, session } = useServices();
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [name, setName] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === "register") {
        await unwrap(api.POST("/auth/register", { body: { email, password, name } }));
      }
      session.signIn(await unwrap(api.POST("/auth/login", { body: { email, password } })));
      navigate(next === "/login" || next === "/register" ? "/" : next);
    } catch (e) {
      setError(describeError(e));
    } finally {
      setBusy(false);
    }
  }

  const register = mode === "register";
  return (
    <div className="mx-auto max-w-md">
      <Card title={register ? "Create your account" : "Sign in"}>
        <form onSubmit={submit} className="space-y-4" noValidate>
          {register && <Field label="Name" value={name} onChange={setName} autoComplete="name" />}
          <Field label="Email" type="email" value={email} onChange={setEmail} autoComplete="email" />
          <Field
            label="Password"
            type="password"
            value={password}
            onChange={setPassword}
            autoComplete={register ? "new-password" : "current-password"}
            hint={register ? "At least 8 characters." : undefined}
          />
          {error && <Alert>{error}</Alert>}
          <Button type="submit" disabled={busy} className="w-full">
            {register ? "Create account" : "Sign in"}
          </Button>
        </form>
        <p className="mt-4 text-sm">
          {register ? (
            <>
              Already have an account? <Link to="/login" className="font-medium text-indigo-700 underline dark:text-indigo-300">Sign in</Link>
            </>
          ) : (
            <>
              New here? <Link to="/register" className="font-medium text-indigo-700 underline dark:text-indigo-300">Create an account</Link>
            </>
          )}
        </p>
      </Card>
    </div>
  );
}


function Field(props: {
  label: string;
  value: string;
  onChange: (value: string) => void;
  type?: string;
  autoComplete?: string;
  hint?: string | undefined;
}) {
  return (
    <TextField
      label={props.label}
      type={props.type ?? "text"}
      value={props.value}
      onChange={(e) => props.onChange(e.target.value)}
      autoComplete={props.autoComplete}
      hint={props.hint}
      required
    />
  );
}
