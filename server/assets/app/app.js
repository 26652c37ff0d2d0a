// The grid worker's field app: screens only. Every rule (checklists and which items apply,
// hazards found, deadlines, due lists, merge, sync) is the shared Rust core, running in
// worker.js; this page asks it and shows the answers. Text is always set as text, never as
// HTML.
import { TEXT } from './i18n.js';

// ---- the core, in its worker (core.js starts it before this module has loaded) ----

import { core, opened } from './core.js';

// ---- language ----

let lang = localStorage.getItem('xuncha-lang') || 'zh';
const t = (key, ...args) => {
  const value = TEXT[lang][key] ?? TEXT.zh[key] ?? key;
  return typeof value === 'function' ? value(...args) : value;
};
const label = (group, key) => TEXT[lang][group]?.[key] ?? key;
const text = (bilingual) => (bilingual ? (lang === 'en' ? bilingual.en : bilingual.zh) : '');
const errorText = (err) => (lang === 'en' ? err.message_en || err.message : err.message);

// ---- DOM ----

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else el.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const view = document.getElementById('view');
function show(...children) {
  view.replaceChildren(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  window.scrollTo(0, 0);
}

function banner(message) {
  const el = document.getElementById('banner');
  el.hidden = !message;
  el.textContent = message || '';
}

function today() {
  // China local date (UTC+8), as the core counts days.
  return new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
}

function when(ms) {
  return ms ? new Date(ms).toLocaleString(lang === 'en' ? 'en-GB' : 'zh-CN') : t('never');
}

// ---- network state ----

function showNet() {
  const el = document.getElementById('net');
  el.textContent = navigator.onLine ? t('online') : t('offline');
  el.classList.toggle('offline', !navigator.onLine);
}
window.addEventListener('online', () => { showNet(); syncQuietly(); });
window.addEventListener('offline', showNet);

// ---- position ----

/** The phone's position as a geotag, or an error message. */
function locate() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) {
      resolve({ error: 'no geolocation' });
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (pos) => resolve({
        geotag: {
          lat: pos.coords.latitude,
          lon: pos.coords.longitude,
          accuracy_m: Math.max(pos.coords.accuracy || 0, 1),
          // Browsers combine satellite, Wi-Fi and cell fixes without saying which.
          source: 'fused',
          mock: false,
          fix_time_ms: Math.round(pos.timestamp || Date.now()),
        },
      }),
      (err) => resolve({ error: err.message }),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 },
    );
  });
}

// ---- photos ----

const objectUrls = [];
async function thumbnail(sha256) {
  try {
    const bytes = await core('fetch_photo', [sha256, true]);
    const url = URL.createObjectURL(new Blob([bytes], { type: 'image/jpeg' }));
    objectUrls.push(url);
    return h('img', { src: url, alt: '', 'data-sha256': sha256 });
  } catch {
    return h('span', { class: 'muted' }, t('photo'));
  }
}

/** What a photo is stamped with (水印): when (China time), where, which shop. */
function watermarkLines(premises, geotag) {
  const lines = [new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 16).replace('T', ' ')];
  if (geotag) {
    lines.push(`${geotag.lat.toFixed(5)}, ${geotag.lon.toFixed(5)} ±${Math.round(geotag.accuracy_m)} m`);
  }
  if (premises) lines.push(`${premises.name} ${premises.address || ''}`.trim());
  return lines;
}

/** A camera button; each picture goes through the core's photo pipeline, stamped with the
 * lines `marks()` gives at that moment. */
function photoButton(onPhoto, status, marks) {
  const input = h('input', { type: 'file', accept: 'image/*', capture: 'environment' });
  input.addEventListener('change', async () => {
    for (const file of input.files) {
      try {
        const bytes = new Uint8Array(await file.arrayBuffer());
        const photo = await core('add_photo', [bytes, marks()]);
        await onPhoto(photo);
      } catch (err) {
        status.textContent = errorText(err);
        status.className = 'error';
      }
    }
    input.value = '';
  });
  return h('span', { class: 'button file' }, t('photo'), input);
}

// ---- screens ----

let session = null; // {user, ...status}

async function refreshStatus() {
  session = await core('status');
  return session;
}

