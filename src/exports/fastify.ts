/** `tokenkeeper/fastify`: the web sign-in as a Fastify 5 plugin. */

export type { FastifyAuthOptions } from '../integrations/fastify.js';
export { fastifyAuth, requiresAuth } from '../integrations/fastify.js';
export type { RequiresAuthOptions } from '../integrations/requires-auth.js';
