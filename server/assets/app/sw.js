// The field app's service worker: keeps the app shell and the core's WebAssembly so the app
// opens and works with the network off. Requests to the server's API (/v1/) are never
// cached: they go to the network or fail, and the core keeps everything until a sync.
// The core's files (content-hashed names) come from the build; a new build changes shell.js,
// so the browser installs this worker anew, caching the new build before it takes over.
importScripts('pkg/shell.js');
const CACHE = `xuncha-app-${self.CORE_FILES[1]}`;
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
  ...self.CORE_FILES,
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
// its next opening. The core's files change only with a new worker (above), all together: a
// glue script and a wasm of different builds never meet. What is not cached yet comes from
// the network.
self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (!url.pathname.startsWith('/app/')) return;
  if (url.pathname.startsWith('/app/pkg/')) {
    event.respondWith(caches.match(event.request, { ignoreSearch: true })
      .then((hit) => hit || fetch(event.request)));
    return;
  }
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