function signInScreen(message) {
  document.getElementById('tabs').hidden = true;
  const server = h('input', { value: location.origin, readonly: true, name: 'server' });
  const user = h('input', { name: 'user', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const device = h('input', { name: 'device', value: navigator.userAgentData?.platform || '' });
  const status = h('p', { class: message ? 'error' : 'muted' }, message || t('sign_in_hint'));
  const button = h('button', { class: 'primary', type: 'submit' }, t('sign_in'));
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      button.disabled = true;
      try {
        await core('enroll', [user.value.trim(), password.value, device.value.trim() || null]);
        await askForLastingStorage();
        await refreshStatus();
        if (location.hash === '#/today') await route();
        else location.hash = '#/today';
        syncQuietly();
      } catch (err) {
        status.className = 'error';
        status.textContent = errorText(err);
      } finally {
        button.disabled = false;
      }
    },
  },
  h('label', {}, t('server')), server,
  h('label', {}, t('user')), user,
  h('label', {}, t('password')), password,
  h('label', {}, t('device_name')), device,
  h('p'), button, status);
  show(h('h1', {}, t('sign_in')), h('div', { class: 'card' }, form));
}

async function askForLastingStorage() {
  if (!navigator.storage?.persist) return;
  const granted = (await navigator.storage.persisted()) || (await navigator.storage.persist());
  if (!granted) banner(t('storage_refused'));
}

let syncing = false;
let lastSyncMessage = null; // [text, class] of the last sync, shown on the start screen

/** Syncs, then uploads photos; says how it goes in #sync-status wherever the worker is. */
async function runSync() {
  if (syncing) return;
  syncing = true;
  const say = (message, cls = 'muted') => {
    lastSyncMessage = [message, cls];
    const el = document.getElementById('sync-status');
    if (el) {
      el.textContent = message;
      el.className = cls;
    }
  };
  const button = () => document.getElementById('sync');
  if (button()) button().disabled = true;
  try {
    say(t('syncing'));
    const report = await core('sync', [], (p) => {
      if (p.phase === 'push') say(t('progress_push', p.pushed, p.to_push));
      else if (p.phase === 'pull') say(t('progress_pull', p.pulled));
    });
    let message = t('sync_done', report);
    const photos = await core('upload_photos', [], (done, total) => say(`${t('upload_photos')} ${done}/${total}`));
    message += ' · ' + t('upload_done', photos);
    say(message, 'ok');
  } catch (err) {
    say(errorText(err), 'error');
    if (err.kind === 'server' && err.status === 401) {
      signInScreen(errorText(err));
      return;
    }
  } finally {
    syncing = false;
    if (button()) button().disabled = false;
  }
  // What the sync brought in shows at once on the start screen.
  if (!location.hash || location.hash.startsWith('#/today')) await route();
}

async function syncQuietly() {
  if (navigator.onLine && session?.user) await runSync();
}

/** Due-list entries shown at a time. */
const DUE_PAGE = 50;

