// Xuncha dashboard: hazard map, review, work lists, figures, exports, admin.
// Plain browser JavaScript (no build step); Leaflet and Leaflet.markercluster are vendored.
'use strict';

const T = {
  zh: {
    title: '巡查监管平台', user: '用户名', password: '密码', login: '登录', logout: '退出',
    tab_map: '隐患地图', tab_work: '工作清单', tab_figures: '统计', tab_admin: '管理', tab_shops: '场所档案',
    session_expired: '登录已过期，请重新登录；登录后回到刚才的页面。', hazard_item: '隐患项', clear_filter: '取消此筛选', clear_all: '全部清除', legend_approval: '待审批',
    tab_people: '人员', visits_n: '检查', flagged_n: '位置存疑', found_n: '发现隐患', actions_n: '隐患处理', rechecks_n: '复查',
    no_visits: '这段时间没有检查记录', no_actions: '这段时间没有处理隐患', distance_m: '距场所 {d} 米', mock_short: '模拟定位',
    shop_search: '场所名称或地址', search: '查找', no_shops: '没有找到场所', more_shops: '只列出前 50 个，请输入更具体的名称',
    visits: '检查记录', hazards_of_shop: '隐患', shop_qr: '场所码', open_hazards_n: '未销号隐患', credit_code: '统一社会信用代码', open_file: '场所档案',
    filters: '筛选', kind: '检查类别', status: '状态', grid: '网格', all: '全部',
    overdue_only: '仅看逾期', heat_map: '热力图', qr_sheet: '打印本网格场所码', found_from: '发现日期从', found_to: '至', found_until: '发现日期至', export: '导出',
    hazards: '隐患', inspections: '检查记录', count: '共 {n} 条隐患', count_clusters: '共 {n} 条隐患（已聚合，放大查看）',
    legend_overdue: '逾期', legend_major: '疑似重大', legend_open: '待整改', legend_closed: '已销号',
    overdue_hazards: '逾期隐患', due_week: '本周到期（巡查与复查）', from: '从', to: '至',
    by_grid: '按网格', by_community: '按社区', chart_done: '检查完成 / 应检',
    chart_open: '未销号隐患（按类别）', chart_rate: '按期销号率与销号用时',
    chart_trend: '每周新增、销号与逾期隐患', by_worker: '按人员', group_by: '分组', new_n: '新增', overdue_end: '周末逾期',
    on_time_col: '按期销号率', days_col: '销号用时（≤3天 / 4–7 / 8–30 / >30）', chart_worker: '检查次数与发现隐患', week_of: '周',
    d_le3: '≤3天', d_4_7: '4–7天', d_8_30: '8–30天', d_gt30: '>30天', on_time: '按期',
    users: '用户', role_worker: '网格员', role_supervisor: '网格长/社区', role_admin: '管理员',
    grids_csv: '网格，用逗号分隔', add_user: '添加用户', import_grids: '导入网格（GeoJSON）',
    import_premises: '导入场所（CSV 或 XLSX）', import_users: '批量导入用户（CSV 或 XLSX）',
    import_users_hint: '列：用户名, 姓名, 角色, 网格, 社区, 街道, 电话, 初始密码（初始密码留空则自动生成并只显示这一次；再次导入会更新已有用户，不改其密码）',
    made_passwords_hint: '以下初始密码只显示这一次，请下载后分发给本人，并提醒其登录后修改。', download_passwords: '下载初始密码',
    initial_password: '初始密码', phone: '电话',
    import_premises_hint: '列：名称, 地址, 类型, 网格, 纬度, 经度, 联系人, 电话, 燃气, 住人, 统一社会信用代码（可用 Excel 另存的 CSV；再次导入会更新已有场所）',
    k_fire_extinguisher: '灭火器', k_gas_alarm: '燃气报警', k_e_bike: '电动自行车', k_exits: '安全出口',
    s_found: '已发现', s_rectifying: '整改中', s_awaiting_recheck: '待复查', s_awaiting_approval: '待审批',
    s_closed: '已销号', s_withdrawn: '已撤销', sev_general: '一般隐患', sev_suspected_major: '疑似重大隐患',
    a_found: '发现隐患', a_fixed_on_spot: '当场整改', a_notice_issued: '下发整改通知', a_owner_reported_fixed: '业主报告已整改',
    a_recheck_passed: '复查合格', a_recheck_failed: '复查不合格', a_deadline_extended: '延期',
    a_reassigned: '改派', a_escalated: '升级', a_closure_approved: '审批销号', a_withdrawn: '撤销',
    premises: '场所', address: '地址', deadline: '整改期限', days_overdue: '逾期天数', overdue_days: '已逾期 {n} 天',
    notice_no: '通知书编号', assignee: '责任人', escalation: '升级', round: '整改轮次', inspector: '检查人',
    inspected_on: '检查日期', before: '整改前照片', after: '整改后照片', no_photo: '无照片',
    not_uploaded: '照片尚未上传', answers: '检查项', history: '处理记录', actions: '监管操作',
    approve: '审批销号', extend: '延期至', reassign: '改派给', escalate: '升级到', level1: '网格长', level2: '街道',
    print_notice: '打印整改通知书', close: '关闭', proximity_flag: '⚠ 检查位置距场所 {d} 米（允许 {t} 米），请核实',
    proximity_ok: '检查位置距场所 {d} 米', mock_location: '⚠ 手机报告位置为模拟位置',
    where: '位置', note: '备注', invalid: '（当时状态不允许，未生效）', done: '操作已记录，网格员同步后可见',
    type: '类型', due_on: '到期日', routine: '例行巡查', recheck: '复查', issue_notice: '下发通知', awaiting_approval: '待审批',
    name: '名称', done_col: '已检', due_col: '应检', open_col: '未销号', found_col: '发现', closed_col: '销号',
    rate_col: '整改率', median_col: '销号天数中位数', role: '角色', areas: '负责网格', yes: '是', no: '否',
    imported: '已导入 {n} 条', import_outcome: '新增 {a} 个，更新 {u} 个，未变 {n} 个。', outside_grid: '注意：{n} 个场所的位置不在所填网格内（{names}），请核实。', template: '下载导入模板', none: '暂无', save: '保存',
    account: '账号', active: '正常', disabled: '已停用', disable: '停用', enable: '启用', devices: '设备',
    revoke: '吊销', revoked: '已吊销', sign_out_all: '全部退出', dashboard_session: '网页登录',
    confirm_disable: '停用 {u}？其所有手机和网页登录将立即失效。', confirm_revoke: '吊销设备 {d}？该手机将无法再同步，需重新登录。',
    confirm_sign_out: '让 {u} 在所有设备上退出？', signed_out: '已退出 {n} 个设备',
    calendar: '工作日历', cal_official: '正式', cal_provisional: '暂定（未含调休）', cal_unknown: '缺失（按周一至周五计）',
    calendar_hint: '期限按工作日计算。国务院发布次年放假安排后，上传更新后的日历文件（格式见 schemas/calendar/README.md），手机在下次同步时获取。',
    calendar_saved: '日历已更新',
    photos_n: '照片 {n} 张', a_urged: '催办', urge: '催办', shop_contact: '场所负责人', shop_phone: '联系电话',
    confirm_urge: '催办：提醒责任人尽快处理，记入处理记录，网格员同步后在手机上看到。请写明要求：',
    system: '系统', auto_escalated: '逾期自动升级', reason: '理由（记入处理记录，网格员可见）', confirm: '确认', cancel: '取消',
    reason_needed: '请填写理由', no_assignee: '没有其他可以跟进该场所的人员', current_assignee: '当前',
    confirm_approve: '审批销号：确认该疑似重大隐患已整改到位并销号？', confirm_extend: '把整改期限延至：',
    confirm_reassign: '改派给（只列出负责该网格的人员）：', confirm_escalate: '升级到：',
    reset_password: '重置密码', new_password_for: '{u} 的新密码（至少 8 位；该用户将在所有设备上退出）：', password_reset: '{u} 的密码已重置，已在所有设备上退出',
    display_name: '姓名', communities_csv: '社区，用逗号分隔', subdistricts_csv: '街道，用逗号分隔',
    working_days_later: '{n} 个工作日后', prev_page: '上一页', next_page: '下一页', page_of: '第 {n} / {m} 页',
    tab_campaigns: '专项行动', new_campaign: '发起专项行动', campaign_name: '名称', premises_kinds: '场所类型（不选为全部）',
    starts_on: '开始日期', create: '发起', no_campaigns: '还没有专项行动', running: '进行中', ended: '已结束',
    progress: '进度', done_n: '已完成', late_n: '逾期完成', todo: '未完成', end_campaign: '结束专项行动',
    confirm_end: '结束该专项行动？网格员手机上的相关待办将在同步后消失，已有统计保留。', campaign_export: '导出',
    missing: '待检', done_by: '检查人', choose_grid: '请至少选择一个网格', choose_kind: '请至少选择一类检查',
    pk_catering: '餐饮', pk_retail: '零售', pk_workshop: '小作坊', pk_lodging: '住宿', pk_entertainment: '歌舞娱乐',
    pk_internet_cafe: '网吧', pk_beauty_bath: '美容洗浴', pk_school: '学校/培训', pk_clinic: '诊所', pk_other: '其他',
  },
  en: {
    title: 'Xuncha supervision', user: 'User name', password: 'Password', login: 'Sign in', logout: 'Sign out',
    tab_map: 'Hazard map', tab_work: 'Work lists', tab_figures: 'Figures', tab_admin: 'Admin', tab_shops: 'Shops',
    session_expired: 'Your session has expired: sign in again to return to where you were.', hazard_item: 'Item', clear_filter: 'Remove this filter', clear_all: 'Clear all', legend_approval: 'Awaiting approval',
    tab_people: 'People', visits_n: 'Visits', flagged_n: 'Location doubtful', found_n: 'Hazards found', actions_n: 'Hazard actions', rechecks_n: 'Re-checks',
    no_visits: 'No visits in this period', no_actions: 'No hazard actions in this period', distance_m: '{d} m from the shop', mock_short: 'mocked location',
    shop_search: 'Shop name or address', search: 'Search', no_shops: 'No shops found', more_shops: 'Only the first 50 are listed: be more specific',
    visits: 'Visits', hazards_of_shop: 'Hazards', shop_qr: 'Shop QR code', open_hazards_n: 'Open hazards', credit_code: 'Credit code', open_file: 'Shop file',
    filters: 'Filters', kind: 'Checklist', status: 'Status', grid: 'Grid', all: 'All',
    overdue_only: 'Overdue only', heat_map: 'Heat map', qr_sheet: "Print this grid's premises QR codes", found_from: 'Found from', found_to: 'to', found_until: 'Found until', export: 'Export',
    hazards: 'Hazards', inspections: 'Inspections', count: '{n} hazards', count_clusters: '{n} hazards (grouped: zoom in)',
    legend_overdue: 'Overdue', legend_major: 'Suspected major', legend_open: 'Open', legend_closed: 'Closed',
    overdue_hazards: 'Overdue hazards', due_week: 'Due this week (visits and re-checks)', from: 'From', to: 'To',
    by_grid: 'By grid', by_community: 'By community', chart_done: 'Inspections done / due',
    chart_open: 'Open hazards by checklist', chart_rate: 'Closed by the deadline, and days to close',
    chart_trend: 'New, closed and overdue hazards per week', by_worker: 'By worker', group_by: 'Group', new_n: 'New', overdue_end: 'Overdue at week end',
    on_time_col: 'Closed on time', days_col: 'Days to close (≤3 / 4–7 / 8–30 / >30)', chart_worker: 'Visits and hazards found', week_of: 'Week',
    d_le3: '≤3 d', d_4_7: '4–7 d', d_8_30: '8–30 d', d_gt30: '>30 d', on_time: 'on time',
    users: 'Users', role_worker: 'Grid worker', role_supervisor: 'Supervisor', role_admin: 'Admin',
    grids_csv: 'grids, comma-separated', add_user: 'Add user', import_grids: 'Import grids (GeoJSON)',
    import_premises: 'Import premises (CSV or XLSX)',
    import_premises_hint: 'Columns: name, address, kind, grid, lat, lon, contact, phone, gas, sleeps, credit code (CSV saved by Excel is fine; importing again updates the shops already there)',
    import_users: 'Import users (CSV or XLSX)',
    import_users_hint: 'Columns: user, name, role, grids, communities, sub-district, phone, initial password (left blank, one is made and shown this once; importing again updates the users already there, never their password)',
    made_passwords_hint: 'These first passwords are shown this once: download them, hand each to its owner and ask them to change it.', download_passwords: 'Download the first passwords',
    initial_password: 'First password', phone: 'Phone',
    k_fire_extinguisher: 'Fire extinguishers', k_gas_alarm: 'Gas alarms', k_e_bike: 'E-bikes', k_exits: 'Exits',
    s_found: 'Found', s_rectifying: 'Rectifying', s_awaiting_recheck: 'Awaiting re-check', s_awaiting_approval: 'Awaiting approval',
    s_closed: 'Closed', s_withdrawn: 'Withdrawn', sev_general: 'General', sev_suspected_major: 'Suspected major',
    a_found: 'Found', a_fixed_on_spot: 'Fixed on the spot', a_notice_issued: 'Notice issued', a_owner_reported_fixed: 'Owner reported fixed',
    a_recheck_passed: 'Re-check passed', a_recheck_failed: 'Re-check failed', a_deadline_extended: 'Deadline extended',
    a_reassigned: 'Reassigned', a_escalated: 'Escalated', a_closure_approved: 'Closure approved', a_withdrawn: 'Withdrawn',
    premises: 'Premises', address: 'Address', deadline: 'Deadline', days_overdue: 'Days overdue', overdue_days: '{n} days overdue',
    notice_no: 'Notice no.', assignee: 'Assignee', escalation: 'Escalation', round: 'Round', inspector: 'Inspector',
    inspected_on: 'Inspected on', before: 'Before', after: 'After', no_photo: 'No photo',
    not_uploaded: 'Photo not uploaded yet', answers: 'Checklist answers', history: 'History', actions: 'Review',
    approve: 'Approve closure', extend: 'Extend to', reassign: 'Reassign to', escalate: 'Escalate to', level1: 'Grid leader', level2: 'Sub-district',
    print_notice: 'Print rectification notice', close: 'Close', proximity_flag: '⚠ Recorded {d} m from the premises (tolerance {t} m): check',
    proximity_ok: 'Recorded {d} m from the premises', mock_location: '⚠ The phone reported a mock location',
    where: 'Where', note: 'Note', invalid: '(not allowed in the state at that time; not applied)', done: 'Recorded; workers see it after their next sync',
    type: 'Type', due_on: 'Due on', routine: 'Routine visit', recheck: 'Re-check', issue_notice: 'Issue notice', awaiting_approval: 'Awaiting approval',
    name: 'Name', done_col: 'Done', due_col: 'Due', open_col: 'Open', found_col: 'Found', closed_col: 'Closed',
    rate_col: 'Rate', median_col: 'Median days to close', role: 'Role', areas: 'Grids', yes: 'yes', no: 'no',
    imported: '{n} imported', import_outcome: '{a} added, {u} updated, {n} unchanged.', outside_grid: 'Check: {n} shops lie outside the grid given ({names}).', template: 'Download the import template', none: 'None', save: 'Save',
    account: 'Account', active: 'active', disabled: 'disabled', disable: 'Disable', enable: 'Enable', devices: 'Devices',
    revoke: 'Revoke', revoked: 'revoked', sign_out_all: 'Sign out everywhere', dashboard_session: 'dashboard',
    confirm_disable: 'Disable {u}? All their phones and dashboard sessions stop working at once.', confirm_revoke: 'Revoke device {d}? That phone can no longer sync until it signs in again.',
    confirm_sign_out: 'Sign {u} out on every device?', signed_out: 'Signed out of {n} devices',
    calendar: 'Working-day calendar', cal_official: 'official', cal_provisional: 'provisional (no swapped weekends)', cal_unknown: 'missing (plain weeks)',
    calendar_hint: "Deadlines count working days. When the State Council publishes next year's holidays, upload the updated calendar file (format in schemas/calendar/README.md); phones take it at their next sync.",
    calendar_saved: 'Calendar updated',
    photos_n: '{n} photos', a_urged: 'Chased', urge: 'Chase', shop_contact: 'Shop contact', shop_phone: 'Phone',
    confirm_urge: "Chase: remind the assignee to act; it goes into the history and reaches the worker's phone at the next sync. Say what is wanted:",
    system: 'System', auto_escalated: 'Escalated automatically (overdue)', reason: 'Reason (goes into the history; the worker sees it)', confirm: 'Confirm', cancel: 'Cancel',
    reason_needed: 'Give a reason', no_assignee: 'Nobody else covers this shop', current_assignee: 'current',
    confirm_approve: 'Approve closing: the suspected major hazard is rectified and closed?', confirm_extend: 'Extend the deadline to:',
    confirm_reassign: 'Reassign to (only people who cover the grid):', confirm_escalate: 'Escalate to:',
    reset_password: 'Reset password', new_password_for: 'New password for {u} (8 characters or more; they are signed out everywhere):', password_reset: "{u}'s password was reset; signed out everywhere",
    display_name: 'Name', communities_csv: 'communities, comma-separated', subdistricts_csv: 'sub-districts, comma-separated',
    working_days_later: 'In {n} working days', prev_page: 'Previous', next_page: 'Next', page_of: 'Page {n} of {m}',
    tab_campaigns: 'Campaigns', new_campaign: 'New campaign', campaign_name: 'Name', premises_kinds: 'Kinds of premises (none: all)',
    starts_on: 'Starts on', create: 'Start', no_campaigns: 'No campaigns yet', running: 'running', ended: 'ended',
    progress: 'Progress', done_n: 'Done', late_n: 'Done late', todo: 'To do', end_campaign: 'End campaign',
    confirm_end: "End this campaign? Its shops leave the workers' due lists at their next sync; its figures stay.", campaign_export: 'Export',
    missing: 'To do', done_by: 'Inspector', choose_grid: 'Choose at least one grid', choose_kind: 'Choose at least one checklist',
    pk_catering: 'Catering', pk_retail: 'Retail', pk_workshop: 'Workshop', pk_lodging: 'Lodging', pk_entertainment: 'Entertainment',
    pk_internet_cafe: 'Internet café', pk_beauty_bath: 'Beauty / bath', pk_school: 'School / training', pk_clinic: 'Clinic', pk_other: 'Other',
  },
};

