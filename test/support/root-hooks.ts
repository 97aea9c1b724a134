import { createTemplateDatabase, dropRunDatabases } from './databases.ts';

export async function mochaGlobalSetup(): Promise<void> {
  await createTemplateDatabase();
}

export async function mochaGlobalTeardown(): Promise<void> {
  await dropRunDatabases();
}