async function todayScreen() {
  const status = await refreshStatus();
  const due = await core('due', [Date.now()]);
  const premises = new Map((await core('list_premises', [false])).map((p) => [p.id, p]));
  const syncStatus = h('p', { id: 'sync-status', class: lastSyncMessage ? lastSyncMessage[1] : 'muted' },
    syncing ? t('syncing') : lastSyncMessage?.[0] ?? '');
  const summary = h('div', { class: 'card' },
    h('div', { class: 'row' },
      h('span', { class: 'grow' }, t('signed_in_as'), ' ', h('b', {}, status.user))),
    h('p', { class: 'muted' }, `${t('last_sync')}: ${when(status.last_sync_ms)}`),
    h('div', { class: 'row' },
      h('span', { class: 'grow', id: 'pending-ops' }, `${t('pending_ops')}: ${status.pending_ops}`),
      h('span', { class: 'grow', id: 'pending-photos' }, `${t('pending_photos')}: ${status.pending_photos}`)),
    status.set_aside ? h('div', { class: 'error', id: 'set-aside' },
      h('p', {}, `${t('set_aside')}: ${status.set_aside}`),
      (await core('set_aside_changes')).map((c) => h('p', { class: 'muted' }, lang === 'en' ? c.message_en : c.message))) : null,
    h('button', { class: 'primary', id: 'sync', disabled: syncing, onclick: () => runSync() }, t('sync')),
    syncStatus);
  const dueCard = (d) => {
    const p = premises.get(d.premises_id);
    const href = d.hazard_id ? `#/hazard/${encodeURIComponent(d.hazard_id)}` : `#/premises/${encodeURIComponent(d.premises_id)}`;
    return h('a', { class: 'card link due-item', href },
      h('div', { class: 'row' },
        h('b', { class: 'grow' }, p ? p.name : d.premises_id),
        d.major ? h('span', { class: 'tag major' }, label('severity', 'major')) : null),
      h('div', { class: 'row' },
        h('span', { class: 'grow' }, label('due_kind', d.kind),
          d.campaign ? h('span', { class: 'campaign' }, `：${d.campaign.name}（${d.campaign.checklists.map((k) => label('checklist_kind', k)).join('、')}）`) : null),
        d.overdue_days > 0
          ? h('span', { class: 'tag overdue' }, t('overdue_days', d.overdue_days))
          : h('span', { class: 'tag due' }, t('due_on', d.due_on))),
      p ? h('div', { class: 'muted' }, p.address) : null);
  };
  // Most urgent first, a page at a time: a grid of thousands of shops must not hold the
  // screen while tens of thousands of cards are laid out.
  const dueList = h('div', { id: 'due-list' });
  const more = h('button', { type: 'button', class: 'small', id: 'due-more' });
  let shown = 0;
  const showMore = () => {
    dueList.append(...due.slice(shown, shown + DUE_PAGE).map(dueCard));
    shown = Math.min(due.length, shown + DUE_PAGE);
    more.hidden = shown >= due.length;
    more.textContent = t('show_more', due.length - shown);
  };
  more.addEventListener('click', showMore);
  showMore();
  // The overdue count on the app's icon, where the browser allows it.
  const overdue = due.filter((d) => d.overdue_days > 0).length;
  if (navigator.setAppBadge) {
    (overdue ? navigator.setAppBadge(overdue) : navigator.clearAppBadge()).catch(() => {});
  }
  const reminderStatus = h('span', { class: 'muted', id: 'reminder-status' });
  const reminders = h('div', { class: 'card row' },
    h('span', { class: 'grow' }, t('morning_reminder')),
    h('button', { type: 'button', class: 'small', id: 'reminders-on', onclick: () => setReminders(true, reminderStatus) }, t('turn_on')),
    h('button', { type: 'button', class: 'small', id: 'reminders-off', onclick: () => setReminders(false, reminderStatus) }, t('turn_off')),
    reminderStatus);
  show(h('h1', {}, t('today')), summary, h('h2', {}, `${t('due_list')} (${due.length})`),
    due.length ? [dueList, more] : h('p', { class: 'muted' }, t('nothing_due')), reminders);
}

async function setReminders(on, statusEl) {
  try {
    await core('set_reminders', [on]);
    statusEl.className = 'ok';
    statusEl.textContent = on ? t('reminders_on') : t('reminders_off');
  } catch (err) {
    statusEl.className = 'error';
    statusEl.textContent = errorText(err);
  }
}

async function premisesScreen() {
  const all = await core('list_premises', [false]);
  const list = h('div', { id: 'premises-list' });
  const search = h('input', { type: 'search', placeholder: t('search'), 'aria-label': t('search') });
  const render = () => {
    const q = search.value.trim().toLowerCase();
    const shown = all.filter((p) => !q || p.name.toLowerCase().includes(q) || p.address.toLowerCase().includes(q));
    list.replaceChildren(...(shown.length ? shown.slice(0, 200).map((p) =>
      h('a', { class: 'card link', href: `#/premises/${encodeURIComponent(p.id)}` },
        h('b', {}, p.name), h('div', { class: 'muted' }, `${label('premises_kind', p.kind)} · ${p.address}`)))
      : [h('p', { class: 'muted' }, t('no_premises'))]));
  };
  search.addEventListener('input', render);
  render();
  show(h('h1', {}, t('premises')),
    h('div', { class: 'row' },
      h('a', { class: 'button grow', href: '#/premises-new' }, '＋ ', t('add_premises')),
      h('a', { class: 'button grow', href: '#/scan' }, t('scan'))),
    h('p'), search, h('p'), list);
}

function field(name, labelText, input) {
  input.name = name;
  return [h('label', { for: name }, labelText), Object.assign(input, { id: name })];
}

