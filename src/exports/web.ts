/** `tokenkeeper/web`: sign users in to a web app, on Web-standard Request and Response. */

export type { RequiresAuthOptions } from '../integrations/requires-auth.js';
export { requiresAuth } from '../integrations/requires-auth.js';
export type { WebAuth, WebAuthOptions } from '../integrations/web.js';
export { webAuth } from '../integrations/web.js';
