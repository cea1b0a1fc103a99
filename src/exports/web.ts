/** `tokenkeeper/web`: sign users in to a web app, on Web-standard Request and Response. */

export type { WebAuth, WebAuthOptions } from '../integrations/web.js';
export { webAuth } from '../integrations/web.js';
