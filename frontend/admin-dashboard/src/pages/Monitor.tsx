import { useEffect, useState } from "react";
import { Alert, Card, describeError, formatTime, unwrap, useServices, type components } from "@realtimeorder/shared";

const REFRESH_MS = 5_000;

export function MonitorPage() {
  const { api } = useServices();
  const [kafka, setKafka] = useState<components["schemas"]["KafkaOut"] | null>(null);
  const [queues, setQueues] = useState<components["schemas"]["QueuesOut"] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    // One look at a time, the next one REFRESH_MS after the last answer: a slow broker never
    // piles up requests, and an older answer never replaces a newer one.
    let timer: ReturnType<typeof setTimeout> | undefined;
    let active = true;
    const load = () => {
      Promise.all([unwrap(api.GET("/analytics/kafka")), unwrap(api.GET("/analytics/queues"))])
        .then(([k, q]) => {
          if (!active) return;
          setKafka(k);
          setQueues(q);
          setError(null);
        })
        .catch((e: unknown) => active && setError(describeError(e)))
        .finally(() => {
          if (active) timer = setTimeout(load, REFRESH_MS);
        });
    };
    load();
    return () => {
      active = false;
      clearTimeout(timer);
    };
  }, [api]);

  const th = "px-3 py-2";
  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Kafka & RabbitMQ</h1>
      {error && <Alert>{error}</Alert>}
      {kafka && (
        <>
          <Card title={`Consumer groups (${kafka.bootstrap}, ${formatTime(kafka.observedAt)})`}>
            <div className="overflow-x-auto">
              <table className="w-full text-left text-sm">
                <thead><tr><th scope="col" className={th}>Group</th><th scope="col" className={th}>State</th><th scope="col" className={th}>Lag</th><th scope="col" className={th}>Topics</th></tr></thead>
                <tbody>
                  {kafka.groups.map((g) => (
                    <tr key={g.groupId} data-group={g.groupId} className="border-t border-slate-200 dark:border-slate-700">
                      <td className={`${th} font-mono text-xs`}>{g.groupId}</td>
                      <td className={th}>{g.state}</td>
                      <td className={`${th} font-semibold ${g.lag > 100 ? "text-red-700 dark:text-red-300" : ""}`}>{g.lag}</td>
                      <td className={`${th} text-xs`}>{g.topics.map((t) => `${t.topic} (${t.lag})`).join(", ")}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
          <Card title="Topics">
            <div className="overflow-x-auto">
              <table className="w-full text-left text-sm">
                <thead><tr><th scope="col" className={th}>Topic</th><th scope="col" className={th}>Messages</th><th scope="col" className={th}>Partitions</th></tr></thead>
                <tbody>
                  {kafka.topics.map((t) => (
                    <tr key={t.name} data-topic={t.name} className="border-t border-slate-200 dark:border-slate-700">
                      <td className={`${th} font-mono text-xs`}>{t.name}</td>
                      <td className={th}>{t.messages}</td>
                      <td className={th}>{t.partitions.length}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
        </>
      )}
      {queues && (
        <Card title={`RabbitMQ queues (vhost ${queues.vhost})`}>
          <div className="overflow-x-auto">
            <table className="w-full text-left text-sm">
              <thead><tr>{["Queue", "Ready", "Unacked", "Consumers", "Publish/s", "Deliver/s", "Ack/s"].map((h) => <th key={h} scope="col" className={th}>{h}</th>)}</tr></thead>
              <tbody>
                {queues.queues.map((q) => (
                  <tr key={q.name} data-queue={q.name} className="border-t border-slate-200 dark:border-slate-700">
                    <td className={`${th} font-mono text-xs`}>{q.name}</td>
                    <td className={`${th} ${q.ready > 0 && q.name.includes("dlq") ? "font-semibold text-red-700 dark:text-red-300" : ""}`}>{q.ready}</td>
                    <td className={th}>{q.unacknowledged}</td>
                    <td className={th}>{q.consumers}</td>
                    <td className={th}>{q.publishRate.toFixed(1)}</td>
                    <td className={th}>{q.deliverRate.toFixed(1)}</td>
                    <td className={th}>{q.ackRate.toFixed(1)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </Card>
      )}
    </div>
  );
}
