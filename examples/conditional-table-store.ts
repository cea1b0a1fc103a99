/**
 * A store of your own, written with `tokenkeeper/store-kit` on a table that offers what
 * DynamoDB (and Cosmos DB, Firestore, etcd...) offers: get, put and delete by key, each with a
 * condition on the item already there. `ConditionalTable` stands in for the database so this
 * file runs anywhere; each of its calls names the DynamoDB request it maps to.
 * test/custom-store.conformance.test.ts runs the conformance suite on it.
 */
import {
  assertValidKey,
  assertValidPrefix,
  checkDeleteOptions,
  checkSetOptions,
  closedError,
  copyRecord,
  corruptRecord,
  createLease,
  isPlainObject,
  lockOptions,
  planDelete,
  planSet,
  pollLock,
  randomToken,
  readStored,
  type Store,
  type StoreEntry,
  TokenkeeperError,
  versionConflict,
} from '../src/exports/store-kit.js';

/** One item of the table: a record (`v`, `d`, `e`) or a lock (`token`, `until`). */
type Item = Record<string, unknown>;

/** What a conditional request checks: the item is absent, or its `field` holds `equals`. */
type Condition = { absent: true } | { field: string; equals: unknown } | { field: string; below: number };

/** A conditional put or delete found something else: DynamoDB's ConditionalCheckFailedException. */
export class ConditionFailed extends Error {}

/** The database: a table of items by key, with conditional writes. */
export class ConditionalTable {
  readonly items = new Map<string, Item>();

  /** GetItem with ConsistentRead. */
  async get(key: string): Promise<Item | undefined> {
    const item = this.items.get(key);
    return item && structuredClone(item);
  }

  /** PutItem with a ConditionExpression (`attribute_not_exists(pk) OR v = :v`). */
  async put(key: string, item: Item, ...anyOf: Condition[]): Promise<void> {
    this.#check(key, anyOf);
    this.items.set(key, structuredClone(item));
  }

  /** DeleteItem with a ConditionExpression; true if there was an item. */
  async delete(key: string, ...anyOf: Condition[]): Promise<boolean> {
    this.#check(key, anyOf);
    return this.items.delete(key);
  }

  /** Query on the partition, `begins_with(pk, :prefix)`, page by page. */
  async *scan(prefix: string): AsyncIterable<string> {
    for (const key of [...this.items.keys()]) if (key.startsWith(prefix)) yield key;
  }

  #check(key: string, anyOf: Condition[]): void {
    if (anyOf.length === 0) return;
    const item = this.items.get(key);
    const holds = (c: Condition) =>
      'absent' in c
        ? item === undefined
        : item !== undefined &&
          ('equals' in c
            ? item[c.field] === c.equals
            : typeof item[c.field] === 'number' && (item[c.field] as number) < c.below);
    if (!anyOf.some(holds)) throw new ConditionFailed(`condition failed on ${key}`);
  }
}

/**
 * The store. Records live under `r#<key>`, locks under `l#<key>`, and `namespace` keeps stores
 * sharing one table apart.
 */
