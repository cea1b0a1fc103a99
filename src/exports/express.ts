/** `tokenkeeper/express`: the web sign-in as Express 5 middleware. */

export type { ExpressAuthOptions, ExpressRequest } from '../integrations/express.js';
export { expressAuth, requiresAuth } from '../integrations/express.js';
export type { RequiresAuthOptions } from '../integrations/requires-auth.js';

import type { Session } from '../session/session.js';

declare global {
  // Express's own extension point (its types declare `Express.Request`, which its `Request`
  // extends): importing tokenkeeper/express types `req.tokenkeeper` in every route, strict
  // TypeScript included, with no cast. Harmless without @types/express.
  namespace Express {
    interface Request {
      /** The signed-in user's session, or `undefined`: set on every request by `expressAuth()`. */
      tokenkeeper?: Session;
    }
  }
}
