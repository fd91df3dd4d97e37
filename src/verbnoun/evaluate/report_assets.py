"""The report page's style sheet and script (kept apart from the Python that fills the page).

The script reads the question data from the page's ``<script type="application/json"
id="report-data">`` block (see :mod:`verbnoun.evaluate.report` for its columns) and renders one
page of questions at a time; every text goes into the page through ``textContent``, never as
markup. Filters (benchmark, run, right/wrong, verb, noun, text) and the page number live in the
address (``?wrong=1&run=hard-model&page=3``), so a filtered view can be shared. Keys: ``j`` /
``k`` (or the down / up arrows on a question) next / previous question, ``n`` / ``p`` (or right
/ left arrows) next / previous page, ``/`` the text filter. When the first page is on screen the
body gets ``data-rendered-ms``: milliseconds since the navigation started (the load time that
``benchmarks/bench_report.py`` measures). ``?keys=j,j,n`` presses those keys once the page is
shown and records the focused question and the page on the body (``data-focused``,
``data-page``), for a scripted check of the keyboard navigation.
"""

STYLE = """
body{font-family:sans-serif;max-width:78em;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.right,.held{color:#176f2c}.wrong,.not-held{color:#b3261e}.failed{color:#8a6d00}
.muted{color:#666}.tag{font-size:80%;color:#555;border:1px solid #bbb;border-radius:3px;
padding:0 3px}
details{margin:.5em 0}summary{cursor:pointer}
#controls{position:sticky;top:0;background:#fff;padding:.4em 0;border-bottom:1px solid #ddd;
z-index:1}
#controls label{margin-right:.8em;white-space:nowrap}
#controls select{max-width:16em}
.question{border-bottom:1px solid #ddd;padding:.5em;display:flex;gap:1em;outline:none}
.question:focus{background:#f3f7ff;box-shadow:inset 3px 0 #3b6fd4}
.question .sheet{flex:none;image-rendering:pixelated;background:#eee}
.question ol{list-style:none;padding-left:0;margin:.3em 0}
.question h3{margin:0 0 .2em;font-size:105%}
.answers td{border:none;padding:0 .6em 0 0}
.raw{color:#666;font-size:85%}
#pager button{margin:0 .3em}
"""