const KINDS = ['fire_extinguisher', 'gas_alarm', 'e_bike', 'exits'];
const PREMISES_KINDS = ['catering', 'retail', 'workshop', 'lodging', 'entertainment', 'internet_cafe', 'beauty_bath', 'school', 'clinic', 'other'];
const STATUSES = ['found', 'rectifying', 'awaiting_recheck', 'awaiting_approval', 'closed', 'withdrawn'];
const OPEN = ['found', 'rectifying', 'awaiting_recheck', 'awaiting_approval'];
const COLORS = { overdue: '#d7191c', major: '#7b3294', open: '#f28e2b', approval: '#2c7bb6', closed: '#1a9641' };

let lang = localStorage.getItem('xuncha.lang') || 'zh';
let session = null;
let map = null;
let markerLayer = null;
let clusterLayer = null;
let heatLayer = null;
let gridLayer = null;
let loadSeq = 0;

function t(key, vars) {
  let s = (T[lang] && T[lang][key]) || T.zh[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace('{' + k + '}', v);
  return s;
}

// Builds an element; strings become text nodes, so data is never parsed as HTML.
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function $(sel) { return document.querySelector(sel); }

// replaceChildren with nested arrays flattened (it would print an array as text).
function fill(el, ...kids) { el.replaceChildren(...kids.flat(2).filter((k) => k !== null && k !== undefined && k !== false)); }

function applyLang() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.querySelectorAll('[data-t]').forEach((e) => { e.textContent = t(e.dataset.t); });
  document.querySelectorAll('[data-ph]').forEach((e) => { e.placeholder = t(e.dataset.ph); e.setAttribute('aria-label', t(e.dataset.ph)); });
  document.querySelectorAll('[data-label]').forEach((e) => { e.setAttribute('aria-label', t(e.dataset.label)); });
  document.querySelectorAll('[data-lang-toggle]').forEach((e) => { e.textContent = lang === 'zh' ? 'English' : '中文'; });
}

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super((lang === 'zh' ? err.message : err.message_en) || err.message || ('HTTP ' + status));
    this.status = status;
    this.code = err.code;
  }
}

