import { rmSync } from 'node:fs';
import { CHILD_BUNDLES } from './child.js';

/** vitest globalSetup: the children's bundles (see child.ts) go when the run ends. */
export function teardown(): void {
  rmSync(CHILD_BUNDLES, { recursive: true, force: true });
}