async function newPremisesScreen() {
  const grids = await core('grids');
  const kinds = Object.keys(TEXT.zh.premises_kind);
  const gas = Object.keys(TEXT.zh.gas);
  const inputs = {
    name: h('input', { required: true }),
    address: h('input', { required: true }),
    kind: h('select', {}, kinds.map((k) => h('option', { value: k }, label('premises_kind', k)))),
    contact_person: h('input', {}),
    phone: h('input', { type: 'tel' }),
    gas_use: h('select', {}, gas.map((k) => h('option', { value: k }, label('gas', k)))),
    storeys: h('input', { type: 'number', min: 1, inputmode: 'numeric' }),
    floor_area_m2: h('input', { type: 'number', min: 0, step: 'any', inputmode: 'decimal' }),
    max_occupants: h('input', { type: 'number', min: 0, inputmode: 'numeric' }),
    grid_id: h('select', { required: grids.length > 0 },
      grids.length > 1 ? h('option', { value: '' }, t('choose_grid')) : null,
      grids.map((g) => h('option', { value: g.id }, g.name ? `${g.name}（${g.id}）` : g.id))),
  };
  let location = null;
  const where = h('p', { class: 'muted' });
  const locateButton = h('button', { type: 'button', onclick: async () => {
    where.textContent = t('locating');
    const fix = await locate();
    if (fix.geotag) {
      location = { lat: fix.geotag.lat, lon: fix.geotag.lon };
      where.textContent = `${location.lat.toFixed(6)}, ${location.lon.toFixed(6)} (${t('accuracy', fix.geotag.accuracy_m)})`;
      // The grid the shop stands in, as the core's grid boundaries say.
      const grid = await core('grid_at', [location.lat, location.lon]);
      if (grid) inputs.grid_id.value = grid;
    } else {
      where.textContent = t('no_fix') + fix.error;
    }
  } }, t('use_here'));
  const status = h('p');
  const number = (el) => (el.value === '' ? null : Number(el.value));
  const form = h('form', {
    onsubmit: async (e) => {
      e.preventDefault();
      const fields = {
        name: inputs.name.value.trim(),
        address: inputs.address.value.trim(),
        kind: inputs.kind.value,
        contact_person: inputs.contact_person.value.trim() || null,
        phone: inputs.phone.value.trim() || null,
        gas_use: inputs.gas_use.value,
        storeys: number(inputs.storeys),
        floor_area_m2: number(inputs.floor_area_m2),
        max_occupants: number(inputs.max_occupants),
        location,
        grid_id: inputs.grid_id.value || null,
      };
      try {
        const p = await core('add_premises', [fields]);
        location = null;
        window.location.hash = `#/premises/${encodeURIComponent(p.id)}`;
      } catch (err) {
        status.className = 'error';
        status.textContent = errorText(err);
      }
    },
  },
  field('name', t('name'), inputs.name),
  field('address', t('address'), inputs.address),
  field('kind', t('kind'), inputs.kind),
  field('contact_person', t('contact'), inputs.contact_person),
  field('phone', t('phone'), inputs.phone),
  field('gas_use', t('gas_use'), inputs.gas_use),
  field('storeys', t('storeys'), inputs.storeys),
  field('floor_area_m2', t('area'), inputs.floor_area_m2),
  field('max_occupants', t('occupants'), inputs.max_occupants),
  h('label', {}, t('location')), locateButton, where,
  field('grid_id', t('grid'), inputs.grid_id),
  h('p'), h('button', { class: 'primary', type: 'submit' }, t('save')), status);
  show(h('h1', {}, t('add_premises')), h('div', { class: 'card' }, form));
}

/** jsQR (vendored from npm), loaded the first time a code is read without BarcodeDetector. */
let jsQRLoading = null;
function loadJsQR() {
  jsQRLoading ??= new Promise((resolve, reject) => {
    const script = h('script', { src: 'vendor/jsqr/jsQR.js' });
    script.addEventListener('load', () => resolve(window.jsQR));
    script.addEventListener('error', () => { jsQRLoading = null; reject(new Error('jsQR')); });
    document.head.append(script);
  });
  return jsQRLoading;
}

/** The text of a QR code in a picture or video frame, or null. */
async function readCode(source, width, height) {
  if ('BarcodeDetector' in window) {
    const codes = await new window.BarcodeDetector({ formats: ['qr_code'] }).detect(source).catch(() => []);
    if (codes.length) return codes[0].rawValue;
  }
  const jsQR = await loadJsQR();
  // At most 1024 px on the long side: a code fills a good part of the picture.
  const scale = Math.min(1, 1024 / Math.max(width, height));
  const canvas = new OffscreenCanvas(Math.round(width * scale), Math.round(height * scale));
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
  const image = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return jsQR(image.data, image.width, image.height)?.data ?? null;
}

