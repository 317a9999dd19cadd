#include "audit/report_assets.h"

namespace medeval {

const char kReportCss[] = R"CSS(
:root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bad: #b42318; --badbg: #fef3f2;
        --warn: #b54708; --warnbg: #fffaeb; --ok: #067647; --accent: #2e5aac; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", sans-serif;
       color: var(--fg); margin: 0 auto; max-width: 1400px; padding: 16px 24px 64px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.meta { color: var(--muted); margin: 0 0 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: 6px 8px; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
th { color: var(--muted); font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.chart { border: 1px solid var(--line); border-radius: 6px; padding: 8px 12px; }
.chart h3 { font-size: 13px; margin: 0 0 4px; color: var(--muted); font-weight: 600; }
.controls { display: flex; flex-wrap: wrap; gap: 12px; align-items: center; padding: 8px 0;
            position: sticky; top: 0; background: #fff; z-index: 1; border-bottom: 1px solid var(--line); }
.controls label { white-space: nowrap; }
#search { min-width: 240px; padding: 4px 6px; }
#count { color: var(--muted); }
article.q { border: 1px solid var(--line); border-radius: 6px; margin: 12px 0; }
article.q header { display: flex; gap: 12px; padding: 6px 10px; background: #f8f9fb;
                   border-bottom: 1px solid var(--line); color: var(--muted); font-size: 12px; }
.qt { white-space: pre-wrap; padding: 8px 10px; max-height: 9em; overflow: hidden; cursor: pointer; }
.qt.open { max-height: none; }
.answers { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1px;
           background: var(--line); border-top: 1px solid var(--line); }
.ans { background: #fff; padding: 6px 10px; min-width: 0; }
.ans .model { font-size: 12px; color: var(--muted); font-weight: 600; }
.ans pre { white-space: pre-wrap; word-break: break-word; margin: 4px 0; font: inherit; }
.ans.null pre { color: var(--bad); font-style: italic; }
.badge { display: inline-block; font-size: 11px; border-radius: 4px; padding: 0 6px; margin: 2px 4px 0 0; }
.badge.bad { color: var(--bad); background: var(--badbg); }
.badge.warn { color: var(--warn); background: var(--warnbg); }
details.rs summary { cursor: pointer; color: var(--accent); font-size: 12px; }
details.rs pre { color: var(--muted); max-height: 24em; overflow: auto; }
.pager { display: flex; gap: 8px; align-items: center; margin: 12px 0; }
.why { color: var(--muted); font-size: 12px; }
details.shared { padding: 0 10px 6px; color: var(--muted); font-size: 12px; }
details.shared summary { cursor: pointer; }
details.shared pre { white-space: pre-wrap; font: inherit; margin: 4px 0; }
.consensus { color: var(--ok); }
.ans .chosen { font-size: 12px; color: var(--accent); font-weight: 600; }
.ans .note { font-size: 12px; color: var(--warn); }
#datasets tr.first td { border-top: 2px solid var(--line); }
#datasets td.problems { text-align: left; white-space: normal; color: var(--bad); }
tr.total td { font-weight: 600; }
)CSS";

const char kReportJs[] = R"JS(
(function () {
  'use strict';
  var DATA = JSON.parse(document.getElementById('data').textContent);
  var PAGE = 25;
  var M = DATA.models.length;
  var FLAG_MISSING = 1, FLAG_LEAK = 2, FLAG_TRUNC = 4, FLAG_INCONSISTENT = 8, FLAG_UNTAGGED = 16,
      FLAG_UNREADABLE = 32;

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function norm(a) {
    return a === null ? null : a.replace(/[\s<>，,。.]/g, '').toUpperCase();
  }
  // Choice answers are compared by the option chosen (its text), others by
  // their text; null (no answer) differs from anything.
  function key(a) { return a[4] ? 'c:' + a[4].replace(/^[A-Z]+ · /, '') : norm(a[0]); }
  function disagree(q) {
    var first;
    for (var i = 0; i < q.a.length; i++) {
      var n = key(q.a[i]);
      if (i === 0) first = n; else if (n !== first) return true;
    }
    return false;
  }
  function violates(q) {
    for (var i = 0; i < q.a.length; i++) {
      if (q.a[i][1] || (q.a[i][2] & FLAG_MISSING) || q.a[i][0] === null) return true;
    }
    return false;
  }
  function inconsistent(q) {
    for (var i = 0; i < q.a.length; i++) if (q.a[i][2] & FLAG_INCONSISTENT) return true;
    return false;
  }
  function matches(q, needle) {
    if (!needle) return true;
    if (q.t.toLowerCase().indexOf(needle) >= 0) return true;
    for (var i = 0; i < q.a.length; i++) {
      var a = q.a[i][0];
      if (a !== null && a.toLowerCase().indexOf(needle) >= 0) return true;
    }
    return false;
  }

  function readState() {
    var s = { dataset: DATA.datasets.length ? DATA.datasets[0].name : '', filter: 'all', q: '', page: 1 };
    var h = location.hash.replace(/^#/, '');
    h.split('&').forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf('=');
      var k = decodeURIComponent(i < 0 ? kv : kv.slice(0, i));
      var v = decodeURIComponent(i < 0 ? '' : kv.slice(i + 1));
      if (k === 'page') s.page = Math.max(1, parseInt(v, 10) || 1); else if (k in s) s[k] = v;
    });
    return s;
  }
  function writeState(s) {
    var h = 'dataset=' + encodeURIComponent(s.dataset) + '&filter=' + s.filter +
            (s.q ? '&q=' + encodeURIComponent(s.q) : '') + (s.page > 1 ? '&page=' + s.page : '');
    if (location.hash.replace(/^#/, '') !== h) location.hash = h; else render();
  }

  var ui = {};
  function build() {
    var root = document.getElementById('browser');
    var c = el('div', 'controls');
    ui.dataset = el('select'); ui.dataset.id = 'dataset';
    DATA.datasets.forEach(function (d) {
      var o = el('option', '', d.name + ' (' + d.q.length + ')'); o.value = d.name; ui.dataset.appendChild(o);
    });
    c.appendChild(ui.dataset);
    ui.filters = {};
    [['all', 'all'], ['disagree', 'disagreements'], ['violations', 'format violations'],
     ['inconsistent', 'inconsistent shuffled groups']].forEach(function (f) {
      var l = el('label'); var r = el('input'); r.type = 'radio'; r.name = 'filter'; r.value = f[0];
      r.id = 'filter-' + f[0]; ui.filters[f[0]] = r; l.appendChild(r); l.appendChild(document.createTextNode(' ' + f[1]));
      c.appendChild(l);
    });
    ui.search = el('input'); ui.search.type = 'search'; ui.search.id = 'search'; ui.search.placeholder = 'search questions and answers';
    c.appendChild(ui.search);
    ui.count = el('span'); ui.count.id = 'count'; c.appendChild(ui.count);
    root.appendChild(c);
    ui.why = el('div', 'why'); ui.why.id = 'format-why'; root.appendChild(ui.why);
    ui.list = el('div'); ui.list.id = 'questions'; root.appendChild(ui.list);
    ui.pager = el('div', 'pager'); ui.pager.id = 'pager'; root.appendChild(ui.pager);

    ui.dataset.addEventListener('change', function () { var s = readState(); s.dataset = ui.dataset.value; s.page = 1; writeState(s); });
    Object.keys(ui.filters).forEach(function (k) {
      ui.filters[k].addEventListener('change', function () { var s = readState(); s.filter = k; s.page = 1; writeState(s); });
    });
    var timer = null;
    ui.search.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { var s = readState(); s.q = ui.search.value; s.page = 1; writeState(s); }, 200);
    });
    window.addEventListener('hashchange', render);
  }

  function answerCell(model, a, group, index) {
    var text = a[0], problem = a[1] || '', flags = a[2], reasoning = a[3] || '', chosen = a[4] || '', note = a[5] || '';
    if (group && (flags & FLAG_INCONSISTENT) && group[index]) {
      note += (note ? '; ' : '') + "this id's shuffles chose " + group[index];
    }
    var cell = el('div', 'ans' + (text === null ? ' null' : ''));
    cell.appendChild(el('div', 'model', model));
    if (chosen) cell.appendChild(el('div', 'chosen', 'chose ' + chosen));
    cell.appendChild(el('pre', 'text', text === null ? '(' + (note || ((flags & FLAG_MISSING) ? 'no line' : 'no answer')) + ')' : text));
    if (problem) cell.appendChild(el('span', 'badge bad', 'format: ' + problem));
    if (flags & FLAG_LEAK) cell.appendChild(el('span', 'badge bad', '<think> left in'));
    if (flags & FLAG_UNTAGGED) cell.appendChild(el('span', 'badge bad', 'reasoning without think tags'));
    if (flags & FLAG_TRUNC) cell.appendChild(el('span', 'badge warn', 'cut off'));
    if (flags & FLAG_UNREADABLE) cell.appendChild(el('span', 'badge warn', 'no option read'));
    if (flags & FLAG_INCONSISTENT) cell.appendChild(el('span', 'badge warn', 'inconsistent across shuffles'));
    if (note && text !== null) cell.appendChild(el('div', 'note', note));
    if (reasoning) {
      var d = el('details', 'rs');
      d.appendChild(el('summary', '', 'reasoning (' + reasoning.length + ' characters)'));
      d.addEventListener('toggle', function () {
        if (d.open && d.childNodes.length === 1) d.appendChild(el('pre', '', reasoning));
      });
      cell.appendChild(d);
    }
    return cell;
  }

  function render() {
    var s = readState();
    var ds = null;
    DATA.datasets.forEach(function (d) { if (d.name === s.dataset) ds = d; });
    if (!ds && DATA.datasets.length) ds = DATA.datasets[0];
    ui.dataset.value = ds ? ds.name : '';
    (ui.filters[s.filter] || ui.filters.all).checked = true;
    if (ui.search.value !== s.q) ui.search.value = s.q;
    ui.list.textContent = '';
    ui.pager.textContent = '';
    if (!ds) { ui.count.textContent = 'no questions'; return; }
    ui.why.textContent = 'Answer format: ' + ds.format + (ds.why ? ' — ' + ds.why : '');
    var needle = s.q.toLowerCase();
    var test = { all: function () { return true; }, disagree: disagree, violations: violates, inconsistent: inconsistent }[s.filter] || function () { return true; };
    var hits = ds.q.filter(function (q) { return test(q) && matches(q, needle); });
    ui.count.textContent = hits.length + ' of ' + ds.q.length + ' questions';
    ui.count.setAttribute('data-count', String(hits.length));
    var pages = Math.max(1, Math.ceil(hits.length / PAGE));
    var page = Math.min(s.page, pages);
    hits.slice((page - 1) * PAGE, page * PAGE).forEach(function (q) {
      var art = el('article', 'q'); art.setAttribute('data-line', String(q.l));
      var h = el('header');
      h.appendChild(el('span', '', ds.name + ' line ' + q.l));
      if (q.id !== undefined) h.appendChild(el('span', '', 'id ' + q.id));
      if (q.g) h.appendChild(el('span', '', 'asked several times with shuffled options'));
      if (q.c !== undefined) h.appendChild(el('span', 'consensus', 'consensus of ' + DATA.consensus_models + ' models: ' + q.c));
      art.appendChild(h);
      // The question's own part first; what every question of the dataset
      // shares (instructions, worked example) folded below it.
      var qt = el('div', 'qt', q.t);
      qt.title = 'click to show the whole question';
      qt.addEventListener('click', function () { qt.classList.toggle('open'); });
      art.appendChild(qt);
      if (ds.pre || ds.suf) {
        var sh = el('details', 'shared');
        sh.appendChild(el('summary', '', 'text every ' + ds.name + ' question shares (' + (ds.pre.length + ds.suf.length) + ' characters)'));
        sh.addEventListener('toggle', function () {
          if (sh.open && sh.childNodes.length === 1) {
            if (ds.pre) sh.appendChild(el('pre', '', ds.pre + '…'));
            if (ds.suf) sh.appendChild(el('pre', '', '…' + ds.suf));
          }
        });
        art.appendChild(sh);
      }
      var grid = el('div', 'answers');
      var group = q.g && ds.gs ? ds.gs['id ' + q.id] : null;
      for (var i = 0; i < M; i++) grid.appendChild(answerCell(DATA.models[i], q.a[i], group, i));
      art.appendChild(grid);
      ui.list.appendChild(art);
    });
    if (pages > 1) {
      var prev = el('button', '', '< previous'); prev.disabled = page <= 1;
      prev.addEventListener('click', function () { s.page = page - 1; writeState(s); });
      var next = el('button', '', 'next >'); next.disabled = page >= pages;
      next.addEventListener('click', function () { s.page = page + 1; writeState(s); });
      ui.pager.appendChild(prev);
      ui.pager.appendChild(el('span', '', 'page ' + page + ' of ' + pages));
      ui.pager.appendChild(next);
    }
  }

  build();
  render();
})();
)JS";

}  // namespace medeval