async function api(path, options = {}) {
  const opts = { credentials: 'same-origin', ...options, headers: { ...(options.headers || {}) } };
  if (opts.method && opts.method !== 'GET' && session && session.csrf) opts.headers['X-CSRF-Token'] = session.csrf;
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers['Content-Type'] = 'application/json';
    delete opts.json;
  }
  const res = await fetch(path, opts);
  if (res.status === 401 && path !== '/dash/login') { showLogin(Boolean(session)); throw new ApiError(401, null); }
  if (res.status === 204) return null;
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

// Where a supervisor was when the session ran out, to go back there after signing in again.
let resumeAt = null;

function showLogin(expired = false) {
  if (expired && !resumeAt) {
    const tab = document.querySelector('nav [data-tab].active');
    resumeAt = {
      tab: tab ? tab.dataset.tab : 'map',
      hazard: $('#detail').hidden ? null : $('#detail').dataset.hazard,
      premises: $('#shop-file').dataset.premises || null,
    };
    $('#login-error').textContent = t('session_expired');
  }
  $('#app').hidden = true;
  $('#login').hidden = false;
  session = null;
}

let filtersBuilt = false;

async function start() {
  try {
    session = await api('/dash/api/session');
  } catch (e) {
    showLogin();
    return;
  }
  window.addEventListener('unhandledrejection', (e) => console.error('xuncha:', e.reason));
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#who').textContent = session.user + ' · ' + t('role_' + session.role);
  document.querySelectorAll('[data-admin]').forEach((e) => { e.hidden = session.role !== 'admin'; });
  // After a session ran out the page is still there: keep its filters, map and place.
  if (!filtersBuilt) { buildFilters(); filtersBuilt = true; }
  initMap();
  applyLang();
  if (resumeAt) {
    const back = resumeAt;
    resumeAt = null;
    if (back.premises) openShop(back.premises).catch((e) => console.error(e));
    if (back.hazard) openDetail(back.hazard).catch((e) => console.error(e));
    showTab(back.tab);
    return;
  }
  openFromHash();
}

// `#hazard=ID` opens a hazard (links from work lists, notices, messages).
function openFromHash() {
  const m = location.hash.match(/^#hazard=([^&]+)/);
  if (m && session) { showTab('map'); openDetail(decodeURIComponent(m[1])); }
}
window.addEventListener('hashchange', openFromHash);

// ---- filters ----

function buildFilters() {
  const kinds = $('#f-kinds');
  kinds.querySelectorAll('label').forEach((l) => l.remove());
  for (const k of KINDS) kinds.append(h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'kind', value: k, checked: true }), ' ', h('span', { 'data-t': 'k_' + k })));
  const statuses = $('#f-statuses');
  statuses.querySelectorAll('label').forEach((l) => l.remove());
  for (const s of STATUSES) statuses.append(h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'status', value: s, checked: OPEN.includes(s) }), ' ', h('span', { 'data-t': 's_' + s })));
  const grid = $('#f-grid');
  grid.querySelectorAll('option[value]:not([value=""])').forEach((o) => o.remove());
  for (const g of session.grids) grid.append(h('option', { value: g.id }, g.name + ' (' + g.id + ')'));
  document.querySelectorAll('#filters input, #filters select').forEach((e) => e.addEventListener('change', filtersChanged));
  updateExports();
  renderChips();
}

/** The map, the work lists and the exports follow the same filters. */
function filtersChanged() {
  workList.page = 0;
  loadMap();
  updateExports();
  renderChips();
  if (!$('#tab-work').hidden) loadWork().catch((e) => console.error(e));
}

/** The filters that are on, each with how to turn it off. */
function activeFilters() {
  const on = [];
  const boxes = (name) => [...document.querySelectorAll(`input[name=${name}]`)];
  const kinds = boxes('kind');
  if (kinds.some((b) => !b.checked)) {
    on.push({ label: t('kind') + '：' + kinds.filter((b) => b.checked).map((b) => t('k_' + b.value)).join('、'), clear: () => kinds.forEach((b) => { b.checked = true; }) });
  }
  const statuses = boxes('status');
  if (statuses.some((b) => b.checked !== OPEN.includes(b.value))) {
    on.push({ label: t('status') + '：' + statuses.filter((b) => b.checked).map((b) => t('s_' + b.value)).join('、'), clear: () => statuses.forEach((b) => { b.checked = OPEN.includes(b.value); }) });
  }
  const grid = $('#f-grid');
  if (grid.value) on.push({ label: t('grid') + '：' + grid.selectedOptions[0].textContent, clear: () => { grid.value = ''; } });
  if ($('#f-overdue').checked) on.push({ label: t('overdue_only'), clear: () => { $('#f-overdue').checked = false; } });
  if ($('#f-from').value) on.push({ label: t('found_from') + ' ' + $('#f-from').value, clear: () => { $('#f-from').value = ''; } });
  if ($('#f-to').value) on.push({ label: t('found_until') + ' ' + $('#f-to').value, clear: () => { $('#f-to').value = ''; } });
  return on;
}

/** Chips that say which filters are on, on the map and above the work lists. */
function renderChips() {
  const on = activeFilters();
  document.querySelectorAll('.chips').forEach((box) => {
    fill(box,
      on.length ? h('span', { class: 'muted' }, t('filters') + '：') : null,
      on.map((f) => h('button', { type: 'button', class: 'chip', title: t('clear_filter'), onclick: () => { f.clear(); filtersChanged(); } }, f.label, ' ×')),
      on.length > 1 ? h('button', { type: 'button', class: 'link clear-all', onclick: () => { on.forEach((f) => f.clear()); filtersChanged(); } }, t('clear_all')) : null);
    box.hidden = !on.length;
  });
}

function filterQuery() {
  const q = new URLSearchParams();
  const kinds = [...document.querySelectorAll('input[name=kind]:checked')].map((e) => e.value);
  if (kinds.length && kinds.length < KINDS.length) q.set('kinds', kinds.join(','));
  const statuses = [...document.querySelectorAll('input[name=status]:checked')].map((e) => e.value);
  q.set('statuses', (statuses.length ? statuses : OPEN).join(','));
  if ($('#f-grid').value) q.set('grids', $('#f-grid').value);
  if ($('#f-overdue').checked) q.set('overdue', '1');
  if ($('#f-from').value) q.set('from', $('#f-from').value);
  if ($('#f-to').value) q.set('to', $('#f-to').value);
  return q;
}

function updateExports() {
  const q = filterQuery();
  q.set('lang', lang); // one language per file, the page's
  document.querySelectorAll('a[data-export]').forEach((a) => {
    a.href = '/dash/api/export/' + a.dataset.export + '.' + a.dataset.format + '?' + q.toString();
    a.setAttribute('download', '');
  });
  // Premises QR codes (场所码) are printed per grid.
  const grid = $('#f-grid').value;
  const sheet = $('#qr-sheet');
  sheet.hidden = !grid;
  if (grid) sheet.href = '/dash/qr?grid=' + encodeURIComponent(grid);
}

// ---- map ----

function colourOf(m) {
  if (m.overdue_days > 0) return COLORS.overdue;
  if (m.status === 'closed' || m.status === 'withdrawn') return COLORS.closed;
  if (m.severity === 'suspected_major') return COLORS.major;
  if (m.status === 'awaiting_approval') return COLORS.approval;
  return COLORS.open;
}

function initMap() {
  if (map) { loadMap(); return; }
  // maxZoom on the map itself: the cluster layer needs one even when there are no tiles.
  map = L.map('map', { zoomControl: true, maxZoom: 19 });
  const tiles = session.tiles || {};
  // The attribution is the operator's (--tile-attribution): the base map's owner, shown
  // with or without tiles; Leaflet is named in plain text.
  map.attributionControl.setPrefix('Leaflet');
  if (tiles.url) {
    L.tileLayer(tiles.url, { subdomains: tiles.subdomains || 'abc', maxZoom: 19 }).addTo(map);
    if (tiles.labels_url) L.tileLayer(tiles.labels_url, { subdomains: tiles.subdomains || 'abc', maxZoom: 19 }).addTo(map);
  }
  if (tiles.attribution) map.attributionControl.addAttribution(h('span', {}, tiles.attribution).outerHTML);
  const features = session.grids.filter((g) => g.geometry).map((g) => ({ type: 'Feature', geometry: g.geometry, properties: g }));
  gridLayer = L.geoJSON({ type: 'FeatureCollection', features }, {
    style: { color: '#3b6fb6', weight: 1.5, fillColor: '#3b6fb6', fillOpacity: 0.05 },
    // Names come from imported files: shown as text, never as HTML.
    // Grid names drawn on the grids (a district's few dozen); a city's many keep them on hover.
    onEachFeature: (f, layer) => layer.bindTooltip(h('span', {}, String(f.properties.name || '')),
      features.length <= 60 ? { permanent: true, direction: 'center', className: 'grid-label' } : { sticky: true }),
  }).addTo(map);
  // The view first: the cluster layer needs a zoom when it is added.
  if (features.length) map.fitBounds(gridLayer.getBounds(), { padding: [20, 20] });
  else map.setView([31.23, 121.47], 13);
  markerLayer = L.markerClusterGroup({
    showCoverageOnHover: false, maxClusterRadius: 45, chunkedLoading: true,
    // A group shows how many of its hazards are in each state, as a ring in the legend's
    // colours (one overdue hazard no longer paints a whole group red).
    iconCreateFunction: (cluster) => {
      const counts = {};
      for (const m of cluster.getAllChildMarkers()) counts[m.options.fillColor] = (counts[m.options.fillColor] || 0) + 1;
      return clusterIcon(cluster.getChildCount(), counts, 56);
    },
  });
  clusterLayer = L.layerGroup();
  heatLayer = L.heatLayer([], { radius: 22, blur: 18, maxZoom: 17 });
  map.addLayer(markerLayer);
  map.addLayer(clusterLayer);
  map.on('moveend', loadMap);
  loadMap();
}

