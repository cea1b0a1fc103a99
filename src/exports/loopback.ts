/** `tokenkeeper/loopback`: log in through the system browser and a 127.0.0.1 redirect (Node.js). */

export type { LoginWithBrowserOptions } from '../session/login/loopback.js';
export { loginWithBrowser } from '../session/login/loopback.js';