async function scanScreen() {
  const status = h('p', { class: 'muted', id: 'scan-status' });
  const open = async (code) => {
    const p = code ? await core('premises_from_qr', [code]) : null;
    if (p) location.hash = `#/premises/${encodeURIComponent(p.id)}`;
    else { status.className = 'error'; status.textContent = code ? t('not_found') : t('no_code'); }
  };
  const typed = h('input', { placeholder: t('code_text') });
  // A photo of the code: works on every phone, also where the live camera is not offered.
  const picture = h('input', { type: 'file', accept: 'image/*', capture: 'environment', id: 'scan-photo' });
  picture.addEventListener('change', async () => {
    const file = picture.files[0];
    picture.value = '';
    if (!file) return;
    const bitmap = await createImageBitmap(file);
    await open(await readCode(bitmap, bitmap.width, bitmap.height));
  });
  const video = h('video', { playsinline: true, muted: true, class: 'scanner' });
  show(h('h1', {}, t('scan')), video,
    h('p'), h('span', { class: 'button file grow' }, t('scan_photo'), picture),
    h('p'), typed, h('p'), h('button', { class: 'primary', onclick: () => open(typed.value.trim()) }, t('open_code')), status);
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
    video.srcObject = stream;
    await video.play();
    const stop = () => stream.getTracks().forEach((track) => track.stop());
    const look = async () => {
      if (!video.isConnected) { stop(); return; }
      const code = video.videoWidth ? await readCode(video, video.videoWidth, video.videoHeight) : null;
      if (code) { stop(); await open(code); return; }
      setTimeout(look, 250);
    };
    look();
  } catch {
    video.remove(); // no camera here: the photo and the typed code remain
  }
}

async function premisesDetailScreen(id) {
  const p = await core('premises', [id]);
  if (!p) { show(h('p', { class: 'error' }, t('not_found'))); return; }
  const inspections = await core('inspections_of', [id]);
  const hazards = await core('hazards_of', [id]);
  show(
    h('h1', {}, p.name),
    h('div', { class: 'card' },
      h('div', {}, `${label('premises_kind', p.kind)} · ${p.address}`),
      p.contact_person || p.phone ? h('div', { class: 'muted' }, [p.contact_person, p.phone].filter(Boolean).join(' · ')) : null,
      h('p'), h('a', { class: 'button primary', href: `#/inspect/${encodeURIComponent(id)}`, id: 'inspect' }, t('inspect'))),
    h('h2', {}, t('hazards')),
    hazards.length ? hazards.map(hazardCard) : h('p', { class: 'muted' }, t('no_hazards')),
    h('h2', {}, t('inspections')),
    inspections.slice().reverse().map((i) => h('div', { class: 'card' },
      h('b', {}, i.performed_on), ' · ', i.inspector,
      h('div', { class: 'muted' }, `${t('found')}: ${i.findings.length}`))));
}

function hazardCard(hz) {
  const overdue = hz.deadline && hz.deadline < today() && !['closed', 'withdrawn'].includes(hz.status);
  return h('a', { class: 'card link hazard-card', href: `#/hazard/${encodeURIComponent(hz.id)}` },
    h('div', { class: 'row' },
      h('b', { class: 'grow' }, hz.origin.finding.code),
      h('span', { class: 'tag' }, label('status', hz.status)),
      hz.origin.finding.severity === 'major' ? h('span', { class: 'tag major' }, label('severity', 'major')) : null),
    hz.deadline ? h('div', { class: overdue ? 'error' : 'muted' }, `${t('deadline')}: ${hz.deadline}`) : null);
}

