import { defineConfig } from 'vitepress';

// `npm run docs` builds this site to docs/.vitepress/dist (the API reference comes from TypeDoc,
// into docs/public/api). test/docs.browser.test.ts opens every page in Chromium.
export default defineConfig({
  title: 'tokenkeeper',
  description: 'Keep OAuth 2 tokens and API sessions safe, fresh and shared.',
  cleanUrls: false,
  lastUpdated: false,
  // Pages link to the TypeDoc reference, which VitePress does not build itself.
  ignoreDeadLinks: [/^\/api\//],
  themeConfig: {
    nav: [
      { text: 'Guides', link: '/guide/server-app' },
      { text: 'Security', link: '/security' },
      { text: 'Operations', link: '/operations' },
      { text: 'Troubleshooting', link: '/troubleshooting' },
      { text: 'API', link: '/api/index.html', target: '_self' },
    ],
    sidebar: [
      {
        text: 'Guides',
        items: [
          { text: 'A server app', link: '/guide/server-app' },
          { text: 'A CLI or desktop app', link: '/guide/cli-apps' },
          { text: 'A single-page app', link: '/guide/browser' },
          { text: 'Web apps (sign users in)', link: '/guide/web-apps' },
          { text: 'SDK drop-ins', link: '/guide/sdk-drop-ins' },
          { text: 'MCP clients', link: '/guide/mcp' },
        ],
      },
      {
        text: 'Reference',
        items: [
          { text: 'Sessions', link: '/guide/sessions' },
          { text: 'Logging in', link: '/guide/login' },
          { text: 'Stores', link: '/guide/stores' },
          { text: 'DPoP', link: '/guide/dpop' },
          { text: 'Servers in the wild', link: '/guide/servers' },
          { text: 'API (TypeDoc)', link: '/api/index.html', target: '_self' },
        ],
      },
      {
        text: 'Running it',
        items: [
          { text: 'Security model', link: '/security' },
          { text: 'Operations', link: '/operations' },
          { text: 'Troubleshooting by error code', link: '/troubleshooting' },
          { text: 'Benchmarks', link: '/benchmarks' },
          { text: 'Development', link: '/development' },
        ],
      },
    ],
    search: { provider: 'local' },
  },
});