SCRIPT = r"""
(function () {
  'use strict';
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var S = D.strings, Q = D.questions, R = D.runs, B = D.benchmarks;
  var total = Q.id.length, PAGE = D.page_size;
  var start = [], acc = 0;
  B.forEach(function (b) { start.push(acc); acc += b.count; });
  var anyWrong = new Uint8Array(total), allRight = new Uint8Array(total);
  var answeredBy = new Uint16Array(total);
  R.forEach(function (r) {
    var s0 = start[r.bench];
    for (var i = 0; i < r.outcome.length; i++) {
      var g = s0 + i, o = r.outcome[i];
      if (o === 0) anyWrong[g] = 1;
      if (o === 0 || o === 1) answeredBy[g]++;
    }
  });
  for (var g = 0; g < total; g++) allRight[g] = (answeredBy[g] > 0 && !anyWrong[g]) ? 1 : 0;

  var state = {bench: '', run: '', outcome: 'all', verb: '', noun: '', text: '', page: 1};
  var params = new URLSearchParams(window.location.search);
  if (params.get('wrong') === '1') state.outcome = 'wrong';
  ['bench', 'run', 'outcome', 'verb', 'noun', 'text'].forEach(function (k) {
    if (params.get(k) !== null) state[k] = params.get(k);
  });
  state.page = Math.max(1, parseInt(params.get('page') || '1', 10) || 1);
  var runIndex = {};
  R.forEach(function (r, i) { runIndex[r.label] = i; });
  var benchIndex = {};
  B.forEach(function (b, i) { benchIndex[b.name] = i; });

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  }
  function option(select, value, text) {
    var o = el('option', text); o.value = value; select.appendChild(o);
  }
  function className(names, id) {
    if (id === null || id === undefined) return 'none';
    var n = names && names[String(id)];
    return n ? id + ' ' + n : String(id);
  }
  function fillSelects() {
    var bench = document.getElementById('f-bench');
    option(bench, '', 'all benchmarks');
    B.forEach(function (b) { option(bench, b.name, b.name + ' (' + b.count + ')'); });
    var run = document.getElementById('f-run');
    option(run, '', 'any run');
    R.forEach(function (r) { option(run, r.label, r.label + ' [' + B[r.bench].name + ']'); });
    var outcome = document.getElementById('f-outcome');
    option(outcome, 'all', 'right or wrong');
    option(outcome, 'wrong', 'wrong (some run, or the chosen run)');
    option(outcome, 'right', 'right (every run, or the chosen run)');
    [['f-verb', 'verb', D.verb_names], ['f-noun', 'noun', D.noun_names]].forEach(function (f) {
      var seen = {}, ids = [];
      for (var i = 0; i < total; i++) {
        var v = Q[f[1]][i];
        if (v !== null && !seen[v]) { seen[v] = 1; ids.push(v); }
      }
      ids.sort(function (a, b) { return a - b; });
      var select = document.getElementById(f[0]);
      option(select, '', 'any ' + f[1]);
      ids.forEach(function (v) { option(select, String(v), className(f[2], v)); });
    });
    ['bench', 'run', 'outcome', 'verb', 'noun'].forEach(function (k) {
      document.getElementById('f-' + k).value = state[k];
    });
    document.getElementById('f-text').value = state.text;
  }

  function matches(g) {
    var b = Q.b[g];
    if (state.bench !== '' && benchIndex[state.bench] !== b) return false;
    if (state.verb !== '' && String(Q.verb[g]) !== state.verb) return false;
    if (state.noun !== '' && String(Q.noun[g]) !== state.noun) return false;
    if (state.run !== '') {
      var r = R[runIndex[state.run]];
      if (!r || r.bench !== b) return false;
      var o = r.outcome[g - start[b]];
      if (state.outcome === 'wrong' && o !== 0) return false;
      if (state.outcome === 'right' && o !== 1) return false;
    } else {
      if (state.outcome === 'wrong' && !anyWrong[g]) return false;
      if (state.outcome === 'right' && !allRight[g]) return false;
    }
    if (state.text) {
      var t = state.text.toLowerCase();
      if (S[Q.narration[g]].toLowerCase().indexOf(t) < 0 &&
          Q.id[g].toLowerCase().indexOf(t) < 0) return false;
    }
    return true;
  }

  var shown = [];
  function card(g) {
    var b = Q.b[g], local = g - start[b];
    var div = el('div', null, 'question');
    div.tabIndex = 0;
    div.id = 'q-' + g;
    if (Q.image[g] >= 0) {
      var img = el('img', null, 'sheet');
      img.loading = 'lazy';
      img.alt = 'frames';
      img.width = D.image_size[0]; img.height = D.image_size[1];
      img.src = D.image_dir + '/' + S[Q.image[g]];
      div.appendChild(img);
    }
    var body = el('div');
    var h = el('h3', Q.id[g]);
    h.appendChild(document.createTextNode(' '));
    h.appendChild(el('small', B[b].name + ' \u00b7 ' + S[Q.video[g]] + ' ' +
      Q.start[g].toFixed(2) + '-' + Q.stop[g].toFixed(2) + ' s', 'muted'));
    body.appendChild(h);
    var p = el('p');
    p.appendChild(document.createTextNode('narration: '));
    p.appendChild(el('b', S[Q.narration[g]]));
    p.appendChild(document.createTextNode('; verb ' + className(D.verb_names, Q.verb[g]) +
      ', noun ' + className(D.noun_names, Q.noun[g])));
    body.appendChild(p);
    var ol = el('ol'), opts = Q.options[g];
    for (var k = 0; k < opts.length; k += 3) {
      var i = k / 3, li = el('li', String.fromCharCode(65 + i) + '. ' + S[opts[k]]);
      if (i === Q.answer[g]) li.className = 'right';
      li.appendChild(document.createTextNode(' '));
      li.appendChild(el('small', '[' + S[opts[k + 1]] + ', ' + S[opts[k + 2]] + ']', 'muted'));
      ol.appendChild(li);
    }
    if (Q.answer[g] < 0) ol.appendChild(el('li', '(the truth is not among the options)', 'muted'));
    body.appendChild(ol);
    var table = el('table', null, 'answers');
    R.forEach(function (r) {
      if (r.bench !== b) return;
      var o = r.outcome[local], c = r.choice[local], tr = el('tr');
      tr.appendChild(el('td', r.label));
      var text;
      if (o === -1) text = 'not answered';
      else if (o === 2) text = 'failed';
      else if (r.shown && r.shown[local] !== undefined) text = S[r.shown[local]];
      else text = c >= 0 ? String.fromCharCode(65 + c) : 'unparsed';
      tr.appendChild(el('td', text, o === 1 ? 'right' : o === 0 ? 'wrong' :
        o === 2 ? 'failed' : 'muted'));
      var raw = r.raw && r.raw[local] !== undefined ? S[r.raw[local]] : '';
      tr.appendChild(el('td', raw, 'raw'));
      table.appendChild(tr);
    });
    body.appendChild(table);
    div.appendChild(body);
    return div;
  }

  function render(keepFocus) {
    shown = [];
    for (var g = 0; g < total; g++) if (matches(g)) shown.push(g);
    var pages = Math.max(1, Math.ceil(shown.length / PAGE));
    state.page = Math.min(Math.max(1, state.page), pages);
    var list = document.getElementById('questions');
    list.textContent = '';
    var first = (state.page - 1) * PAGE;
    var fragment = document.createDocumentFragment();
    shown.slice(first, first + PAGE).forEach(function (g) { fragment.appendChild(card(g)); });
    list.appendChild(fragment);
    document.getElementById('shown').textContent = shown.length;
    document.getElementById('page').textContent = state.page;
    document.getElementById('pages').textContent = pages;
    document.getElementById('prev').disabled = state.page <= 1;
    document.getElementById('next').disabled = state.page >= pages;
    var q = new URLSearchParams();
    ['bench', 'run', 'verb', 'noun', 'text'].forEach(function (k) {
      if (state[k] !== '') q.set(k, state[k]);
    });
    if (state.outcome !== 'all') q.set('outcome', state.outcome);
    if (state.page > 1) q.set('page', state.page);
    try { history.replaceState(null, '', '?' + q.toString()); } catch (e) { /* file: */ }
    if (keepFocus === 'first' || keepFocus === 'last') {
      var cards = list.querySelectorAll('.question');
      if (cards.length) (keepFocus === 'first' ? cards[0] : cards[cards.length - 1]).focus();
    }
  }

  function go(page, focus) { state.page = page; render(focus); }
  function move(step) {
    var cards = Array.prototype.slice.call(document.querySelectorAll('.question'));
    var at = cards.indexOf(document.activeElement);
    if (at < 0) { if (cards.length) cards[0].focus(); return; }
    var next = at + step;
    if (next >= cards.length) {
      if (state.page * PAGE < shown.length) go(state.page + 1, 'first');
    } else if (next < 0) {
      if (state.page > 1) go(state.page - 1, 'last');
    } else {
      cards[next].focus();
    }
  }

  document.addEventListener('DOMContentLoaded', function () {
    fillSelects();
    ['bench', 'run', 'outcome', 'verb', 'noun'].forEach(function (k) {
      document.getElementById('f-' + k).addEventListener('change', function (e) {
        state[k] = e.target.value; state.page = 1; render();
      });
    });
    document.getElementById('f-text').addEventListener('input', function (e) {
      state.text = e.target.value; state.page = 1; render();
    });
    document.getElementById('prev').addEventListener('click', function () {
      go(state.page - 1);
    });
    document.getElementById('next').addEventListener('click', function () {
      go(state.page + 1);
    });
    document.addEventListener('keydown', function (e) {
      var tag = (e.target.tagName || '').toLowerCase();
      if (tag === 'input' || tag === 'select' || tag === 'textarea' || e.ctrlKey ||
          e.metaKey || e.altKey) return;
      var onCard = e.target.classList && e.target.classList.contains('question');
      var key = e.key;
      if (key === 'j' || (onCard && key === 'ArrowDown')) { move(1); }
      else if (key === 'k' || (onCard && key === 'ArrowUp')) { move(-1); }
      else if (key === 'n' || key === 'ArrowRight') {
        if (state.page * PAGE < shown.length) go(state.page + 1, 'first');
      } else if (key === 'p' || key === 'ArrowLeft') {
        if (state.page > 1) go(state.page - 1, 'first');
      } else if (key === '/') { document.getElementById('f-text').focus(); }
      else return;
      e.preventDefault();
    });
    render();
    document.body.setAttribute('data-rendered-ms', performance.now().toFixed(0));
    var keys = params.get('keys');  // a scripted check: ?keys=j,j,n presses those keys
    if (keys) {
      keys.split(',').forEach(function (k) {
        (document.activeElement || document.body).dispatchEvent(
          new KeyboardEvent('keydown', {key: k, bubbles: true}));
      });
      var at = document.activeElement;
      document.body.setAttribute('data-focused', at && at.id ? at.id : '');
      document.body.setAttribute('data-page', String(state.page));
    }
  });
})();
"""
