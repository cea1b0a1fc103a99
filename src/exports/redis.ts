/** `tokenkeeper/redis`: the Redis store, on ioredis. */

export type { RedisStoreOptions } from '../store/redis/index.js';
export { escapeGlob, redisStore } from '../store/redis/index.js';
