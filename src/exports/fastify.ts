/** `tokenkeeper/fastify`: the web sign-in as a Fastify 5 plugin. */

export type { FastifyAuthOptions } from '../integrations/fastify.js';
export { fastifyAuth } from '../integrations/fastify.js';
