// `npm run bench`: every figure is a ratio against a baseline measured in the same run.
import { benchBrowser } from './browser.js';
import { benchList } from './list.js';
import { benchMany } from './many.js';
import { benchServerStores } from './server-stores.js';
import { benchHotPath, benchSessions } from './sessions.js';
import { benchStall } from './stall.js';
import { benchStores } from './stores.js';

const only = process.argv[2];
const groups: Record<string, () => Promise<void>> = {
  stores: benchStores,
  'server-stores': benchServerStores,
  sessions: benchSessions,
  hot: benchHotPath,
  stall: benchStall,
  many: benchMany,
  list: benchList,
  browser: benchBrowser,
};

for (const [name, run] of Object.entries(groups)) {
  // `many` and `list` run only when named (minutes of fleets, 100,000 records); `hot` is part of `sessions`.
  if (only ? only !== name : name === 'many' || name === 'list' || name === 'hot') continue;
  await run();
}
