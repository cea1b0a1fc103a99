// Placeholder until the session demo lands: the file store, used directly.
import { fileStore } from '../src/file.js';

const store = fileStore({ path: new URL('../.tokenkeeper-demo/store', import.meta.url).pathname });
const previous = await store.get('demo');
const runs = ((previous?.value.runs as number | undefined) ?? 0) + 1;
await store.set('demo', { runs });
console.log(`This demo has run ${runs} time(s); the count lives in ${store.name}.`);