async function inspectScreen(premisesId) {
  const p = await core('premises', [premisesId]);
  if (!p) { show(h('p', { class: 'error' }, t('not_found'))); return; }
  const allKinds = await core('checklist_kinds');
  const chosen = new Set(await core('default_kinds', [premisesId]));
  const lists = new Map();
  for (const kind of allKinds) lists.set(kind, await core('checklist', [kind]));
  const answers = new Map(); // code -> Answer
  let geotag = null;

  const where = h('p', { class: 'muted', id: 'geotag' }, t('locating'));
  locate().then((fix) => {
    if (fix.geotag) {
      geotag = fix.geotag;
      where.textContent = `${t('geotag')}: ${t('accuracy', geotag.accuracy_m)}`;
    } else {
      where.textContent = t('no_fix') + fix.error;
    }
  });

  const kindButtons = h('div', { class: 'choices' }, allKinds.map((kind) => {
    const b = h('button', { type: 'button', 'aria-pressed': String(chosen.has(kind)), 'data-kind': kind }, text(lists.get(kind).title));
    b.addEventListener('click', () => {
      if (chosen.has(kind)) chosen.delete(kind); else chosen.add(kind);
      b.setAttribute('aria-pressed', String(chosen.has(kind)));
      renderItems();
    });
    return b;
  }));
  const itemsBox = h('div', { id: 'items' });
  const status = h('p', { id: 'inspect-status' });

  function setAnswer(code, value) {
    const a = answers.get(code) || { code, photos: [] };
    a.value = value;
    answers.set(code, a);
    renderItems();
  }

  let renderToken = 0;
  async function renderItems() {
    const token = ++renderToken;
    const kinds = allKinds.filter((k) => chosen.has(k));
    const shown = new Set(await core('applicable_items', [kinds, premisesId, [...answers.values()].filter((a) => a.value !== undefined)]));
    if (token !== renderToken) return;
    // Answers to items that no longer apply are dropped, as the core would refuse them.
    for (const code of [...answers.keys()]) if (!shown.has(code)) answers.delete(code);
    const cards = [];
    for (const kind of kinds) {
      const list = lists.get(kind);
      cards.push(h('h2', {}, text(list.title)));
      for (const item of list.items) {
        if (shown.has(item.code)) cards.push(itemCard(item));
      }
    }
    itemsBox.replaceChildren(...cards);
    itemsBox.dataset.rendered = String(token);
  }

  function itemCard(item) {
    const a = answers.get(item.code);
    const value = a?.value;
    const spec = item.answer;
    const pressed = (v) => String(JSON.stringify(value) === JSON.stringify(v));
    let control;
    if (spec.type === 'yes_no') {
      control = h('div', { class: 'choices' },
        h('button', { type: 'button', 'aria-pressed': pressed({ yes_no: true }), onclick: () => setAnswer(item.code, { yes_no: true }) }, t('yes')),
        h('button', { type: 'button', 'aria-pressed': pressed({ yes_no: false }), onclick: () => setAnswer(item.code, { yes_no: false }) }, t('no')),
        h('button', { type: 'button', 'aria-pressed': pressed('not_applicable'), onclick: () => setAnswer(item.code, 'not_applicable') }, t('na')));
    } else if (spec.type === 'choice') {
      const long = spec.options.length > 3 || spec.options.some((o) => text(o.label).length > 6);
      control = h('div', { class: long ? 'choices long' : 'choices' }, spec.options.map((o) =>
        h('button', { type: 'button', 'aria-pressed': pressed({ choice: o.value }), onclick: () => setAnswer(item.code, { choice: o.value }) }, text(o.label))));
    } else if (spec.type === 'count' || spec.type === 'number') {
      const key = spec.type;
      const input = h('input', { type: 'number', inputmode: key === 'count' ? 'numeric' : 'decimal', min: spec.min ?? 0, max: spec.max ?? undefined, step: key === 'count' ? 1 : 'any', value: value?.[key] ?? '' });
      input.addEventListener('change', () => {
        if (input.value === '') { answers.delete(item.code); renderItems(); return; }
        setAnswer(item.code, { [key]: key === 'count' ? Math.round(Number(input.value)) : Number(input.value) });
      });
      control = h('div', { class: 'row' }, input, spec.unit ? h('span', {}, spec.unit) : null);
    } else if (spec.type === 'date') {
      const input = h('input', { type: 'date', max: today(), value: value?.date ?? '' });
      input.addEventListener('change', () => {
        if (input.value === '') { answers.delete(item.code); renderItems(); return; }
        setAnswer(item.code, { date: input.value });
      });
      control = input;
    }
    let detail = null;
    if (item.detail) {
      const input = h('input', { type: 'number', min: 0, inputmode: 'numeric', value: a?.detail ?? '', 'aria-label': text(item.detail.label) });
      input.addEventListener('change', () => {
        const entry = answers.get(item.code) || { code: item.code, photos: [] };
        entry.detail = input.value === '' ? null : Math.round(Number(input.value));
        answers.set(item.code, entry);
      });
      detail = h('div', {}, h('label', {}, text(item.detail.label)), input);
    }
    const photos = h('div', { class: 'thumbs' });
    for (const ph of a?.photos || []) thumbnail(ph.sha256).then((img) => photos.append(img));
    const camera = photoButton(async (photo) => {
      const entry = answers.get(item.code) || { code: item.code, photos: [] };
      entry.photos = [...(entry.photos || []), photo];
      answers.set(item.code, entry);
      photos.append(await thumbnail(photo.sha256));
    }, status, () => watermarkLines(p, geotag));
    return h('div', { class: 'card item', 'data-code': item.code, 'data-answered': value !== undefined },
      h('div', { class: 'code' }, item.code, item.required ? ' *' : ''),
      h('b', {}, text(item.label)),
      item.help ? h('div', { class: 'help' }, text(item.help), h('br'), h('span', { class: 'muted' }, item.basis)) : h('div', { class: 'help muted' }, item.basis),
      h('p'), control, detail,
      h('div', { class: 'row' }, camera), photos);
  }

  const note = h('textarea', { rows: 2, name: 'note' });
  const save = h('button', { class: 'primary', id: 'record', onclick: async () => {
    save.disabled = true;
    status.textContent = '';
    status.className = '';
    try {
      const draft = {
        premises_id: premisesId,
        kinds: allKinds.filter((k) => chosen.has(k)),
        answers: [...answers.values()].filter((a) => a.value !== undefined).map((a) => ({
          code: a.code, value: a.value, detail: a.detail ?? null, photos: a.photos || [], note: null,
        })),
        geotag,
        note: note.value.trim() || null,
        supersedes: null,
      };
      const inspection = await core('record_inspection', [draft]);
      const found = inspection.findings;
      show(h('h1', {}, t('saved')),
        h('div', { class: 'card', id: 'findings' },
          h('h2', {}, t('found')),
          found.length ? found.map((f) => h('div', { class: 'row finding' },
            h('b', { class: 'grow' }, f.code, ' ', text(lists.get(kindOf(f.code, lists))?.items.find((i) => i.code === f.code)?.label)),
            h('span', { class: f.severity === 'major' ? 'tag major' : 'tag' }, label('severity', f.severity)),
            h('span', { class: 'muted' }, `${t('deadline')}: ${f.deadline}`)))
            : h('p', { class: 'ok' }, t('none_found'))),
        h('a', { class: 'button primary', href: `#/premises/${encodeURIComponent(premisesId)}` }, t('back')));
      syncQuietly();
    } catch (err) {
      status.className = 'error';
      status.textContent = errorText(err);
    } finally {
      save.disabled = false;
    }
  } }, t('record'));

  show(h('h1', {}, p.name), where,
    h('div', { class: 'card' }, h('b', {}, t('choose_lists')), h('p'), kindButtons),
    itemsBox,
    h('div', { class: 'card' }, h('label', {}, t('note')), note),
    save, status);
  await renderItems();
}

