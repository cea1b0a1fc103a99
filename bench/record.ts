/** The record every store benchmark writes and reads: the shape of a stored session. */
export const record = {
  accessToken: 'a'.repeat(40),
  tokenType: 'Bearer',
  expiresAt: Date.now() + 3_600_000,
  refreshToken: 'r'.repeat(40),
  scope: 'read write',
};