export function conditionalTableStore(options: { table: ConditionalTable; namespace?: string }): Store {
  const { table } = options;
  const ns = `${options.namespace ?? 'tokenkeeper'}#`;
  const name = `table:${ns}`;
  let closed = false;
  const open = () => {
    if (closed) throw closedError(name);
  };

  /** The entry in `item`, `undefined` for none or an expired one; what is not a record is corrupt. */
  const entryOf = (key: string, item: Item | undefined): StoreEntry | undefined => {
    if (item === undefined) return undefined;
    const { v, d, e } = item;
    if (!Number.isSafeInteger(v) || (v as number) < 1 || !isPlainObject(d) || (e !== null && typeof e !== 'number')) {
      throw corruptRecord(key, name, 'item');
    }
    if (typeof e === 'number' && e <= Date.now()) return undefined;
    return typeof e === 'number'
      ? { value: d as StoreEntry['value'], version: v as number, expiresAt: e }
      : { value: d as StoreEntry['value'], version: v as number };
  };
  /** A conditional put: false when the condition failed. */
  const tryPut = async (id: string, item: Item, ...anyOf: Condition[]): Promise<boolean> => {
    try {
      await table.put(id, item, ...anyOf);
      return true;
    } catch (error) {
      if (error instanceof ConditionFailed) return false;
      throw error;
    }
  };
  /** A conditional delete that leaves an item failing the condition alone. */
  const deleteIf = async (id: string, condition: Condition): Promise<void> => {
    await table.delete(id, condition).catch((error) => {
      if (!(error instanceof ConditionFailed)) throw error;
    });
  };
  /** The condition that what we read is still there: the same version, or still nothing live. */
  const unchanged = (item: Item | undefined): Condition[] =>
    item === undefined ? [{ absent: true }] : [{ field: 'v', equals: item.v }];

  return {
    name,
    capabilities: { crossProcessLock: true },

    async get(key) {
      open();
      assertValidKey(key);
      return entryOf(key, await table.get(`${ns}r#${key}`));
    },

    async set(key, value, setOptions) {
      open();
      assertValidKey(key);
      checkSetOptions(setOptions, Date.now());
      const d = copyRecord(value);
      // Optimistic: read, decide with the kit, write on condition that nothing changed since.
      for (;;) {
        const item = await table.get(`${ns}r#${key}`);
        const stored = await readStored(async () => entryOf(key, item));
        const v = planSet(key, stored, setOptions, Number(item?.v) || 0); // never repeats
        const e = checkSetOptions(setOptions, Date.now()) ?? null;
        try {
          await table.put(`${ns}r#${key}`, { v, d, e }, ...unchanged(item));
          return v;
        } catch (error) {
          if (!(error instanceof ConditionFailed)) throw error;
          if (setOptions?.ifVersion !== undefined) {
            const now = await readStored(async () => entryOf(key, await table.get(`${ns}r#${key}`)));
            if (now !== undefined && 'corrupt' in now) throw now.corrupt;
            throw versionConflict(key, setOptions.ifVersion, now?.version ?? 0);
          }
          // Without ifVersion another writer simply came first: decide again on what it wrote.
        }
      }
    },

    async delete(key, deleteOptions) {
      open();
      assertValidKey(key);
      checkDeleteOptions(deleteOptions);
      const item = await table.get(`${ns}r#${key}`);
      const live = planDelete(key, await readStored(async () => entryOf(key, item)), deleteOptions);
      try {
        await table.delete(`${ns}r#${key}`, ...(deleteOptions?.ifVersion === undefined ? [] : unchanged(item)));
      } catch (error) {
        if (!(error instanceof ConditionFailed)) throw error;
        throw versionConflict(
          key,
          deleteOptions?.ifVersion as number,
          Number((await table.get(`${ns}r#${key}`))?.v) || 0,
        );
      }
      return live;
    },

    async *keys(prefix = '') {
      open();
      assertValidPrefix(prefix);
      const start = `${ns}r#`;
      for await (const k of table.scan(start + prefix)) {
        const key = k.slice(start.length);
        try {
          if (entryOf(key, await table.get(k)) === undefined) continue; // expired
        } catch (error) {
          if (!(error instanceof TokenkeeperError)) throw error; // corrupt: listed, so it can be found
        }
        yield key;
      }
    },

    async lock(key, lockOpts) {
      open();
      assertValidKey(key);
      lockOptions(lockOpts); // bad options fail before any waiting
      const id = `${ns}l#${key}`;
      const token = randomToken();
      let takenAt = 0;
      // Take: put our token if there is no lock item, or the one there ran out.
      const length = await pollLock(key, lockOpts, async (leaseMs) => {
        takenAt = Date.now();
        return (await tryPut(
          id,
          { token, until: takenAt + leaseMs },
          { absent: true },
          { field: 'until', below: takenAt },
        ))
          ? leaseMs
          : undefined;
      });
      // Release and renew only while the item still carries our token.
      const ours = { field: 'token', equals: token };
      return createLease(key, length, takenAt, {
        release: () => deleteIf(id, ours),
        renew: (ms) => tryPut(id, { token, until: Date.now() + ms }, ours),
      });
    },

    async close() {
      closed = true;
    },
  };
}
