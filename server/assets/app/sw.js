// The field app's service worker: keeps the app shell and the core's WebAssembly so the app
// opens and works with the network off. Requests to the server's API (/v1/) are never
// cached: they go to the network or fail, and the core keeps everything until a sync.
const CACHE = 'xuncha-app-v1';
const SHELL = [
  './',
  'index.html',
  'app.css',
  'app.js',
  'core.js',
  'i18n.js',
  'worker.js',
  'manifest.webmanifest',
  'icon.svg',
  'icon-192.png',
  'icon-512.png',
  'vendor/jsqr/jsQR.js',
  'pkg/xuncha_web.js',
  'pkg/xuncha_web_bg.wasm',
];

self.addEventListener('install', (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// The app's own files: from the cache at once (the app opens as fast offline as on a slow
// network), refreshed from the network behind it, so an upgraded server reaches the phone at
// its next opening. What is not cached yet comes from the network.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith('/app/')) return;
  const refresh = fetch(event.request).then((response) => {
    if (response.ok) {
      const copy = response.clone();
      caches.open(CACHE).then((cache) => cache.put(event.request, copy));
    }
    return response;
  });
  event.respondWith(
    caches.match(event.request, { ignoreSearch: true }).then((hit) => {
      if (hit) {
        event.waitUntil(refresh.catch(() => {}));
        return hit;
      }
      return refresh.catch(() => caches.match('index.html'));
    }),
  );
});
