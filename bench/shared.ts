// Small helpers the bench scripts share (run.ts through harness.ts, memory.ts, cleanup.ts,
// audit-export.ts), with no side effects of their own.
import pg from 'pg';

/** A setting from the environment that must be a positive whole number, or its default. */
export function positiveInteger(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive whole number (got "${raw}")`);
  return value;
}

/** Runs `work` on one connection to the database at `url`, closed afterwards whatever happens. */
export async function onPostgres<T>(url: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Runs `work` on the server's `postgres` database (to create and drop the run's own). */
export function withPostgres<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  return onPostgres(`${serverUrl}/postgres`, work);
}