function kindOf(code, lists) {
  for (const [kind, list] of lists) if (list.items.some((i) => i.code === code)) return kind;
  return null;
}

async function hazardsScreen() {
  const hazards = await core('open_hazards');
  hazards.sort((a, b) => (a.deadline || '9999').localeCompare(b.deadline || '9999'));
  show(h('h1', {}, t('open_hazards')),
    hazards.length ? hazards.map(hazardCard) : h('p', { class: 'muted' }, t('no_hazards')));
}

async function hazardScreen(id) {
  const hz = await core('hazard', [id]);
  const history = hz ? await core('hazard_history', [id]) : [];
  if (!hz) { show(h('p', { class: 'error' }, t('not_found'))); return; }
  const premises = await core('premises', [hz.origin.premises_id]);
  const status = h('p', { id: 'action-status' });
  const photos = [];
  const thumbs = h('div', { class: 'thumbs' });
  const deadline = h('input', { type: 'date', min: today(), value: hz.deadline || hz.origin.finding.deadline, id: 'deadline' });
  const note = h('input', { placeholder: t('note') });
  const act = (action) => async () => {
    try {
      const fix = await locate();
      const body = { action };
      if (['fixed_on_spot', 'owner_reported_fixed', 'recheck_passed', 'recheck_failed'].includes(action)) body.photos = photos;
      if (['notice_issued', 'recheck_failed'].includes(action)) body.deadline = deadline.value;
      await core('record_hazard_action', [id, body, fix.geotag || null, note.value.trim() || null]);
      status.className = 'ok';
      status.textContent = t('done');
      syncQuietly();
      setTimeout(() => hazardScreen(id), 400);
    } catch (err) {
      status.className = 'error';
      status.textContent = errorText(err);
    }
  };
  const actions = {
    found: ['fixed_on_spot', 'notice_issued'],
    rectifying: ['owner_reported_fixed', 'recheck_passed', 'recheck_failed'],
    awaiting_recheck: ['recheck_passed', 'recheck_failed'],
  }[hz.status] || [];
  let geotag = null;
  locate().then((fix) => { geotag = fix.geotag || null; });
  const camera = photoButton(async (photo) => {
    photos.push(photo);
    thumbs.append(await thumbnail(photo.sha256));
  }, status, () => watermarkLines(premises, geotag));
  const items = history.map((entry) => h('div', { class: 'card muted history-entry' },
    `${when(entry.at_ms)} · ${entry.action ? t(entry.action.action) : t('found')} · ${entry.by === 'system' ? t('system') : entry.by}`,
    entry.action?.deadline ? ` · ${t('deadline')} ${entry.action.deadline}` : '',
    entry.note ? ` · ${entry.note}` : ''));
  show(
    h('h1', {}, `${hz.origin.finding.code} · ${premises ? premises.name : ''}`),
    h('div', { class: 'card' },
      h('div', { class: 'row' },
        h('span', { class: 'tag', id: 'hazard-status' }, label('status', hz.status)),
        h('span', { class: hz.origin.finding.severity === 'major' ? 'tag major' : 'tag' }, label('severity', hz.origin.finding.severity))),
      hz.deadline ? h('p', { id: 'hazard-deadline' }, `${t('deadline')}: ${hz.deadline}`) : null),
    actions.length ? h('div', { class: 'card' },
      h('label', { for: 'deadline' }, t('deadline')), deadline,
      h('p'), note, h('p'), camera, thumbs, h('p'),
      h('div', { class: 'choices' }, actions.map((a) => h('button', { type: 'button', 'data-action': a, onclick: act(a) }, t(a)))),
      status) : null,
    h('h2', {}, t('history')), items);
}