async function loadMap() {
  if (!map) return;
  const seq = ++loadSeq;
  const q = filterQuery();
  q.set('bbox', map.getBounds().toBBoxString());
  let answer;
  try {
    answer = await api('/dash/api/map?' + q.toString());
  } catch (e) {
    $('#count').textContent = e.message;
    return;
  }
  if (seq !== loadSeq) return; // a newer view is on its way
  markerLayer.clearLayers();
  clusterLayer.clearLayers();
  const count = $('#count');
  count.dataset.total = answer.total;
  count.textContent = t(answer.clusters.length ? 'count_clusters' : 'count', { n: answer.total });
  const markers = answer.markers.map((m) => {
    const c = colourOf(m);
    const marker = L.circleMarker([m.lat, m.lon], { radius: 8, color: '#fff', weight: 1.5, fillColor: c, fillOpacity: 0.9, className: 'hazard-marker' });
    marker.on('click', () => openDetail(m.id));
    const says = t('k_' + m.kind) + ' · ' + t('s_' + m.status) + (m.overdue_days > 0 ? ' · ' + t('overdue_days', { n: m.overdue_days }) : '');
    marker.bindTooltip(h('span', {}, says));
    // Reachable by keyboard: Tab to a marker, Enter opens it (the cluster layer adds and
    // removes markers as the map zooms, so on each adding).
    marker.on('add', () => {
      const el = marker.getElement();
      if (!el || el.hasAttribute('tabindex')) return;
      el.setAttribute('tabindex', '0');
      el.setAttribute('role', 'button');
      el.setAttribute('aria-label', says);
      el.dataset.hazard = m.id;
      el.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); openDetail(m.id); } });
    });
    return marker;
  });
  // The heat map shows the same hazards (a server cluster weighs its count) instead of markers.
  const heat = $('#f-heat').checked;
  for (const [layer, on] of [[markerLayer, !heat], [clusterLayer, !heat], [heatLayer, heat]]) {
    if (on && !map.hasLayer(layer)) map.addLayer(layer);
    if (!on && map.hasLayer(layer)) map.removeLayer(layer);
  }
  if (heat) {
    const points = answer.markers.map((m) => [m.lat, m.lon, 1])
      .concat(answer.clusters.map((c) => [c.lat, c.lon, Number(c.count)]));
    const heaviest = points.reduce((most, p) => Math.max(most, p[2]), 1);
    // Single hazards show blue, two or three close together turn yellow to red.
    heatLayer.setOptions({ max: heaviest > 1 ? heaviest / 3 : 1.2 });
    heatLayer.setLatLngs(points);
    return;
  }
  markerLayer.addLayers(markers);
  for (const c of answer.clusters) {
    // The server counts overdue and suspected major hazards; the rest are open.
    const counts = { [COLORS.overdue]: c.overdue, [COLORS.major]: Math.min(c.major, c.count - c.overdue) };
    counts[COLORS.open] = c.count - counts[COLORS.overdue] - counts[COLORS.major];
    const icon = clusterIcon(c.count, counts, 64);
    L.marker([c.lat, c.lon], { icon, keyboard: true, title: clusterTitle(counts) })
      .on('click', (e) => map.setView(e.latlng, map.getZoom() + 2)).addTo(clusterLayer);
  }
}

const LEGEND = [['overdue', 'legend_overdue'], ['major', 'legend_major'], ['approval', 'legend_approval'], ['open', 'legend_open'], ['closed', 'legend_closed']];

/** "逾期 3 · 待整改 9": a group's hazards by state. */
function clusterTitle(counts) {
  return LEGEND.filter(([c]) => counts[COLORS[c]] > 0).map(([c, key]) => `${t(key)} ${counts[COLORS[c]]}`).join(' · ');
}

/** A group's icon: its count on a ring whose arcs are the shares of each state. */
function clusterIcon(n, counts, largest) {
  const size = Math.min(largest, 26 + Math.log10(Math.max(n, 1)) * 12);
  let at = 0;
  const arcs = [];
  for (const [c] of LEGEND) {
    const k = counts[COLORS[c]] || 0;
    if (!k) continue;
    const to = at + (360 * k) / Math.max(n, 1);
    arcs.push(`${COLORS[c]} ${at.toFixed(1)}deg ${to.toFixed(1)}deg`);
    at = to;
  }
  const ring = arcs.length ? `conic-gradient(${arcs.join(', ')})` : COLORS.open;
  return L.divIcon({
    className: 'server-cluster',
    html: `<span class="ring" style="background:${ring}" title="${clusterTitle(counts)}"><b>${Number(n)}</b></span>`,
    iconSize: [size, size],
  });
}

// ---- hazard detail ----

function fmtTime(ms) {
  return new Date(ms).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { hour12: false });
}

function photoStrip(photos) {
  if (!photos.length) return h('p', { class: 'muted' }, t('no_photo'));
  return h('div', { class: 'photos' }, photos.map((p) => p.uploaded
    ? h('img', { class: 'photo', src: '/v1/photos/' + p.sha256 + '/thumb', alt: p.sha256.slice(0, 8), loading: 'lazy', onclick: () => showPhoto(p.sha256) })
    : h('span', { class: 'photo missing' }, t('not_uploaded'))));
}

function showPhoto(sha) {
  const box = $('#lightbox');
  box.querySelector('img').src = '/v1/photos/' + sha;
  box.hidden = false;
}

function actionText(a, who = (u) => u) {
  if (!a) return t('a_found');
  let s = t('a_' + a.action);
  if (a.deadline) s += ' → ' + a.deadline;
  if (a.notice_no) s += ' · ' + a.notice_no;
  if (a.to) s += ' → ' + who(a.to);
  if (a.level) s += ' → ' + t('level' + a.level);
  if (a.photos && a.photos.length) s += ' · ' + t('photos_n', { n: a.photos.length });
  return s;
}

function valueText(v) {
  if (v === 'not_applicable') return lang === 'zh' ? '不适用' : 'n/a';
  const [kind, val] = Object.entries(v)[0] || [];
  if (kind === 'yes_no') return val ? t('yes') : t('no');
  return String(val);
}

/** A hazard's review pane; `focus`: also move the map to it (when opened from a list). */
async function openDetail(id, focus = false) {
  const panel = $('#detail');
  panel.hidden = false;
  panel.dataset.hazard = id;
  if (map) map.invalidateSize();
  panel.replaceChildren(h('p', { class: 'muted' }, '…'));
  let d;
  try {
    d = await api('/dash/api/hazards/' + encodeURIComponent(id));
  } catch (e) {
    panel.replaceChildren(h('p', { class: 'error' }, e.message));
    return;
  }
  const hz = d.hazard;
  if (focus && map && d.map_position) map.setView([d.map_position.lat, d.map_position.lon], Math.max(map.getZoom(), 17));
  const label = d.item ? d.item.label[lang] || d.item.label.zh : hz.origin.finding.code;
  const prox = d.inspection && d.inspection.proximity;
  const geo = d.inspection && d.inspection.geotag;
  const flags = [];
  if (prox) flags.push(h('p', { class: prox.flagged ? 'warn proximity-flag' : 'muted' }, t(prox.flagged ? 'proximity_flag' : 'proximity_ok', { d: Math.round(prox.distance_m), t: Math.round(prox.tolerance_m) })));
  if (geo && geo.mock) flags.push(h('p', { class: 'warn' }, t('mock_location')));
  const who = (user) => (user === 'system' ? t('system') : (d.names && d.names[user]) || user);
  const actions = h('div', { class: 'actions' });
  // Every action asks first, with the reason it goes into the history with.
  const ask = (question, input, makeBody) => {
    const reason = h('textarea', { id: 'action-reason', rows: 3, 'aria-required': 'true' });
    const error = h('p', { class: 'error', role: 'alert', id: 'action-error', hidden: true });
    const dialog = h('dialog', { id: 'action-dialog', 'aria-labelledby': 'action-question' });
    const confirm = h('button', { type: 'submit', id: 'action-confirm' }, t('confirm'));
    const form = h('form', {},
      h('p', { id: 'action-question' }, question), input,
      h('label', { for: 'action-reason' }, t('reason')), reason, error,
      h('div', { class: 'inline' }, confirm,
        h('button', { type: 'button', id: 'action-cancel', onclick: () => dialog.close() }, t('cancel'))));
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const note = reason.value.trim();
      if (!note) { error.hidden = false; error.textContent = t('reason_needed'); return; }
      confirm.disabled = true;
      try {
        await api('/dash/api/hazards/' + encodeURIComponent(id) + '/actions', { method: 'POST', json: { ...makeBody(), note } });
        dialog.close();
        await openDetail(id);
        $('#detail').prepend(h('p', { class: 'ok', role: 'status' }, t('done')));
        loadMap();
      } catch (e) {
        error.hidden = false;
        error.textContent = e.message;
        confirm.disabled = false;
      }
    });
    dialog.append(form);
    dialog.addEventListener('close', () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    (input && input.querySelector ? input.querySelector('input, select') : null)?.focus();
  };
  if (hz.status === 'awaiting_approval') {
    actions.append(h('button', { id: 'approve', onclick: () => ask(t('confirm_approve'), null, () => ({ action: 'closure_approved' })) }, t('approve')));
  }
  if (!['closed', 'withdrawn'].includes(hz.status)) {
    actions.append(h('button', { id: 'urge', onclick: () => ask(t('confirm_urge'), null, () => ({ action: 'urged' })) }, t('urge')));
    actions.append(h('button', { id: 'extend', onclick: () => {
      // Deadlines only after today (China date) and on working days: the server offers some
      // counted in working days, and checks any date typed.
      const tomorrow = new Date(Date.now() + 8 * 3600e3 + 864e5).toISOString().slice(0, 10);
      const choices = d.deadline_choices || [];
      const date = h('input', { type: 'date', id: 'action-date', 'aria-label': t('extend'), min: tomorrow, required: true, value: choices.length ? choices[0].date : tomorrow });
      const quick = h('div', { class: 'choices', id: 'action-choices' }, choices.map((c) => h('button', {
        type: 'button', class: 'small', 'data-date': c.date, onclick: () => { date.value = c.date; },
      }, t('working_days_later', { n: c.working_days }) + ` (${c.date})`)));
      ask(t('confirm_extend'), h('div', {}, quick, date), () => ({ action: 'deadline_extended', deadline: date.value }));
    } }, t('extend')));
    actions.append(h('button', { id: 'reassign', onclick: async () => {
      const list = await api('/dash/api/hazards/' + encodeURIComponent(id) + '/assignees');
      const others = list.assignees.filter((p) => p.id !== list.current);
      const pick = h('select', { id: 'action-assignee', 'aria-label': t('reassign'), required: true },
        others.map((p) => h('option', { value: p.id }, `${p.name}（${t('role_' + p.role)}）`)));
      if (!others.length) {
        actions.append(h('p', { class: 'muted', role: 'status' }, t('no_assignee')));
        return;
      }
      ask(t('confirm_reassign'), h('div', {}, pick), () => ({ action: 'reassigned', to: pick.value }));
    } }, t('reassign')));
    const levels = [1, 2].filter((l) => l > (hz.escalation || 0));
    if (levels.length) {
      actions.append(h('button', { id: 'escalate', onclick: () => {
        const level = h('select', { id: 'action-level', 'aria-label': t('escalate') }, levels.map((l) => h('option', { value: String(l) }, t('level' + l))));
        ask(t('confirm_escalate'), h('div', {}, level), () => ({ action: 'escalated', level: Number(level.value) }));
      } }, t('escalate')));
    }
  }
  // The notice prints once issued (it has a number and a deadline).
  if (hz.notice_no) actions.append(h('a', { id: 'print-notice', href: '/dash/notice/' + encodeURIComponent(id), target: '_blank', rel: 'noopener' }, t('print_notice')));
  fill(panel,
    h('button', { class: 'link close', onclick: () => { panel.hidden = true; map.invalidateSize(); } }, '✕ ' + t('close')),
    h('h2', { id: 'detail-title' }, hz.origin.finding.code + ' ' + label),
    h('p', {}, h('span', { class: 'badge s-' + hz.status }, t('s_' + hz.status)), ' ', h('span', { class: 'badge' }, t('sev_' + hz.origin.finding.severity)),
      d.overdue_days > 0 ? h('span', { class: 'badge overdue' }, t('overdue_days', { n: d.overdue_days })) : null),
    h('dl', {},
      h('dt', {}, t('premises')), h('dd', {}, h('a', { href: '#', id: 'open-shop', title: t('open_file'), onclick: (ev) => { ev.preventDefault(); showTab('shops'); openShop(d.premises.id); } }, d.premises.name)),
      h('dt', {}, t('address')), h('dd', {}, d.premises.address),
      d.premises.contact_person ? [h('dt', {}, t('shop_contact')), h('dd', { id: 'shop-contact' }, d.premises.contact_person)] : null,
      d.premises.phone ? [h('dt', {}, t('shop_phone')), h('dd', {}, h('a', { href: 'tel:' + d.premises.phone }, d.premises.phone))] : null,
      h('dt', {}, t('grid')), h('dd', { id: 'detail-grid' }, d.grid_name || d.premises.grid_id || ''),
      h('dt', {}, t('deadline')), h('dd', {}, hz.deadline || '—'),
      h('dt', {}, t('notice_no')), h('dd', {}, hz.notice_no || '—'),
      h('dt', {}, t('round')), h('dd', {}, hz.round),
      h('dt', {}, t('assignee')), h('dd', { id: 'detail-assignee' }, who(hz.assignee)),
      h('dt', {}, t('escalation')), h('dd', {}, hz.escalation ? t('level' + hz.escalation) : '—'),
      d.inspection ? [h('dt', {}, t('inspected_on')), h('dd', {}, d.inspection.performed_on + ' · ' + who(d.inspection.inspector))] : null),
    flags,
    h('h3', {}, t('before')), photoStrip(d.photos.before),
    h('h3', {}, t('after')), photoStrip(d.photos.after),
    h('h3', {}, t('actions')), actions,
    h('h3', {}, t('history')),
    h('ol', { class: 'history' }, d.history.map((e) => h('li', { class: e.invalid ? 'invalid' : '' },
      h('strong', {}, e.by === 'system' && e.action && e.action.action === 'escalated' ? t('auto_escalated') + ' → ' + t('level' + e.action.level) : actionText(e.action, who)), ' · ', who(e.by), ' · ', fmtTime(e.at_ms),
      e.geotag ? h('div', { class: 'muted' }, t('where') + ': ' + e.geotag.lat.toFixed(5) + ', ' + e.geotag.lon.toFixed(5) + ' ±' + Math.round(e.geotag.accuracy_m) + 'm') : null,
      e.note ? h('div', {}, t('note') + ': ' + e.note) : null,
      e.invalid ? h('div', { class: 'muted' }, t('invalid')) : null))),
    h('h3', {}, t('answers')),
    h('table', { class: 'list answers' }, d.answers.map((a) => h('tr', { class: a.hazard ? 'is-hazard' : '' },
      h('td', {}, a.code), h('td', {}, a.label ? a.label[lang] || a.label.zh : ''), h('td', {}, a.value_text ? a.value_text[lang] || a.value_text.zh : valueText(a.value)),
      h('td', {}, a.photos.length ? t('photos_n', { n: a.photos.length }) : '')))),
  );
}

