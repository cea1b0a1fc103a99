/** `tokenkeeper/express`: the web sign-in as Express 5 middleware. */

export type { ExpressAuthOptions, ExpressRequest } from '../integrations/express.js';
export { expressAuth } from '../integrations/express.js';
