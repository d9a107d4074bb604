/* Shared helpers of the dashboard pages: fetching the node's API, number formats,
 * error capture, and the page report.
 *
 * Every page loads report.js first (it records JavaScript errors from the very
 * start), then this file. A page calls P2.show(element id, raw API value, text) for
 * each number it displays and P2.finish() once everything is drawn; finish() writes
 * the errors and the shown values as JSON into <pre id="page-report" hidden> and
 * sets <body data-ready="1">, so tests (and curious operators) can compare the page
 * with the API. Only the node itself is contacted: no CDN, no other hosts.
 */
'use strict';

var P2 = (function () {
  var shown = {};
  var SI = ['', 'k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'];

  function api(path) {
    // Pages live under /static/, the API at the root of the same port.
    return fetch('../' + path, {cache: 'no-store'}).then(function (response) {
      if (!response.ok) {
        return response.text().then(function (text) {
          var error = new Error(path + ': HTTP ' + response.status + ' ' + text.trim());
          error.status = response.status;
          throw error;
        });
      }
      return response.json();
    });
  }

  // Like api() but a refusal (e.g. 503 before the first block template) gives `fallback`.
  function apiOr(path, fallback) {
    return api(path).catch(function (error) {
      if (error.status) { return fallback; }
      throw error;
    });
  }

  function siNumber(value, digits) {
    if (value === null || value === undefined || !isFinite(value)) { return '?'; }
    if (value !== 0 && Math.abs(value) < 0.01) { return value.toPrecision(3) + ' '; }
    var index = 0;
    var scaled = Math.abs(value);
    while (scaled >= 1000 && index < SI.length - 1) { scaled /= 1000; index += 1; }
    var sign = value < 0 ? '-' : '';
    return sign + scaled.toFixed(digits === undefined ? 2 : digits) + (SI[index] ? ' ' + SI[index] : ' ');
  }

  function rate(value) { return siNumber(value) + 'H/s'; }

  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) { return '?'; }
    if (seconds < 0.1) { return seconds.toPrecision(2) + ' seconds'; }
    var units = [[31557600, 'years'], [86400, 'days'], [3600, 'hours'], [60, 'minutes'], [1, 'seconds']];
    for (var i = 0; i < units.length; i += 1) {
      if (seconds >= units[i][0] || i === units.length - 1) {
        return (seconds / units[i][0]).toFixed(1) + ' ' + units[i][1];
      }
    }
    return '?';
  }

  function percent(proportion, digits) {
    if (proportion === null || proportion === undefined || !isFinite(proportion)) { return '?'; }
    return (100 * proportion).toFixed(digits === undefined ? 1 : digits) + '%';
  }

  function coins(amount, symbol) {
    if (amount === null || amount === undefined || !isFinite(amount)) { return '?'; }
    return amount.toFixed(8) + (symbol ? ' ' + symbol : '');
  }

  function el(id) { return document.getElementById(id); }

  // Display `text` in element `id` and remember the raw API value behind it.
  function show(id, raw, text) {
    var node = el(id);
    if (!node) { throw new Error('page has no element #' + id); }
    node.textContent = text === undefined ? String(raw) : text;
    node.setAttribute('data-raw', JSON.stringify(raw === undefined ? null : raw));
    shown[id] = raw === undefined ? null : raw;
  }

  function record(key, raw) { shown[key] = raw; }

  function make(tag, attributes, children) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) {
      if (name === 'text') { node.textContent = attributes[name]; } else { node.setAttribute(name, attributes[name]); }
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } return node; }

  function shareLink(hash, label) {
    return make('a', {href: 'share.html#' + hash, 'class': 'hash', text: label || hash.slice(0, 16) + '…'});
  }

  // A table body from rows of cells (strings or nodes).
  function fillTable(tbodyId, rows, emptyText, columns) {
    var body = clear(el(tbodyId));
    if (!rows.length) {
      body.appendChild(make('tr', {}, [make('td', {colspan: String(columns || 1), 'class': 'empty',
        text: emptyText || 'none'})]));
      return;
    }
    // a row is a list of cells, or {cells: [...], 'class': 'name'} for a marked row
    rows.forEach(function (row) {
      var cells = Array.isArray(row) ? row : row.cells;
      body.appendChild(make('tr', Array.isArray(row) ? {} : {'class': row['class']}, cells.map(function (cell) {
        return make('td', {}, [cell]);
      })));
    });
  }

  function finish() {
    var errors = window.P2_ERRORS || [];
    var report = el('page-report');
    if (!report) {
      report = make('pre', {id: 'page-report', hidden: 'hidden'});
      document.body.appendChild(report);
    }
    report.textContent = JSON.stringify({errors: errors, shown: shown});
    document.body.setAttribute('data-ready', '1');
  }

  // Run `load` (returning a Promise) now and every `seconds`; report after the first run.
  function run(load, seconds) {
    var first = true;
    function once() {
      return Promise.resolve().then(load).catch(function (error) {
        window.P2_REPORT_ERROR(String(error && error.message || error));
      }).then(function () {
        if (first) { first = false; finish(); }
      });
    }
    once();
    if (seconds) { setInterval(once, seconds * 1000); }
  }

  return {api: api, apiOr: apiOr, siNumber: siNumber, rate: rate, duration: duration, percent: percent,
          coins: coins, el: el, show: show, record: record, make: make, clear: clear, shareLink: shareLink,
          fillTable: fillTable, finish: finish, run: run};
}());
