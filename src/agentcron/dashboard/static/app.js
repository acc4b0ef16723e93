// agentcron dashboard. Plain browser JavaScript, no build step, no dependencies.
// Security: every piece of data is inserted with textContent / DOM APIs (never innerHTML),
// the token lives in sessionStorage and travels in the Authorization header or the first
// WebSocket message, never in a URL.
'use strict';

(function () {
  const TOKEN_KEY = 'agentcron.token';
  const PAGE_SIZE = 50;
  const FEED_MAX = 100;
  // A run reporting progress may send an event per percent: its job's row (or page) is
  // fetched again at most this often (ms), and its line in the event feed is replaced.
  const PROGRESS_REFRESH_MS = 500;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY),
    jobsOffset: 0,
    jobsTotal: 0,
    currentJob: null,
    socket: null,
    reconnectDelay: 1000,
    refreshTimers: new Map(),
  };

  // -- DOM helpers -----------------------------------------------------------------
  const $ = (id) => document.getElementById(id);

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === null || value === undefined || value === false) continue;
        if (key === 'className') node.className = value;
        else if (key === 'text') node.textContent = String(value);
        else if (key === 'onclick') node.addEventListener('click', value);
        else if (key === 'dataset') Object.assign(node.dataset, value);
        else node.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (const child of children) append(node, child);
    return node;
  }

  function append(node, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) child.forEach((c) => append(node, c));
    else if (child instanceof Node) node.appendChild(child);
    else node.appendChild(document.createTextNode(String(child)));
  }

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === 'text') node.textContent = String(value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children) if (child) node.appendChild(child);
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    return d.toLocaleString(undefined, {
      year: 'numeric', month: 'short', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit',
    });
  }

  function fmtRelative(iso) {
    if (!iso) return '';
    const seconds = Math.round((new Date(iso).getTime() - Date.now()) / 1000);
    const abs = Math.abs(seconds);
    if (abs < 2) return 'just now';
    let text;
    if (abs < 60) text = abs + ' s';
    else if (abs < 3600) text = Math.round(abs / 60) + ' min';
    else if (abs < 86400) text = Math.round(abs / 360) / 10 + ' h';
    else text = Math.round(abs / 8640) / 10 + ' d';
    return seconds >= 0 ? 'in ' + text : text + ' ago';
  }

  function fmtPercent(value) {
    return Math.floor(value) + ' %'; // 99.6 is not done yet: never shown as 100
  }

  function hasProgress(job) {
    return typeof job.progress === 'number' && Number.isFinite(job.progress);
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return '—';
    if (seconds < 1) return Math.round(seconds * 1000) + ' ms';
    if (seconds < 120) return seconds.toFixed(1) + ' s';
    return (seconds / 60).toFixed(1) + ' min';
  }

  function toast(message, bad) {
    const node = $('toast');
    node.textContent = message;
    node.className = bad ? 'toast bad' : 'toast';
    node.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => { node.hidden = true; }, 4000);
  }

  // -- HTTP ------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(status, detail) {
      super(detailText(detail));
      this.status = status;
    }
  }

  // An error's `detail` as one line: a 422 lists `{loc, msg}` objects, shown as
  // "expression: String should have at most 500 characters" (several joined with "; ").
  function detailText(detail) {
    if (typeof detail === 'string') return detail;
    if (!Array.isArray(detail)) return JSON.stringify(detail);
    return detail.map((item) => {
      if (!item || typeof item !== 'object') return String(item);
      const loc = Array.isArray(item.loc) ? item.loc.map(String) : [];
      if (['body', 'path', 'query', 'header'].includes(loc[0])) loc.shift();
      return (loc.length ? loc.join('.') + ': ' : '') + String(item.msg || item.type || 'invalid');
    }).join('; ').replace(/\s+/g, ' ');
  }

  async function api(method, path, body) {
    const headers = { Authorization: 'Bearer ' + state.token, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store', credentials: 'omit' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const response = await fetch(path, init);
    let data = null;
    const type = response.headers.get('content-type') || '';
    if (type.includes('application/json')) data = await response.json();
    if (response.status === 401 || response.status === 403) {
      logout('The token was not accepted.');
      throw new ApiError(response.status, (data && data.detail) || 'not authorised');
    }
    if (!response.ok) throw new ApiError(response.status, (data && data.detail) || response.statusText);
    return data;
  }

  // The URL of a job route. `.` and `..` cannot be a path segment: browsers remove them
  // (even spelt %2E%2E), so those two ids are sent as ?id= to /api/job{suffix}.
  function jobPath(jobId, suffix) {
    if (jobId === '.' || jobId === '..') return '/api/job' + (suffix || '') + '?id=' + encodeURIComponent(jobId);
    return '/api/jobs/' + encodeURIComponent(jobId) + (suffix || '');
  }

  function reportError(err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) return;
    toast(err.message || String(err), true);
  }

  // -- login -----------------------------------------------------------------------
  function showLogin(message) {
    $('login-view').hidden = false;
    $('app-view').hidden = true;
    $('logout').hidden = true;
    $('health-badge').hidden = true;
    $('live').hidden = true;
    $('login-error').textContent = message || '';
    $('token').focus();
  }

  function logout(message) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    if (state.socket) {
      state.socket.onclose = null;
      state.socket.close();
      state.socket = null;
    }
    showLogin(message);
  }

  async function login(token) {
    state.token = token;
    try {
      await api('GET', '/api/health');
    } catch (err) {
      if (!(err instanceof ApiError && (err.status === 401 || err.status === 403))) {
        showLogin('Cannot reach the dashboard: ' + err.message);
      }
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    $('login-view').hidden = true;
    $('app-view').hidden = false;
    $('logout').hidden = false;
    $('live').hidden = false;
    connectSocket();
    route();
  }

  // -- overview --------------------------------------------------------------------
  async function loadHealth() {
    const h = await api('GET', '/api/health');
    $('card-jobs').textContent = h.jobs;
    $('card-running').textContent = h.running;
    $('card-failing').textContent = h.failing;
    $('card-paused').textContent = h.paused;
    $('card-nodes').textContent = h.nodes_total ? h.nodes_online + ' / ' + h.nodes_total : '—';
    const value = $('card-health');
    value.textContent = h.status;
    value.className = 'value ' + h.status;
    $('card-reasons').textContent = h.reasons.join('; ');
    const readOnly = h.engine && h.engine.mode === 'read-only';
    document.body.classList.toggle('read-only', Boolean(readOnly));
    $('mode').hidden = !readOnly;
    $('mode').textContent = readOnly ? 'read-only view of ' + (h.engine.store || 'the store') : '';
    const badge = $('health-badge');
    badge.hidden = false;
    badge.textContent = h.status;
    badge.className = 'badge ' + h.status;
  }

  function statusCell(status) {
    return el('span', { className: 'status ' + status, text: status });
  }

  // "running · 42 %" and a thin bar, for a job whose newest running run reported progress.
  function progressParts(job) {
    if (!hasProgress(job)) return null;
    return [
      el('span', { className: 'job-progress', text: ' · ' + fmtPercent(job.progress) }),
      el('progress', { className: 'bar', max: 100, value: job.progress, 'aria-label': 'Progress of ' + job.name }),
    ];
  }

  function lastResultCell(job) {
    const last = job.last_result;
    if (!last) return el('span', { className: 'muted', text: 'never ran' });
    return [
      statusCell(last.status),
      el('span', { className: 'sub', text: fmtRelative(last.at) + (last.duration !== null ? ' · ' + fmtDuration(last.duration) : '') }),
      last.error ? el('span', { className: 'sub error', text: last.error.slice(0, 120) }) : null,
    ];
  }

  function jobActions(job) {
    const run = el('button', { type: 'button', className: 'small', text: 'Run', 'aria-label': 'Run ' + job.name,
      onclick: () => runJob(job.id) });
    const toggle = job.paused
      ? el('button', { type: 'button', className: 'small ghost', text: 'Resume', 'aria-label': 'Resume ' + job.name,
        onclick: () => resumeJob(job.id) })
      : el('button', { type: 'button', className: 'small ghost', text: 'Pause', 'aria-label': 'Pause ' + job.name,
        onclick: () => pauseJob(job.id, null) });
    return [run, toggle];
  }

  // Why a job is not running as usual, as `agentcron jobs list` says it: the reason it is
  // disabled (the agent-loops preset's "no handler configured"), why it cannot run, or the
  // note it was paused with.
  function statusNote(job) {
    if (job.status === 'disabled') return job.disabled_reason || job.unavailable || null;
    return job.paused ? job.pause_note || null : null;
  }

  function jobRow(job) {
    const name = el('a', { href: '#/job/' + encodeURIComponent(job.id), className: 'job-name', text: job.name });
    const nameCell = el('td', null, name, job.name !== job.id ? el('span', { className: 'sub', text: job.id }) : null,
      el('span', { className: 'sub' }, job.tags.map((t) => el('span', { className: 'tag', text: t }))));
    const row = el('tr', { dataset: { jobId: job.id } },
      nameCell,
      el('td', null, el('code', { text: job.schedule }), el('span', { className: 'sub', text: job.description })),
      el('td', { text: job.timezone }),
      el('td', { className: 'job-status' }, statusCell(job.status), progressParts(job),
        statusNote(job) ? el('span', { className: 'sub status-note', text: statusNote(job) }) : null),
      el('td', { className: 'job-last' }, lastResultCell(job)),
      el('td', { className: 'job-next' }, job.next_run
        ? [el('span', { text: fmtRelative(job.next_run) }), el('span', { className: 'sub', text: fmtTime(job.next_run) })]
        : el('span', { className: 'muted', text: '—' })),
      el('td', { className: 'actions' }, jobActions(job)));
    return row;
  }

  async function loadJobs() {
    const params = new URLSearchParams({ limit: PAGE_SIZE, offset: state.jobsOffset });
    const search = $('job-search').value.trim();
    const tag = $('job-tag').value;
    const status = $('job-status').value;
    if (search) params.set('search', search);
    if (tag) params.set('tag', tag);
    if (status) params.set('status', status);
    const page = await api('GET', '/api/jobs?' + params.toString());
    const body = $('jobs-table').tBodies[0];
    clear(body);
    page.items.forEach((job) => body.appendChild(jobRow(job)));
    $('jobs-empty').hidden = page.items.length > 0;
    state.jobsTotal = page.total;
    const last = Math.min(page.offset + page.items.length, page.total);
    $('jobs-page').textContent = page.total ? (page.offset + 1) + '–' + last + ' of ' + page.total : '';
    $('jobs-prev').disabled = page.offset === 0;
    $('jobs-next').disabled = last >= page.total;
    const select = $('job-tag');
    const current = select.value;
    clear(select);
    select.appendChild(el('option', { value: '', text: 'All tags' }));
    page.tags.forEach((t) => select.appendChild(el('option', { value: t, text: t })));
    select.value = page.tags.includes(current) ? current : '';
  }

  async function refreshJobRow(jobId) {
    const row = findRow(jobId);
    if (!row) return;
    try {
      const job = await api('GET', jobPath(jobId));
      const fresh = jobRow(job);
      const again = findRow(jobId);
      if (again) again.replaceWith(fresh);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        const gone = findRow(jobId);
        if (gone) gone.remove();
      } else reportError(err);
    }
  }

  function findRow(jobId) {
    for (const row of $('jobs-table').tBodies[0].rows) if (row.dataset.jobId === jobId) return row;
    return null;
  }

  async function runJob(jobId) {
    try {
      await api('POST', jobPath(jobId, '/run'));
      toast('Started ' + jobId);
    } catch (err) { reportError(err); }
  }

  async function pauseJob(jobId, note) {
    try {
      await api('POST', jobPath(jobId, '/pause'), note ? { note } : {});
      await afterChange(jobId);
    } catch (err) { reportError(err); }
  }

  async function resumeJob(jobId) {
    try {
      await api('POST', jobPath(jobId, '/resume'));
      await afterChange(jobId);
    } catch (err) { reportError(err); }
  }

  async function afterChange(jobId) {
    if (state.currentJob === jobId) await loadJob(jobId);
    else await refreshJobRow(jobId);
    scheduleRefresh('health', loadHealth, 200);
  }

  // -- nodes and queues ------------------------------------------------------------
  async function loadNodes() {
    const nodes = await api('GET', '/api/nodes');
    const body = $('nodes-table').tBodies[0];
    clear(body);
    nodes.items.forEach((n) => body.appendChild(el('tr', null,
      el('td', { text: n.node_id }),
      el('td', null, statusCell(n.status), el('span', { className: 'sub', text: 'reports ' + n.reported })),
      el('td', { text: n.health_score === null ? '—' : n.health_score }),
      el('td', { text: fmtRelative(n.last_seen) }),
      el('td', { text: n.host + (n.pid ? ' · pid ' + n.pid : '') }))));
    $('nodes-empty').hidden = nodes.items.length > 0;
  }

  async function loadQueues() {
    const queues = await api('GET', '/api/queues');
    const body = $('queues-table').tBodies[0];
    clear(body);
    queues.items.forEach((q) => {
      const c = q.counts;
      const path = '/api/queues/' + encodeURIComponent(q.name);
      const act = (suffix, payload) => async () => {
        try { await api('POST', path + '/' + suffix, payload); await loadQueues(); } catch (err) { reportError(err); }
      };
      body.appendChild(el('tr', { dataset: { queue: q.name } },
        el('td', null, el('span', { text: q.name }), q.paused ? el('span', { className: 'sub status paused', text: 'paused' }) : null),
        el('td', { text: c.waiting || 0 }), el('td', { text: c.active || 0 }), el('td', { text: c.delayed || 0 }),
        el('td', { text: c.completed || 0 }), el('td', { text: c.failed || 0 }),
        el('td', { className: 'actions' },
          q.paused
            ? el('button', { type: 'button', className: 'small ghost', text: 'Resume', onclick: act('resume') })
            : el('button', { type: 'button', className: 'small ghost', text: 'Pause', onclick: act('pause') }),
          el('button', { type: 'button', className: 'small ghost', text: 'Clean completed', onclick: act('clean', { state: 'completed' }) }))));
    });
    $('queues-empty').textContent = queues.available ? 'No queues.' : 'No queue backend is wired in.';
    $('queues-empty').hidden = queues.items.length > 0;
  }

  // -- timeline --------------------------------------------------------------------
  async function loadTimeline() {
    const data = await api('GET', '/api/timeline?hours=24');
    const holder = $('timeline');
    clear(holder);
    const start = new Date(data.start).getTime();
    const end = new Date(data.end).getTime();
    const now = new Date(data.now).getTime();
    if (!data.rows.length) {
      holder.appendChild(el('p', { className: 'muted', text: 'No jobs yet.' }));
      return;
    }
    const index = new Map(data.rows.map((r, i) => [r.job_id, i]));
    const left = 170, width = 1000, rowH = 18, top = 20;
    const height = top + data.rows.length * rowH + 6;
    const x = (t) => left + ((t - start) / (end - start)) * (width - left - 10);
    const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': 'Runs in the last and next 24 hours' });
    for (let h = -24; h <= 24; h += 6) {
      const t = now + h * 3600000;
      chart.appendChild(svg('line', { x1: x(t), x2: x(t), y1: top - 4, y2: height, class: 'axis' }));
      chart.appendChild(svg('text', { x: x(t), y: 12, 'text-anchor': 'middle', text: h === 0 ? 'now' : (h > 0 ? '+' : '') + h + 'h' }));
    }
    chart.appendChild(svg('line', { x1: x(now), x2: x(now), y1: top - 4, y2: height, class: 'now' }));
    data.rows.forEach((r, i) => {
      chart.appendChild(svg('text', { x: 4, y: top + i * rowH + 12, text: r.name.length > 26 ? r.name.slice(0, 25) + '…' : r.name }));
    });
    for (const e of data.entries) {
      const row = index.get(e.job_id);
      if (row === undefined) continue;
      const cls = e.kind === 'planned' ? 'fill-planned' : 'fill-' + e.status;
      const r = e.kind === 'planned' ? 2.5 : Math.min(5, 3 + Math.log2(e.count));
      const dot = svg('circle', { cx: x(new Date(e.at).getTime()), cy: top + row * rowH + 8, r, class: cls });
      const what = e.kind === 'planned' ? 'planned' : e.count > 1 ? e.count + ' runs, worst ' + e.status : e.status;
      dot.appendChild(svg('title', { text: e.name + ' · ' + what + ' · ' + fmtTime(e.at) }));
      chart.appendChild(dot);
    }
    holder.appendChild(chart);
    if (data.total_jobs > data.rows.length) {
      holder.appendChild(el('p', { className: 'muted small', text: data.rows.length + ' of ' + data.total_jobs + ' jobs shown (those that ran first).' }));
    }
  }

  // -- live events -----------------------------------------------------------------
  function describeEvent(ev) {
    const parts = [];
    if (ev.job_id) parts.push(ev.job_id);
    if (ev.node_id) parts.push(ev.node_id);
    if (ev.queue) parts.push(ev.queue);
    if (ev.circuit) parts.push('circuit ' + ev.circuit);
    if (ev.attempt && ev.attempt > 1) parts.push('attempt ' + ev.attempt);
    if (typeof ev.progress === 'number') parts.push(fmtPercent(ev.progress));
    if (ev.duration_s !== undefined) parts.push(fmtDuration(ev.duration_s));
    if (ev.reason) parts.push(ev.reason);
    if (ev.error) parts.push(ev.error);
    if (ev.note) parts.push('note: ' + ev.note);
    if (ev.message) parts.push(ev.message);
    if (ev.resolved === true) parts.push('resolved');
    return parts.join(' · ');
  }

  function addEvent(ev) {
    const feed = $('event-feed');
    const when = ev.at ? new Date(ev.at).toLocaleTimeString() : '';
    // One line per run for its progress (the newest), or it would push everything else out.
    const progressOf = ev.type === 'run.progress' && ev.run_id ? String(ev.run_id) : null;
    if (progressOf) {
      for (const item of feed.children) {
        if (item.dataset.progressOf === progressOf) { item.remove(); break; }
      }
    }
    feed.insertBefore(el('li', { dataset: progressOf ? { progressOf } : null },
      el('span', { className: 'when', text: when }),
      el('span', { className: 'type', text: ev.type }),
      el('span', { className: 'what', text: describeEvent(ev) })), feed.firstChild);
    while (feed.children.length > FEED_MAX) feed.removeChild(feed.lastChild);
  }

  function scheduleRefresh(key, fn, delay) {
    if (state.refreshTimers.has(key)) return;
    state.refreshTimers.set(key, setTimeout(() => {
      state.refreshTimers.delete(key);
      fn().catch(reportError);
    }, delay));
  }

  function onEvent(ev) {
    addEvent(ev);
    const type = ev.type || '';
    if (type === 'run.progress' && ev.job_id) {
      // Only the job's row or page changes (not the counts, the timeline or the history).
      if (state.currentJob === ev.job_id) {
        scheduleRefresh('progress:' + ev.job_id, () => loadJobProgress(ev.job_id), PROGRESS_REFRESH_MS);
      } else scheduleRefresh('row:' + ev.job_id, () => refreshJobRow(ev.job_id), PROGRESS_REFRESH_MS);
    } else if (ev.job_id) {
      if (type === 'job.added' || type === 'job.removed') scheduleRefresh('jobs', loadJobs, 150);
      else if (state.currentJob === ev.job_id) scheduleRefresh('job:' + ev.job_id, () => loadJob(ev.job_id), 100);
      else scheduleRefresh('row:' + ev.job_id, () => refreshJobRow(ev.job_id), 100);
      scheduleRefresh('health', loadHealth, 1000);
      if (type.startsWith('run.') && !state.currentJob) scheduleRefresh('timeline', loadTimeline, 2000);
    } else if (type.startsWith('node.')) {
      scheduleRefresh('nodes', loadNodes, 200);
      scheduleRefresh('health', loadHealth, 1000);
    } else if (type.startsWith('queue.')) {
      scheduleRefresh('queues', loadQueues, 500);
    }
  }

  function setLive(on, text) {
    const live = $('live');
    live.textContent = text;
    live.className = 'live ' + (on ? 'on' : 'off');
  }

  function connectSocket() {
    if (!state.token) return;
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const socket = new WebSocket(scheme + location.host + '/ws');
    state.socket = socket;
    setLive(false, 'connecting');
    socket.onopen = () => socket.send(JSON.stringify({ type: 'auth', token: state.token }));
    socket.onmessage = (message) => {
      let ev;
      try { ev = JSON.parse(message.data); } catch (e) { return; }
      if (Array.isArray(ev)) { ev.forEach(onEvent); return; }
      if (ev.type === 'hello') {
        state.reconnectDelay = 1000;
        setLive(true, 'live');
      }
    };
    socket.onclose = (close) => {
      if (state.socket !== socket) return;
      state.socket = null;
      if (close.code === 4403 || close.code === 4401) { logout('The token was not accepted.'); return; }
      setLive(false, 'offline — reconnecting');
      setTimeout(connectSocket, state.reconnectDelay);
      state.reconnectDelay = Math.min(state.reconnectDelay * 2, 30000);
      // Events may have been missed while disconnected: reload what is on screen.
      scheduleRefresh('resync', () => route(), 500);
    };
  }

  // -- cron playground -------------------------------------------------------------
  async function checkCron(event) {
    if (event) event.preventDefault();
    const out = $('cron-result');
    try {
      const r = await api('POST', '/api/cron/validate', { expression: $('cron-expr').value, timezone: $('cron-tz').value || 'UTC' });
      clear(out);
      if (r.valid) {
        out.appendChild(el('p', { className: 'status succeeded', text: r.description || 'valid' }));
      } else {
        out.appendChild(el('p', { className: 'error', text: r.error || 'invalid' }));
      }
      r.warnings.forEach((w) => out.appendChild(el('p', { className: 'warn', text: '⚠ ' + w })));
      if (r.next_runs.length) {
        out.appendChild(el('ol', { className: 'plain' }, r.next_runs.map((t) => el('li', { text: fmtTime(t) + ' (' + fmtRelative(t) + ')' }))));
      }
    } catch (err) { reportError(err); }
  }

  // -- job page --------------------------------------------------------------------
  function fact(dl, label, value) {
    dl.appendChild(el('dt', { text: label }));
    dl.appendChild(el('dd', null, value));
  }

  function durationChart(runs) {
    const points = runs.filter((r) => r.duration !== null).slice(0, 60).reverse();
    if (!points.length) return el('p', { className: 'muted', text: 'No finished runs yet.' });
    const width = 1000, height = 180, left = 50, bottom = 20, top = 10;
    const max = Math.max(...points.map((r) => r.duration), 0.001);
    const bar = (width - left - 10) / points.length;
    const chart = svg('svg', { viewBox: '0 0 ' + width + ' ' + height, role: 'img', 'aria-label': 'Durations of recent runs' });
    chart.appendChild(svg('line', { x1: left, x2: width - 10, y1: height - bottom, y2: height - bottom, class: 'axis' }));
    chart.appendChild(svg('text', { x: left - 6, y: top + 10, 'text-anchor': 'end', text: fmtDuration(max) }));
    chart.appendChild(svg('text', { x: left - 6, y: height - bottom, 'text-anchor': 'end', text: '0' }));
    points.forEach((r, i) => {
      const h = Math.max(1, (r.duration / max) * (height - bottom - top));
      const rect = svg('rect', { x: left + i * bar + 1, y: height - bottom - h, width: Math.max(1, bar - 2), height: h, class: 'fill-' + r.status });
      rect.appendChild(svg('title', { text: fmtTime(r.scheduled_for) + ' · ' + r.status + ' · ' + fmtDuration(r.duration) }));
      chart.appendChild(rect);
    });
    return chart;
  }

  function runRow(r) {
    const detail = r.error || (r.skip_reason ? 'skipped: ' + r.skip_reason : '');
    return el('tr', { dataset: { runId: r.run_id } },
      el('td', null, el('span', { text: fmtTime(r.scheduled_for) }),
        r.lateness ? el('span', { className: 'sub', text: 'started ' + fmtDuration(r.lateness) + ' late' }) : null),
      el('td', null, statusCell(r.status)),
      el('td', { text: fmtDuration(r.duration) }),
      el('td', { text: r.attempt }),
      el('td', { text: r.node_id || '—' }),
      el('td', { className: detail ? 'error' : '', text: detail }),
      el('td', null, r.output_tail ? el('pre', { text: r.output_tail }) : null));
  }

  // Empty the job page, then show either a job (`showJobParts(true)`) or why there is none.
  function resetJobView() {
    $('job-title').textContent = '';
    $('job-status-badge').textContent = '';
    $('job-status-badge').className = 'status';
    showJobProgress(null);
    $('job-note').hidden = true;
    $('job-missing').hidden = true;
    clear($('job-facts'));
    clear($('job-next'));
    $('job-definition').textContent = '';
    clear($('job-chart'));
    clear($('runs-table').tBodies[0]);
    $('runs-empty').hidden = true;
  }

  function showJobParts(visible) {
    for (const id of ['job-status-badge', 'job-run', 'job-details']) $(id).hidden = !visible;
    if (!visible) for (const id of ['job-pause', 'job-resume', 'pause-note']) $(id).hidden = true;
  }

  function showUnknownJob(text) {
    resetJobView();
    showJobParts(false);
    $('job-title').textContent = 'Unknown job';
    const missing = $('job-missing');
    missing.textContent = 'There is no job with the id ' + text + '.';
    missing.hidden = false;
  }

  // The progress next to the status badge (hidden when unknown or `job` is null).
  function showJobProgress(job) {
    const known = job !== null && hasProgress(job);
    $('job-progress').hidden = !known;
    $('job-progress-text').textContent = known ? fmtPercent(job.progress) : '';
    $('job-progress-bar').value = known ? job.progress : 0;
  }

  // On `run.progress`: only the status and progress of the page change, so the rest (the
  // history, the chart) is not redrawn under the reader's eyes.
  async function loadJobProgress(jobId) {
    let job;
    try {
      job = await api('GET', jobPath(jobId));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return; // `job.removed` follows
      throw err;
    }
    if (state.currentJob !== jobId) return;
    const badge = $('job-status-badge');
    badge.textContent = job.status;
    badge.className = 'status ' + job.status;
    showJobProgress(job);
  }

  async function loadJob(jobId) {
    let job;
    try {
      job = await api('GET', jobPath(jobId));
    } catch (err) {
      if (state.currentJob !== jobId) return;
      if (err instanceof ApiError && err.status === 404) { showUnknownJob(JSON.stringify(jobId)); return; }
      // 422: the API refuses the id itself (e.g. longer than 200 characters).
      if (err instanceof ApiError && err.status === 422) { showUnknownJob(JSON.stringify(jobId) + ' (not a valid job id)'); return; }
      throw err;
    }
    if (state.currentJob !== jobId) return;
    showJobParts(true);
    $('job-missing').hidden = true;
    $('job-title').textContent = job.name;
    const badge = $('job-status-badge');
    badge.textContent = job.status;
    badge.className = 'status ' + job.status;
    showJobProgress(job);
    $('job-pause').hidden = job.paused;
    $('job-resume').hidden = !job.paused;
    $('pause-note').hidden = job.paused;
    const note = $('job-note');
    const why = statusNote(job);
    note.hidden = !job.paused && job.status !== 'disabled';
    note.textContent = job.status === 'disabled' ? 'Disabled' + (why ? ': ' + why : '')
      : job.paused ? 'Paused' + (why ? ': ' + why : '') : '';
    const facts = $('job-facts');
    clear(facts);
    fact(facts, 'Id', el('code', { text: job.id }));
    fact(facts, 'Schedule', [el('code', { text: job.schedule }), ' — ', job.description]);
    fact(facts, 'Time zone', job.timezone);
    fact(facts, 'Tags', job.tags.length ? job.tags.map((t) => el('span', { className: 'tag', text: t })) : '—');
    fact(facts, 'Last result', lastResultCell(job));
    fact(facts, 'Runs', job.stats.total + ' total · ' + job.stats.succeeded + ' ok · ' + job.stats.failed + ' failed · ' + job.stats.skipped + ' skipped');
    fact(facts, 'Duration p50 / p95', fmtDuration(job.stats.p50_duration) + ' / ' + fmtDuration(job.stats.p95_duration));
    if (job.consecutive_failures) fact(facts, 'Failing', job.consecutive_failures + ' in a row');
    const next = $('job-next');
    clear(next);
    if (job.next_runs.length) job.next_runs.forEach((t) => next.appendChild(el('li', { text: fmtTime(t) + ' (' + fmtRelative(t) + ')' })));
    else next.appendChild(el('li', { className: 'muted', text: job.paused ? 'paused' : 'no upcoming fire' }));
    $('job-definition').textContent = JSON.stringify(job.definition, null, 2);
    const chart = $('job-chart');
    clear(chart);
    chart.appendChild(durationChart(job.recent_runs));
    const body = $('runs-table').tBodies[0];
    clear(body);
    job.recent_runs.forEach((r) => body.appendChild(runRow(r)));
    $('runs-empty').hidden = job.recent_runs.length > 0;
  }

  // -- routing ---------------------------------------------------------------------
  function route() {
    if (!state.token) { showLogin(); return Promise.resolve(); }
    const match = location.hash.match(/^#\/job\/(.+)$/);
    const tasks = [loadHealth()];
    if (match) {
      let jobId = null;
      try { jobId = decodeURIComponent(match[1]); } catch (err) { /* e.g. #/job/% */ }
      $('overview-view').hidden = true;
      $('job-view').hidden = false;
      if (state.currentJob !== jobId) resetJobView();
      state.currentJob = jobId;
      if (jobId === null) showUnknownJob(JSON.stringify(match[1]) + ' (not a valid address)');
      else tasks.push(loadJob(jobId));
    } else {
      state.currentJob = null;
      $('overview-view').hidden = false;
      $('job-view').hidden = true;
      tasks.push(loadJobs(), loadNodes(), loadQueues(), loadTimeline());
    }
    return Promise.all(tasks).catch(reportError);
  }

  function tick() {
    $('clock').textContent = new Date().toLocaleTimeString();
  }

  function init() {
    $('login-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const token = $('token').value.trim();
      $('token').value = '';
      if (token) login(token);
    });
    $('logout').addEventListener('click', () => logout());
    $('cron-form').addEventListener('submit', checkCron);
    let searchTimer = null;
    $('job-search').addEventListener('input', () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => { state.jobsOffset = 0; loadJobs().catch(reportError); }, 200);
    });
    $('job-tag').addEventListener('change', () => { state.jobsOffset = 0; loadJobs().catch(reportError); });
    $('job-status').addEventListener('change', () => { state.jobsOffset = 0; loadJobs().catch(reportError); });
    $('jobs-prev').addEventListener('click', () => { state.jobsOffset = Math.max(0, state.jobsOffset - PAGE_SIZE); loadJobs().catch(reportError); });
    $('jobs-next').addEventListener('click', () => { state.jobsOffset += PAGE_SIZE; loadJobs().catch(reportError); });
    $('job-run').addEventListener('click', () => state.currentJob && runJob(state.currentJob));
    $('job-pause').addEventListener('click', () => {
      if (!state.currentJob) return;
      const note = $('pause-note').value.trim();
      $('pause-note').value = '';
      pauseJob(state.currentJob, note || null);
    });
    $('job-resume').addEventListener('click', () => state.currentJob && resumeJob(state.currentJob));
    window.addEventListener('hashchange', route);
    tick();
    setInterval(tick, 1000);
    setInterval(() => { if (state.token && !state.currentJob) loadHealth().catch(reportError); }, 30000);
    if (state.token) login(state.token);
    else showLogin();
  }

  document.addEventListener('DOMContentLoaded', init);
})();
