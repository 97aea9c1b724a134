import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder holding package.json, whether this runs from src/ or from the build in dist/. */
function findProjectRoot(): string {
  let directory = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(directory, 'package.json'))) {
    const parent = path.dirname(directory);
    if (parent === directory) throw new Error('package.json not found above the running code');
    directory = parent;
  }
  return directory;
}

export const PROJECT_ROOT = findProjectRoot();
export const VIEWS_DIRECTORY = path.join(PROJECT_ROOT, 'views');
