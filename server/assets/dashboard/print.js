// The printable pages' print button (no inline script: the pages' Content Security Policy
// allows only the server's own files).
'use strict';
document.querySelectorAll('button[data-print]').forEach((b) => b.addEventListener('click', () => window.print()));
