// The phone's core runs here, in a dedicated worker: the database is a file in the Origin
// Private File System (only a worker may hold its sync access handles), and a long sync
// never blocks the page. The page sends {id, method, args}; every method is one of the
// core's (mobile-core/web), answered with {id, ok, value} or {id, ok: false, error}.
import init, { Phone } from './pkg/xuncha_web.js';

let phone = null;
let opening = null;

async function open(server) {
  await init();
  phone = await Phone.open(server);
}

function describe(err) {
  if (err && typeof err === 'object') {
    return {
      kind: err.kind || 'internal',
      message: err.message || String(err),
      message_en: err.message_en || err.message || String(err),
      code: err.code,
      status: err.status,
    };
  }
  return { kind: 'internal', message: String(err), message_en: String(err) };
}

/** Draws a photo's watermark lines where the core's layout says, with the phone's own fonts
 * (so the app carries no CJK font), and returns each band pixel's coverage for the core to
 * stamp. */
function drawText(layout, lines) {
  const { width, band_height: height, font_px: size, line_height: lineHeight, pad } = layout;
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.font = `${size}px sans-serif`;
  ctx.textBaseline = 'top';
  lines.forEach((line, n) => ctx.fillText(line, pad, pad + n * lineHeight, width - 2 * pad));
  const rgba = ctx.getImageData(0, 0, width, height).data;
  const coverage = new Uint8Array(width * height);
  for (let i = 0; i < coverage.length; i++) coverage[i] = rgba[i * 4 + 3];
  return coverage;
}

self.onmessage = async (event) => {
  const { id, method, args = [] } = event.data;
  try {
    let value;
    if (method === 'open') {
      opening ??= open(args[0]);
      try {
        await opening;
      } catch (err) {
        opening = null; // let the page try again (e.g. after another tab closed)
        throw err;
      }
    } else if (!phone) {
      throw { kind: 'storage', message: '本机数据库尚未打开', message_en: 'the database is not open' };
    } else if (method === 'add_photo') {
      // A browser without canvases in workers (Safari before 16.4) keeps the photo unstamped.
      const draw = typeof OffscreenCanvas === 'function' ? drawText : undefined;
      value = await phone.add_photo(args[0], args[1] || [], draw);
    } else if (method === 'sync' || method === 'upload_photos') {
      // Progress goes to the page as it happens.
      value = await phone[method]((...progress) => self.postMessage({ id, progress }));
    } else if (typeof phone[method] === 'function') {
      value = await phone[method](...args);
    } else {
      throw { kind: 'invalid', message: `没有操作 ${method}`, message_en: `no method ${method}` };
    }
    self.postMessage({ id, ok: true, value });
  } catch (err) {
    self.postMessage({ id, ok: false, error: describe(err) });
  }
};