// ---- shops (一店一档) ----

async function searchShops() {
  const q = $('#shop-search').value.trim();
  const found = await api('/dash/api/premises?q=' + encodeURIComponent(q));
  fill($('#shop-results'),
    found.items.length
      ? [h('tr', {}, [t('premises'), t('address'), t('grid'), t('open_hazards_n')].map((c) => h('th', {}, c))),
        found.items.map((p) => h('tr', { class: 'clickable shop-row', 'data-id': p.id, onclick: () => openShop(p.id) },
          h('td', {}, p.name), h('td', {}, p.address), h('td', {}, p.grid_name), h('td', { class: 'num' }, p.open_hazards)))]
      : h('tr', {}, h('td', {}, t('no_shops'))),
    found.more ? h('tr', {}, h('td', { colspan: 4, class: 'muted' }, t('more_shops'))) : null);
}

async function openShop(id) {
  const el = $('#shop-file');
  el.dataset.premises = id;
  const f = await api('/dash/api/premises/' + encodeURIComponent(id));
  const p = f.premises;
  const who = (user) => (user === 'system' ? t('system') : f.names[user] || user);
  const text = (label) => (label ? label[lang] || label.zh : '');
  const field = (key, value) => (value ? [h('dt', {}, t(key)), h('dd', {}, value)] : null);
  fill(el,
    h('h2', { id: 'shop-name' }, p.name),
    h('div', { class: 'shop-head' },
      h('dl', {},
        field('address', p.address), field('grid', f.grid_name), field('shop_contact', p.contact_person),
        p.phone ? [h('dt', {}, t('shop_phone')), h('dd', {}, h('a', { href: 'tel:' + p.phone }, p.phone))] : null,
        field('credit_code', p.credit_code)),
      h('figure', {}, h('img', { src: f.qr, alt: t('shop_qr'), class: 'qr', id: 'shop-qr' }), h('figcaption', {}, t('shop_qr')))),
    h('h3', {}, `${t('hazards_of_shop')} (${f.hazards.length})`),
    h('table', { class: 'list', id: 'shop-hazards' },
      f.hazards.map(({ hazard: hz, label, history }) => h('tr', { class: 'clickable', onclick: () => { showTab('map'); openDetail(hz.id, true); } },
        h('td', {}, text(label) || hz.origin.finding.code),
        h('td', {}, h('span', { class: 'badge s-' + hz.status }, t('s_' + hz.status))),
        h('td', {}, hz.deadline || ''), h('td', {}, who(hz.assignee)),
        h('td', { class: 'muted' }, history.map((e) => `${fmtTime(e.at_ms)} ${e.by === 'system' && e.action && e.action.action === 'escalated' ? t('auto_escalated') : actionText(e.action, who)} · ${who(e.by)}${e.note ? ' · ' + e.note : ''}`).join('；'))))),
    h('h3', {}, `${t('visits')} (${f.visits.length})`),
    f.visits.map((v) => h('details', { class: 'visit' },
      h('summary', {}, `${v.performed_on} · ${who(v.inspector)} · ${v.kinds.map((k) => t('k_' + k)).join('、')}`,
        v.findings ? h('span', { class: 'badge overdue' }, ` ${t('hazards_of_shop')} ${v.findings}`) : null,
        v.proximity && v.proximity.flagged ? h('span', { class: 'warn' }, ' ⚠ ' + t('proximity_flag', { d: Math.round(v.proximity.distance_m), t: Math.round(v.proximity.tolerance_m) })) : null,
        v.mock ? h('span', { class: 'warn' }, ' ' + t('mock_location')) : null),
      h('table', { class: 'list answers' }, v.answers.map((a) => h('tr', { class: a.hazard ? 'is-hazard' : '' },
        h('td', {}, text(a.label) || a.code), h('td', {}, text(a.value_text)),
        h('td', {}, a.photos.length ? photoStrip(a.photos) : '')))))));
  el.scrollIntoView({ block: 'start' });
}

// ---- people: what each worker did ----

function peopleQuery() {
  const q = new URLSearchParams();
  if ($('#ppl-from').value) q.set('from', $('#ppl-from').value);
  if ($('#ppl-to').value) q.set('to', $('#ppl-to').value);
  return q;
}

async function loadPeople() {
  const list = await api('/dash/api/workers?' + peopleQuery().toString());
  if (!$('#ppl-from').value) { $('#ppl-from').value = list.from; $('#ppl-to').value = list.to; }
  const cols = ['visits', 'flagged', 'hazards_found', 'actions', 'rechecks'];
  fill($('#people-table'),
    h('tr', {}, [t('role_worker'), t('visits_n'), t('flagged_n'), t('found_n'), t('actions_n'), t('rechecks_n')].map((c) => h('th', {}, c))),
    list.items.map((w) => h('tr', { class: 'clickable person-row', 'data-id': w.id, onclick: () => openPerson(w.id) },
      h('td', {}, w.name), cols.map((c) => h('td', { class: 'num' + (c === 'flagged' && w.figures.flagged ? ' warn' : '') }, w.figures[c])))));
  const open = $('#person').dataset.user;
  if (open) openPerson(open);
}

async function openPerson(id) {
  const el = $('#person');
  el.dataset.user = id;
  const p = await api('/dash/api/workers/' + encodeURIComponent(id) + '?' + peopleQuery().toString());
  const toShop = (premises) => () => { showTab('shops'); openShop(premises); };
  fill(el,
    h('h2', { id: 'person-name' }, `${p.name} · ${p.from} – ${p.to}`),
    h('h3', {}, `${t('visits_n')} (${p.visits.length})`),
    p.visits.length ? h('table', { class: 'list', id: 'person-visits' }, p.visits.map((v) => h('tr', { class: 'clickable', onclick: toShop(v.premises_id) },
      h('td', {}, v.performed_on), h('td', {}, v.premises),
      h('td', {}, v.findings ? t('found_n') + ' ' + v.findings : ''),
      h('td', { class: v.flagged ? 'warn' : 'muted' }, v.distance_m !== null ? t('distance_m', { d: v.distance_m }) : ''),
      h('td', { class: 'warn' }, v.mock ? t('mock_short') : '')))) : h('p', { class: 'muted' }, t('no_visits')),
    h('h3', {}, `${t('actions_n')} (${p.actions.length})`),
    p.actions.length ? h('table', { class: 'list', id: 'person-actions' }, p.actions.map((a) => h('tr', { class: 'clickable', onclick: () => { showTab('map'); openDetail(a.hazard_id, true); } },
      h('td', {}, fmtTime(a.at_ms)), h('td', {}, actionText(a.action)), h('td', {}, a.premises), h('td', {}, a.note || '')))) : h('p', { class: 'muted' }, t('no_actions')));
  el.scrollIntoView({ block: 'start' });
}

