// The docs' "Write your own store" example (docs/guide/stores.md), held to the same contract as the built-in stores.

import { ConditionalTable, conditionalTableStore } from '../examples/conditional-table-store.js';
import { describeStoreConformance } from '../src/exports/testing.js';
import type { Store } from '../src/store/types.js';

let n = 0;
const tables = new WeakMap<Store, { table: ConditionalTable; namespace: string }>();

describeStoreConformance(
  'conditionalTableStore (examples/)',
  () => {
    // Two stores on one table, so namespaces are tested too.
    const table = new ConditionalTable();
    const namespace = `app${n++}`;
    conditionalTableStore({ table, namespace: 'other' }).set('k', { noise: true });
    const store = conditionalTableStore({ table, namespace });
    tables.set(store, { table, namespace });
    return store;
  },
  {
    listCount: 500,
    corrupt: async (store, key) => {
      const { table, namespace } = tables.get(store) as { table: ConditionalTable; namespace: string };
      await table.put(`${namespace}#r#${key}`, { written: 'by another program' });
    },
  },
);
