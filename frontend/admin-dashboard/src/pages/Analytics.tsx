import { useEffect, useState } from "react";
import { Bar, BarChart, CartesianGrid, Cell, Legend, Line, LineChart, Pie, PieChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Alert, Card, SelectField, TextField, describeError, formatMoney, unwrap, useServices, type components } from "@realtimeorder/shared";

type Granularity = components["schemas"]["Granularity"];
type Reports = {
  dashboard: components["schemas"]["Dashboard"];
  orders: components["schemas"]["OrdersPerDay"];
  revenue: components["schemas"]["Revenue"];
  statuses: components["schemas"]["StatusDistribution"];
};

const COLOURS = ["#6366f1", "#0ea5e9", "#10b981", "#f59e0b", "#ef4444", "#64748b"];
// Legends name the series in the text colour (their swatches carry the series' colours): the
// light colours of the series are too faint for text on a white card.
const legendText = (value: string) => <span className="text-slate-700 dark:text-slate-200">{value}</span>;
const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

export default function AnalyticsPage() {
  const { api } = useServices();
  const [from, setFrom] = useState(day(-13));
  const [to, setTo] = useState(day(0));
  const [granularity, setGranularity] = useState<Granularity>("day");
  const [reports, setReports] = useState<Reports | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    // Changing the range while reports load asks again: only the newest range's answer shows.
    let current = true;
    const query = { from, to, granularity };
    Promise.all([
      unwrap(api.GET("/analytics/dashboard", { params: { query } })),
      unwrap(api.GET("/analytics/orders-per-day", { params: { query } })),
      unwrap(api.GET("/analytics/revenue", { params: { query } })),
      unwrap(api.GET("/analytics/status-distribution", { params: { query } })),
    ])
      .then(([dashboard, orders, revenue, statuses]) => {
        if (!current) return;
        setReports({ dashboard, orders, revenue, statuses });
        setError(null);
      })
      .catch((e: unknown) => current && setError(describeError(e)));
    return () => {
      current = false;
    };
  }, [api, from, to, granularity]);

  const revenueRows = reports
    ? reports.orders.points.map((p) => ({
        period: p.period,
        ...Object.fromEntries(reports.revenue.currencies.map((c) => [c.currency, Number(c.points.find((r) => r.period === p.period)?.revenue ?? 0)])),
      }))
    : [];

  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Analytics</h1>
      <Card>
        <div className="grid gap-3 sm:grid-cols-3">
          <TextField label="From" type="date" value={from} max={to} onChange={(e) => setFrom(e.target.value)} />
          <TextField label="To" type="date" value={to} min={from} onChange={(e) => setTo(e.target.value)} />
          <SelectField label="Per" value={granularity} onChange={(e) => setGranularity(e.target.value as Granularity)}>
            <option value="day">Day</option>
            <option value="week">Week</option>
            <option value="month">Month</option>
          </SelectField>
        </div>
      </Card>
      {error && <Alert>{error}</Alert>}
      {reports && (
        <>
          {!reports.dashboard.sources.prometheus.available && (
            <Alert tone="info">Live rates are unavailable (Prometheus did not answer); the counts below are exact.</Alert>
          )}
          <dl className="grid gap-3 sm:grid-cols-2 lg:grid-cols-4">
            {Object.entries(reports.dashboard.figures).map(([name, figure]) => (
              <div key={name} data-figure={name} className="rounded-lg border border-slate-200 bg-white p-3 dark:border-slate-700 dark:bg-slate-900">
                <dt className="text-xs uppercase tracking-wide text-slate-600 dark:text-slate-400">{name.replace(/([A-Z])/g, " $1")}</dt>
                <dd className="text-2xl font-bold">{figure.value === null ? "—" : Number(figure.value.toFixed(2))} <span className="text-sm font-normal">{figure.unit}</span></dd>
              </div>
            ))}
            {reports.revenue.currencies.map((c) => (
              <div key={c.currency} data-figure={`revenue-${c.currency}`} className="rounded-lg border border-slate-200 bg-white p-3 dark:border-slate-700 dark:bg-slate-900">
                <dt className="text-xs uppercase tracking-wide text-slate-600 dark:text-slate-400">Revenue {c.currency}</dt>
                <dd className="text-2xl font-bold">{formatMoney(c.total, c.currency)}</dd>
              </div>
            ))}
          </dl>
          <div className="grid gap-4 lg:grid-cols-2">
            <Card title={`Orders per ${granularity}`}>
              <div className="h-64" role="img" aria-label={`Orders per ${granularity}: ${reports.orders.total} in all`}>
                <ResponsiveContainer>
                  <BarChart data={reports.orders.points}>
                    <CartesianGrid strokeDasharray="3 3" opacity={0.3} />
                    <XAxis dataKey="period" fontSize={12} />
                    <YAxis allowDecimals={false} fontSize={12} />
                    <Tooltip />
                    <Legend formatter={legendText} />
                    <Bar dataKey="confirmed" stackId="a" fill={COLOURS[2]} name="Confirmed or later" />
                    <Bar dataKey="failed" stackId="a" fill={COLOURS[4]} name="Failed" />
                    <Bar dataKey="cancelled" stackId="a" fill={COLOURS[3]} name="Cancelled" />
                  </BarChart>
                </ResponsiveContainer>
              </div>
            </Card>
            <Card title="Revenue">
              <div className="h-64" role="img" aria-label="Revenue per period and currency">
                <ResponsiveContainer>
                  <LineChart data={revenueRows}>
                    <CartesianGrid strokeDasharray="3 3" opacity={0.3} />
                    <XAxis dataKey="period" fontSize={12} />
                    <YAxis fontSize={12} />
                    <Tooltip />
                    <Legend formatter={legendText} />
                    {reports.revenue.currencies.map((c, i) => (
                      <Line key={c.currency} dataKey={c.currency} stroke={COLOURS[i % COLOURS.length]} strokeWidth={2} dot={false} />
                    ))}
                  </LineChart>
                </ResponsiveContainer>
              </div>
            </Card>
            <Card title="Status distribution">
              <div className="h-64" role="img" aria-label={`Status distribution: ${reports.statuses.statuses.map((s) => `${s.status} ${s.orders}`).join(", ")}`}>
                <ResponsiveContainer>
                  <PieChart>
                    <Pie data={reports.statuses.statuses.filter((s) => s.orders > 0)} dataKey="orders" nameKey="status" outerRadius={90} label>
                      {reports.statuses.statuses.map((s, i) => s.orders > 0 && <Cell key={s.status} fill={COLOURS[i % COLOURS.length]} />)}
                    </Pie>
                    <Tooltip />
                    <Legend formatter={legendText} />
                  </PieChart>
                </ResponsiveContainer>
              </div>
            </Card>
          </div>
        </>
      )}
    </div>
  );
}