// ---- campaigns (专项行动) ----

function buildCampaignForm() {
  const box = (fieldset, name, values, label) => {
    const el = $(fieldset);
    el.querySelectorAll('label').forEach((l) => l.remove());
    for (const v of values) el.append(h('label', { class: 'check' }, h('input', { type: 'checkbox', name, value: v }), ' ', h('span', { 'data-t': label(v) }, t(label(v)))));
  };
  box('#cf-kinds', 'checklist', KINDS, (k) => 'k_' + k);
  box('#cf-premises', 'premises_kind', PREMISES_KINDS, (k) => 'pk_' + k);
  const grids = $('#cf-grids');
  grids.querySelectorAll('label').forEach((l) => l.remove());
  for (const g of session.grids) grids.append(h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'grid', value: g.id, checked: session.grids.length === 1 }), ' ', g.name));
  const form = $('#campaign-form');
  if (!form.starts_on.value) form.starts_on.value = new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10);
}

async function createCampaign(e) {
  e.preventDefault();
  const form = e.target;
  const checked = (name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
  const err = $('#campaign-error');
  err.textContent = '';
  const body = {
    name: form.name.value, checklists: checked('checklist'), premises_kinds: checked('premises_kind'),
    grids: checked('grid'), starts_on: form.starts_on.value, deadline: form.deadline.value,
  };
  if (!body.checklists.length) { err.textContent = t('choose_kind'); return; }
  if (!body.grids.length) { err.textContent = t('choose_grid'); return; }
  try {
    const made = await api('/dash/api/campaigns', { method: 'POST', json: body });
    form.reset();
    $('#campaign-new').open = false;
    await loadCampaigns();
    openCampaign(made.campaign.id);
  } catch (x) {
    err.textContent = x.message;
  }
}

function pct(done, due) { return due ? Math.round(100 * done / due) + '%' : '—'; }

async function loadCampaigns() {
  if (!$('#cf-grids').querySelector('input')) buildCampaignForm();
  const list = await api('/dash/api/campaigns');
  fill($('#campaign-table'),
    list.campaigns.length
      ? [h('tr', {}, [t('campaign_name'), t('kind'), t('grid'), t('starts_on'), t('deadline'), t('status'), t('progress'), t('found_n')].map((c) => h('th', {}, c))),
        list.campaigns.map((c) => h('tr', { class: 'clickable campaign-row', 'data-id': c.id, tabindex: 0, onclick: () => openCampaign(c.id), onkeydown: (e) => { if (e.key === 'Enter') openCampaign(c.id); } },
          h('td', {}, c.name), h('td', {}, c.checklists.map((k) => t('k_' + k)).join('、')), h('td', {}, c.grids.map((g) => g.name).join('、')),
          h('td', {}, c.starts_on), h('td', {}, c.deadline), h('td', {}, t(c.ended ? 'ended' : 'running')),
          h('td', { class: 'num' }, `${c.totals.done} / ${c.totals.due} (${pct(c.totals.done, c.totals.due)})`), h('td', { class: 'num' }, c.totals.hazards)))]
      : h('tr', {}, h('td', { class: 'muted' }, t('no_campaigns'))));
  const open = $('#campaign').dataset.campaign;
  if (open) openCampaign(open);
}

async function openCampaign(id) {
  const el = $('#campaign');
  el.dataset.campaign = id;
  const d = await api('/dash/api/campaigns/' + encodeURIComponent(id));
  const c = d.campaign;
  const exportLink = (format) => h('a', { href: `/dash/api/campaigns/${encodeURIComponent(id)}/export.${format}?lang=${lang}`, download: '' }, format.toUpperCase());
  fill(el,
    h('h2', { id: 'campaign-title' }, `${c.name} · ${c.starts_on} – ${c.deadline}`),
    h('p', {}, t('kind') + '：' + c.checklists.map((k) => t('k_' + k)).join('、'),
      c.premises_kinds.length ? ' · ' + c.premises_kinds.map((k) => t('pk_' + k)).join('、') : ''),
    h('div', { class: 'exports' }, h('span', {}, t('campaign_export')), exportLink('csv'), exportLink('xlsx'),
      c.ended ? h('span', { class: 'muted' }, t('ended')) : h('button', { type: 'button', id: 'campaign-end', onclick: () => endCampaign(id) }, t('end_campaign'))),
    h('div', { id: 'campaign-progress', class: 'chart' }),
    h('h3', {}, t('by_grid')),
    h('table', { class: 'list', id: 'campaign-grids' },
      h('tr', {}, [t('grid'), t('due_col'), t('done_n'), t('late_n'), t('progress'), t('found_n')].map((x) => h('th', {}, x))),
      d.by_grid.map((g) => h('tr', {}, h('td', {}, g.grid_name), h('td', { class: 'num' }, g.due), h('td', { class: 'num' }, g.done),
        h('td', { class: 'num' }, g.late), h('td', { class: 'num' }, pct(g.done, g.due)), h('td', { class: 'num' }, g.hazards)))),
    h('h3', {}, t('tab_people')),
    d.by_worker.length ? h('table', { class: 'list', id: 'campaign-workers' },
      h('tr', {}, [t('role_worker'), t('done_n'), t('found_n')].map((x) => h('th', {}, x))),
      d.by_worker.map((w) => h('tr', {}, h('td', {}, w.name), h('td', { class: 'num' }, w.done), h('td', { class: 'num' }, w.hazards)))) : h('p', { class: 'muted' }, t('none')),
    h('h3', {}, `${t('premises')} (${d.premises.length})`),
    h('table', { class: 'list', id: 'campaign-shops' },
      h('tr', {}, [t('premises'), t('grid'), t('status'), t('done_by'), t('missing'), t('found_n')].map((x) => h('th', {}, x))),
      d.premises.map((p) => h('tr', { class: 'clickable', onclick: () => { showTab('shops'); openShop(p.premises_id); } },
        h('td', {}, p.name || p.premises_id), h('td', {}, p.grid_name),
        h('td', { class: p.done_on ? (p.late ? 'warn' : '') : 'muted' }, p.done_on ? `${t(p.late ? 'late_n' : 'done_n')} ${p.done_on}` : t('todo')),
        h('td', {}, p.done_by_name || ''), h('td', {}, p.missing.map((k) => t('k_' + k)).join('、')), h('td', { class: 'num' }, p.hazards || '')))));
  // Done (green, late ones darker) against still to do (grey), per grid.
  barChart($('#campaign-progress'), d.by_grid.map((g) => ({ label: g.grid_name, values: [g.done - g.late, g.late, g.due - g.done] })),
    ['#1a9641', '#0b5e28', '#d0d0d0'], (r) => `${r.values[0] + r.values[1]} / ${r.values[0] + r.values[1] + r.values[2]}`);
  el.scrollIntoView({ block: 'start' });
}

async function endCampaign(id) {
  if (!window.confirm(t('confirm_end'))) return;
  await api('/dash/api/campaigns/' + encodeURIComponent(id) + '/end', { method: 'POST' });
  await loadCampaigns();
}

// ---- work lists ----

// The overdue list's order and page (columns sort on a click; a second click reverses).
const workList = { sort: 'days_overdue', order: 'desc', page: 0 };
const SORTABLE = { grid: 'grid', deadline: 'deadline', days_overdue: 'days_overdue', escalation: 'escalation' };

function sortBy(key) {
  if (workList.sort === key) workList.order = workList.order === 'asc' ? 'desc' : 'asc';
  else { workList.sort = key; workList.order = key === 'days_overdue' || key === 'escalation' ? 'desc' : 'asc'; }
  workList.page = 0;
  loadWork().catch((e) => console.error(e));
}

async function loadWork() {
  const q = filterQuery();
  q.delete('statuses');
  const lq = new URLSearchParams(q);
  lq.set('sort', workList.sort); lq.set('order', workList.order); lq.set('page', workList.page);
  const [overdue, due] = await Promise.all([api('/dash/api/overdue?' + lq.toString()), api('/dash/api/due-week')]);
  $('#overdue-total').textContent = '(' + overdue.total + ')';
  barChart($('#overdue-by-grid'), Object.entries(overdue.by_grid).map(([k, v]) => ({ label: k, values: [v] })), [COLORS.overdue]);
  const head = (label, key) => {
    if (!key) return h('th', { scope: 'col' }, label);
    const on = workList.sort === key;
    return h('th', { scope: 'col', 'aria-sort': on ? (workList.order === 'asc' ? 'ascending' : 'descending') : 'none' },
      h('button', { type: 'button', class: 'sort' + (on ? ' on' : ''), 'data-sort': key, onclick: () => sortBy(key) },
        label, on ? (workList.order === 'asc' ? ' ▲' : ' ▼') : ''));
  };
  fill($('#overdue-table'),
    h('tr', {}, head(t('premises')), head(t('grid'), SORTABLE.grid), head(t('hazard_item')), head(t('deadline'), SORTABLE.deadline),
      head(t('days_overdue'), SORTABLE.days_overdue), head(t('assignee')), head(t('escalation'), SORTABLE.escalation)),
    overdue.items.map((r) => h('tr', { class: 'clickable', 'data-id': r.id, tabindex: 0, onclick: () => { showTab('map'); openDetail(r.id, true); }, onkeydown: (e) => { if (e.key === 'Enter') { showTab('map'); openDetail(r.id, true); } } },
      h('td', {}, r.premises), h('td', {}, r.grid_name || r.grid), h('td', { title: r.code }, (r.item ? r.item[lang] || r.item.zh : r.code) + (r.severity === 'suspected_major' ? ' ⚠' : '')),
      h('td', {}, r.deadline || ''), h('td', { class: 'num' }, r.overdue_days), h('td', {}, r.assignee_name || r.assignee),
      h('td', {}, r.escalation ? t('level' + r.escalation) : ''))));
  const pages = Math.max(1, Math.ceil(overdue.total / overdue.page_size));
  const go = (n) => () => { workList.page = n; loadWork().catch((e) => console.error(e)); };
  fill($('#overdue-pager'),
    h('button', { type: 'button', id: 'overdue-prev', disabled: workList.page === 0, onclick: go(workList.page - 1) }, t('prev_page')),
    h('span', { id: 'overdue-page' }, t('page_of', { n: workList.page + 1, m: pages })),
    h('button', { type: 'button', id: 'overdue-next', disabled: workList.page + 1 >= pages, onclick: go(workList.page + 1) }, t('next_page')));
  fill($('#due-table'),
    h('tr', {}, [t('type'), t('premises'), t('grid'), t('due_on'), t('days_overdue')].map((c) => h('th', {}, c))),
    due.items.length ? due.items.map((r) => h('tr', { class: r.hazard_id ? 'clickable' : '', onclick: r.hazard_id ? () => { showTab('map'); openDetail(r.hazard_id, true); } : null },
      h('td', {}, t(r.kind)), h('td', {}, r.premises), h('td', {}, r.grid), h('td', {}, r.due_on), h('td', { class: 'num' }, r.overdue_days || ''))) : h('tr', {}, h('td', {}, t('none'))));
}

// ---- figures ----

// One meaning per colour across the charts: the hazard states as on the map (new/open orange,
// closed green, overdue red), checklists in their own palette, inspections done green/grey.
const KIND_COLOURS = ['#4e79a7', '#9c755f', '#b07aa1', '#76b7b2'];
const DAYS_COLOURS = ['#1a9641', '#a6d96a', '#fdae61', '#d7191c'];

// Horizontal bars: rows of {label, values[]} drawn as stacked SVG bars. The label column is as
// wide as the longest label needs (CJK characters are about twice as wide as Latin ones).
function barChart(el, rows, colours, fmt) {
  const max = Math.max(1, ...rows.map((r) => r.values.reduce((a, b) => a + b, 0)));
  const rowH = 22;
  const textW = (s) => [...String(s || '—')].reduce((w, c) => w + (c.charCodeAt(0) > 0x2e80 ? 12 : 7), 0);
  const labelW = Math.min(220, Math.max(60, ...rows.map((r) => textW(r.label) + 10)));
  const totals = rows.map((r) => (fmt ? fmt(r) : r.values.join(' / ')));
  const totalW = Math.max(30, ...totals.map((s) => textW(s) + 8));
  const width = labelW + 270 + totalW;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 ' + width + ' ' + Math.max(rowH, rows.length * rowH));
  svg.setAttribute('class', 'bars');
  svg.setAttribute('width', width);
  svg.setAttribute('role', 'img');
  rows.forEach((r, i) => {
    const y = i * rowH;
    const text = document.createElementNS(ns, 'text');
    text.setAttribute('x', labelW - 6); text.setAttribute('y', y + 15); text.setAttribute('text-anchor', 'end');
    text.textContent = r.label || '—';
    svg.append(text);
    let x = labelW;
    r.values.forEach((v, j) => {
      const w = (width - labelW - totalW) * v / max;
      const rect = document.createElementNS(ns, 'rect');
      rect.setAttribute('x', x); rect.setAttribute('y', y + 3); rect.setAttribute('width', Math.max(0, w)); rect.setAttribute('height', rowH - 6);
      rect.setAttribute('fill', colours[j % colours.length]);
      svg.append(rect);
      x += w;
    });
    const total = document.createElementNS(ns, 'text');
    total.setAttribute('x', x + 4); total.setAttribute('y', y + 15);
    total.textContent = totals[i];
    svg.append(total);
  });
  el.replaceChildren(svg);
}

// Lines over weeks: series of {name, colour, values[]} against week labels.
function lineChart(el, labels, series) {
  const ns = 'http://www.w3.org/2000/svg';
  const W = 560; const H = 200; const left = 34; const bottom = 34; const top = 10;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const x = (i) => left + (W - left - 10) * (labels.length > 1 ? i / (labels.length - 1) : 0.5);
  const y = (v) => top + (H - top - bottom) * (1 - v / max);
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'bars lines');
  svg.setAttribute('role', 'img');
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  for (const v of [0, Math.round(max / 2), max]) {
    add('line', { x1: left, x2: W - 10, y1: y(v), y2: y(v), stroke: '#d9e2ec' });
    add('text', { x: left - 4, y: y(v) + 4, 'text-anchor': 'end' }, v);
  }
  labels.forEach((l, i) => { if (i % 2 === labels.length % 2 || labels.length < 7) add('text', { x: x(i), y: H - bottom + 16, 'text-anchor': 'middle' }, l.slice(5)); });
  for (const s of series) {
    add('polyline', { points: s.values.map((v, i) => `${x(i)},${y(v)}`).join(' '), fill: 'none', stroke: s.colour, 'stroke-width': 2 });
    s.values.forEach((v, i) => add('circle', { cx: x(i), cy: y(v), r: 3, fill: s.colour }).append(Object.assign(document.createElementNS(ns, 'title'), { textContent: `${labels[i]} ${s.name}: ${v}` })));
  }
  el.replaceChildren(svg, h('div', { class: 'chart-legend' }, series.map((s) => h('span', {}, h('i', { class: 'dot', style: 'background:' + s.colour }), s.name))));
}