// ---- routing ----

async function route() {
  for (const url of objectUrls.splice(0)) URL.revokeObjectURL(url);
  if (!session?.user) { signInScreen(); return; }
  document.getElementById('tabs').hidden = false;
  const [, screen, arg] = (location.hash || '#/today').match(/^#\/([^/]*)\/?(.*)$/) || [];
  const id = arg ? decodeURIComponent(arg) : '';
  for (const a of document.querySelectorAll('#tabs a')) {
    a.textContent = t(a.dataset.tab);
    a.classList.toggle('active', screen.startsWith(a.dataset.tab) || (screen === 'hazard' && a.dataset.tab === 'hazards'));
  }
  try {
    switch (screen) {
      case 'premises': return await (id ? premisesDetailScreen(id) : premisesScreen());
      case 'premises-new': return await newPremisesScreen();
      case 'scan': return await scanScreen();
      case 'inspect': return await inspectScreen(id);
      case 'hazards': return await hazardsScreen();
      case 'hazard': return await hazardScreen(id);
      default: return await todayScreen();
    }
  } catch (err) {
    show(h('p', { class: 'error' }, errorText(err)));
  }
}

window.addEventListener('hashchange', route);
document.getElementById('lang').addEventListener('click', () => {
  lang = lang === 'zh' ? 'en' : 'zh';
  localStorage.setItem('xuncha-lang', lang);
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.getElementById('lang').textContent = lang === 'zh' ? 'EN' : '中文';
  showNet();
  route();
});

async function start() {
  showNet();
  if (lang === 'en') {
    document.documentElement.lang = 'en';
    document.getElementById('lang').textContent = '中文';
  }
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js', { scope: './' }).catch(() => {});
  }
  try {
    await opened;
  } catch (err) {
    const busy = /access handle|NoModificationAllowed|locked/i.test(err.message_en || err.message);
    show(h('p', { class: 'error', id: 'storage-error' }, busy ? t('other_tab') : t('storage_failed')),
      h('p', { class: 'muted' }, errorText(err)));
    return;
  }
  await refreshStatus();
  if (session.user && navigator.storage?.persisted && !(await navigator.storage.persisted())) {
    await askForLastingStorage();
  }
  await route();
  syncQuietly();
}

// The core, for the browser tests and for support staff at the console (the page's own
// scripts only: the policy forbids any other).
globalThis.xunchaCore = core;

start();
