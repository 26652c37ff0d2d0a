// The phone's core, in its dedicated worker (worker.js). Loaded by the page as a module of
// its own, so the worker starts (and compiles the WebAssembly, and opens the database) while
// the rest of the app is still loading; app.js imports the same instance.

const worker = new Worker('worker.js', { type: 'module' });
let nextId = 1;
const waiting = new Map();

worker.onmessage = ({ data }) => {
  const call = waiting.get(data.id);
  if (!call) return;
  if (data.progress) {
    call.progress?.(...data.progress);
    return;
  }
  waiting.delete(data.id);
  if (data.ok) call.resolve(data.value);
  else call.reject(Object.assign(new Error(data.error.message), data.error));
};

/** Calls a method of the core's Phone; `progress` receives sync or upload progress. */
export function core(method, args = [], progress) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject, progress });
    worker.postMessage({ id, method, args });
  });
}

/** Settles once the database is open (or could not be). */
export const opened = core('open', [location.origin]);
opened.catch(() => {}); // app.js reports it