function pctText(rate) { return rate == null ? '—' : Math.round(100 * rate) + '%'; }

async function loadFigures() {
  const q = new URLSearchParams();
  if ($('#fig-from').value) q.set('from', $('#fig-from').value);
  if ($('#fig-to').value) q.set('to', $('#fig-to').value);
  const group = $('#fig-group').value;
  const [f, people] = await Promise.all([
    api('/dash/api/figures?' + q.toString()),
    group === 'by_worker' ? api('/dash/api/workers?' + q.toString()) : null,
  ]);
  if (!$('#fig-from').value) $('#fig-from').value = f.from;
  if (!$('#fig-to').value) $('#fig-to').value = f.to;
  lineChart($('#chart-trend'), f.weekly.map((w) => w.week_of), [
    { name: t('new_n'), colour: COLORS.open, values: f.weekly.map((w) => w.found) },
    { name: t('closed_col'), colour: COLORS.closed, values: f.weekly.map((w) => w.closed) },
    { name: t('overdue_end'), colour: COLORS.overdue, values: f.weekly.map((w) => w.overdue) },
  ]);
  document.querySelectorAll('#tab-figures .by-area').forEach((e) => { e.hidden = group === 'by_worker'; });
  if (people) {
    $('#chart-done-caption').textContent = t('chart_worker');
    barChart($('#chart-done'), people.items.map((w) => ({ label: w.name, values: [w.figures.visits, w.figures.hazards_found] })), ['#1a9641', COLORS.open]);
    $('#chart-done').append(h('div', { class: 'chart-legend' },
      h('span', {}, h('i', { class: 'dot', style: 'background:#1a9641' }), t('visits_n')),
      h('span', {}, h('i', { class: 'dot', style: 'background:' + COLORS.open }), t('found_n'))));
    const cols = ['visits', 'flagged', 'hazards_found', 'actions', 'rechecks'];
    fill($('#figures-table'),
      h('tr', {}, [t('role_worker'), t('visits_n'), t('flagged_n'), t('found_n'), t('actions_n'), t('rechecks_n')].map((c) => h('th', { scope: 'col' }, c))),
      people.items.map((w) => h('tr', {}, h('td', {}, w.name), cols.map((c) => h('td', { class: 'num' }, w.figures[c])))));
    return;
  }
  $('#chart-done-caption').textContent = t('chart_done');
  const rows = f[group];
  barChart($('#chart-done'), rows.map((r) => ({ label: r.name, values: [r.inspections_done, Math.max(0, r.inspections_due - r.inspections_done)] })), ['#1a9641', '#d0d0d0'],
    (r) => r.values[0] + ' / ' + (r.values[0] + r.values[1]));
  barChart($('#chart-open'), rows.map((r) => ({ label: r.name, values: KINDS.map((k) => r.open_by_kind[k]) })), KIND_COLOURS);
  $('#chart-open').append(h('div', { class: 'chart-legend' }, KINDS.map((k, i) => h('span', {}, h('i', { class: 'dot', style: 'background:' + KIND_COLOURS[i] }), t('k_' + k)))));
  // How many closed in the period by days taken, and the share closed by the deadline.
  barChart($('#chart-rate'), rows.map((r) => ({ label: r.name, values: r.days_to_close, rate: r.on_time_rate })), DAYS_COLOURS,
    (r) => `${r.values.reduce((a, b) => a + b, 0)} · ${t('on_time')} ${pctText(r.rate)}`);
  $('#chart-rate').append(h('div', { class: 'chart-legend' }, ['d_le3', 'd_4_7', 'd_8_30', 'd_gt30'].map((k, i) => h('span', {}, h('i', { class: 'dot', style: 'background:' + DAYS_COLOURS[i] }), t(k)))));
  fill($('#figures-table'),
    h('tr', {}, [t('name'), t('done_col'), t('due_col'), t('open_col'), t('legend_overdue'), t('found_col'), t('closed_col'), t('rate_col'), t('on_time_col'), t('days_col')].map((c) => h('th', { scope: 'col' }, c))),
    rows.map((r) => h('tr', {}, h('td', {}, r.name || '—'), h('td', { class: 'num' }, r.inspections_done), h('td', { class: 'num' }, r.inspections_due),
      h('td', { class: 'num' }, KINDS.reduce((a, k) => a + r.open_by_kind[k], 0)), h('td', { class: 'num' }, r.overdue_hazards),
      h('td', { class: 'num' }, r.found), h('td', { class: 'num' }, r.closed),
      h('td', { class: 'num' }, pctText(r.rectification_rate)),
      h('td', { class: 'num' }, pctText(r.on_time_rate)),
      h('td', { class: 'num' }, r.days_to_close.join(' / ')))));
}

// ---- admin ----

async function loadAdmin() {
  loadCalendarStatus().catch((e) => console.error(e));
  const users = await api('/v1/admin/users');
  fill($('#users-table'),
    h('tr', {}, [t('user'), t('phone'), t('role'), t('areas'), t('account')].map((c) => h('th', {}, c))),
    users.users.map((u) => {
      // Grids are edited in place; communities and sub-districts are kept as they are.
      const grids = h('input', { value: (u.grids || []).join(', '), 'data-user': u.id, size: 24, 'aria-label': `${u.id} · ${t('areas')}` });
      const save = async () => {
        const list = grids.value.split(/[,，\s]+/).filter(Boolean);
        try {
          await api('/v1/admin/users/' + encodeURIComponent(u.id) + '/areas', { method: 'PUT', json: { grids: list, communities: u.communities || [], subdistricts: u.subdistricts || [] } });
          grids.classList.add('saved');
        } catch (e) {
          $('#import-result').className = 'error';
          $('#import-result').textContent = e.message;
        }
      };
      const others = [...(u.communities || []), ...(u.subdistricts || [])].join(', ');
      const who = u.display_name && u.display_name !== u.id ? [u.display_name, ' ', h('span', { class: 'muted' }, u.id)] : u.id;
      return h('tr', { 'data-user': u.id }, h('td', {}, who), h('td', {}, u.phone || ''), h('td', {}, t('role_' + u.role)),
        h('td', {}, u.role === 'admin' ? t('all') : [grids, ' ', h('button', { onclick: save }, t('save')), others ? ' + ' + others : '']),
        h('td', {}, accountCell(u)));
    }));
}

// A user's account: disable or enable, sign out everywhere, and their devices (a lost phone
// is revoked from here). Each takes effect at once on the server.
function accountCell(u) {
  const report = (e) => {
    $('#import-result').className = 'error';
    $('#import-result').textContent = e.message;
  };
  const path = '/v1/admin/users/' + encodeURIComponent(u.id);
  const toggle = h('button', {
    class: 'disable', onclick: async () => {
      if (!u.disabled && !confirm(t('confirm_disable').replace('{u}', u.id))) return;
      try {
        await api(path + '/disabled', { method: 'PUT', json: { disabled: !u.disabled } });
        loadAdmin();
      } catch (e) { report(e); }
    },
  }, u.disabled ? t('enable') : t('disable'));
  const signOut = h('button', {
    class: 'sign-out', onclick: async () => {
      if (!confirm(t('confirm_sign_out').replace('{u}', u.id))) return;
      try {
        const r = await api(path + '/sign-out', { method: 'POST' });
        $('#import-result').className = '';
        $('#import-result').textContent = t('signed_out').replace('{n}', r.revoked);
      } catch (e) { report(e); }
    },
  }, t('sign_out_all'));
  const list = h('ul', { class: 'devices', hidden: true });
  const showDevices = async () => {
    try {
      const r = await api(path + '/devices');
      fill(list, r.devices.map((d) => h('li', { 'data-device': d.device_id },
        (d.dashboard ? t('dashboard_session') : (d.name || d.device_id)) + ' · ' + new Date(d.enrolled_ms).toLocaleDateString() + ' ',
        d.revoked ? h('span', { class: 'muted' }, t('revoked')) : h('button', {
          class: 'revoke', onclick: async () => {
            if (!confirm(t('confirm_revoke').replace('{d}', d.name || d.device_id))) return;
            try {
              await api('/v1/admin/devices/' + encodeURIComponent(d.device_id) + '/revoke', { method: 'POST' });
              showDevices();
            } catch (e) { report(e); }
          },
        }, t('revoke')))));
      if (!r.devices.length) fill(list, h('li', {}, t('none')));
      list.hidden = false;
    } catch (e) { report(e); }
  };
  // A new password set by the admin (a worker who forgot theirs): signs them out everywhere.
  const reset = h('button', {
    class: 'reset-password', onclick: async () => {
      const password = prompt(t('new_password_for').replace('{u}', u.id));
      if (!password) return;
      try {
        await api(path + '/password', { method: 'PUT', json: { password } });
        $('#import-result').className = 'ok';
        $('#import-result').textContent = t('password_reset').replace('{u}', u.id);
      } catch (e) { report(e); }
    },
  }, t('reset_password'));
  return [h('span', { class: u.disabled ? 'state disabled' : 'state' }, u.disabled ? t('disabled') : t('active')), ' ',
    toggle, ' ', reset, ' ', signOut, ' ', h('button', { class: 'show-devices', onclick: showDevices }, t('devices')), list];
}

// This year's and next year's calendar: official, provisional or missing.
async function loadCalendarStatus() {
  const status = await api('/v1/status');
  fill($('#calendar-status'), status.calendar.map((y) =>
    h('li', { 'data-year': y.year, 'data-status': y.status }, y.year + '：' + t('cal_' + y.status))));
}

async function uploadCalendar(input) {
  const file = input.files[0];
  if (!file) return;
  const out = $('#calendar-result');
  try {
    const json = JSON.parse(await file.text());
    await api('/v1/admin/calendar', { method: 'PUT', json });
    out.className = 'ok';
    out.textContent = t('calendar_saved');
    await loadCalendarStatus();
  } catch (e) {
    out.className = 'error';
    out.textContent = e.message;
  }
  input.value = '';
}

async function importFile(input, path, contentType, outSel) {
  const file = input.files[0];
  if (!file) return;
  const out = $(outSel || '#import-result');
  try {
    const body = await file.arrayBuffer();
    const type = contentType || (file.name.endsWith('.xlsx') ? 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet' : 'text/csv');
    const res = await api(path, { method: 'POST', body, headers: { 'Content-Type': type } });
    out.className = 'ok';
    // Premises say what became of each row; grids only how many.
    out.textContent = res.added === undefined ? t('imported', { n: res.imported })
      : t('import_outcome', { a: res.added, u: res.updated, n: res.unchanged })
        + (res.outside_grid && res.outside_grid.length ? ' ' + t('outside_grid', { n: res.outside_grid.length, names: res.outside_grid.slice(0, 5).join('、') }) : '');
    if (res.passwords) {
      showMadePasswords(res.passwords);
      loadAdmin();
    }
  } catch (e) {
    out.className = 'error';
    out.textContent = e.message;
  }
  input.value = '';
}

// The first passwords a user import made: shown once, with a CSV to hand them out.
function showMadePasswords(made) {
  const box = $('#made-passwords');
  box.hidden = made.length === 0;
  if (!made.length) return;
  fill(box.querySelector('table'),
    h('tr', {}, h('th', {}, t('user')), h('th', {}, t('initial_password'))),
    made.map((m) => h('tr', {}, h('td', {}, m.user), h('td', { class: 'password' }, m.password))));
  const csv = '\ufeff' + [t('user') + ',' + t('initial_password'), ...made.map((m) => m.user + ',' + m.password)].join('\r\n') + '\r\n';
  const link = $('#made-passwords-csv');
  if (link.href.startsWith('blob:')) URL.revokeObjectURL(link.href);
  link.href = URL.createObjectURL(new Blob([csv], { type: 'text/csv' }));
}

// ---- tabs and start ----

function showTab(name) {
  document.querySelectorAll('nav [data-tab]').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
  document.querySelectorAll('.tab').forEach((el) => { el.hidden = el.id !== 'tab-' + name; });
  const load = { map: () => { map.invalidateSize(); loadMap(); }, work: loadWork, figures: loadFigures, admin: loadAdmin, people: loadPeople, campaigns: loadCampaigns }[name];
  Promise.resolve(load && load()).catch((e) => console.error(e));
}

document.addEventListener('DOMContentLoaded', () => {
  applyLang();
  document.querySelectorAll('[data-lang-toggle]').forEach((b) => b.addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('xuncha.lang', lang);
    applyLang();
    if (session) {
      loadMap();
      updateExports();
      // The open hazard in the new language too.
      const open = $('#detail').dataset.hazard;
      if (open && !$('#detail').hidden) openDetail(open);
      if ($('#shop-file').dataset.premises) openShop($('#shop-file').dataset.premises);
      if (!$('#tab-campaigns').hidden) loadCampaigns();
    }
  }));
  $('#campaign-form').addEventListener('submit', (e) => createCampaign(e).catch((err) => console.error(err)));
  ['#ppl-from', '#ppl-to'].forEach((sel) => $(sel).addEventListener('change', () => loadPeople().catch((err) => console.error(err))));
  $('#shop-search-form').addEventListener('submit', (e) => {
    e.preventDefault();
    searchShops().catch((err) => fill($('#shop-results'), h('tr', {}, h('td', { class: 'error' }, err.message))));
  });
  $('#login-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const form = new FormData(e.target);
    $('#login-error').textContent = '';
    try {
      await api('/dash/login', { method: 'POST', json: { user: form.get('user'), password: form.get('password') } });
      await start();
    } catch (err) {
      $('#login-error').textContent = err.message || String(err);
    }
  });
  $('#logout').addEventListener('click', async () => {
    await api('/dash/logout', { method: 'POST' }).catch(() => null);
    location.reload();
  });
  document.querySelectorAll('nav [data-tab]').forEach((b) => b.addEventListener('click', () => showTab(b.dataset.tab)));
  ['#fig-from', '#fig-to', '#fig-group'].forEach((s) => $(s).addEventListener('change', loadFigures));
  $('#lightbox').addEventListener('click', () => { $('#lightbox').hidden = true; });
  document.addEventListener('keydown', (e) => { if (e.key === 'Escape') $('#lightbox').hidden = true; });
  $('#user-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    const grids = String(f.get('grids') || '').split(/[,，、\s]+/).filter(Boolean);
    try {
      const list = (name) => String(f.get(name) || '').split(/[,，、\s]+/).filter(Boolean);
      await api('/v1/admin/users', { method: 'POST', json: { id: f.get('id'), display_name: f.get('display_name') || null, role: f.get('role'), password: f.get('password'), phone: f.get('phone') || null, areas: { grids, communities: list('communities'), subdistricts: list('subdistricts') } } });
      e.target.reset();
      loadAdmin();
    } catch (err) {
      $('#import-result').className = 'error';
      $('#import-result').textContent = err.message;
    }
  });
  $('#grids-file').addEventListener('change', (e) => importFile(e.target, '/v1/admin/grids/import', 'application/json'));
  $('#premises-file').addEventListener('change', (e) => importFile(e.target, '/v1/admin/premises/import'));
  $('#users-file').addEventListener('change', (e) => importFile(e.target, '/v1/admin/users/import', null, '#users-import-result'));
  $('#calendar-file').addEventListener('change', (e) => uploadCalendar(e.target));
  start();
});
