/* The graphs page: one chart per history source of /web/graph_sources, for the view
 * chosen in the URL fragment (#last_hour, #last_day, ...). */
'use strict';

(function () {
  var SOURCES = {
    local_hash_rate: ['Local hash rate', 'H/s'],
    local_dead_hash_rate: ['Local dead-on-arrival hash rate', 'H/s'],
    local_share_hash_rates: ['Local shares (good, dead, orphan) as hash rate', 'H/s'],
    pool_rates: ['Pool hash rate and its stale parts', 'H/s'],
    current_payout: ['Expected payout of this node', 'coins'],
    current_payouts: ['Expected payouts of the local miners', 'coins'],
    peers: ['Peers', ''],
    miner_hash_rates: ['Hash rate per miner', 'H/s'],
    miner_dead_hash_rates: ['Dead hash rate per miner', 'H/s'],
    desired_version_rates: ['Share version votes (as hash rate)', 'H/s'],
    traffic_rate: ['P2P traffic', 'B/s'],
    getwork_latency: ['getblocktemplate latency', 's'],
    memory_usage: ['Memory (resident)', 'B']
  };
  var VIEW_NAMES = {last_hour: 'hour', last_day: 'day', last_week: 'week', last_month: 'month', last_year: 'year'};
  var MAX_SERIES = 12;
  // The pool chart and the local shares chart show the same three kinds: same order, names and colours
  // (the pool's stale_info 'doa' is the local 'dead').
  var SHARE_KINDS = {good: ['good', 0], orphan: ['orphan', 3], doa: ['dead', 1], dead: ['dead', 1]};
  var KIND_SOURCES = {pool_rates: true, local_share_hash_rates: true};
  var symbol = '';

  function formatter(unit) {
    if (unit === 'coins') { return function (v) { return v.toPrecision(4) + ' ' + symbol; }; }
    if (unit === '') { return function (v) { return String(Math.round(v * 100) / 100); }; }
    return function (v) { return P2.siNumber(v, 2) + unit; };
  }

  // Bins (newest first) -> [{name, points}] oldest first; missing keys take the bin's default.
  function toSeries(bins, multi) {
    bins = bins.slice().reverse();
    if (!multi) {
      return [{name: 'value', points: bins.map(function (bin) { return [bin[0], bin[1]]; })}];
    }
    var totals = {};
    bins.forEach(function (bin) {
      Object.keys(bin[1] || {}).forEach(function (key) {
        totals[key] = (totals[key] || 0) + Math.abs(bin[1][key] || 0);
      });
    });
    var keys = Object.keys(totals).sort(function (a, b) { return totals[b] - totals[a]; }).slice(0, MAX_SERIES);
    return keys.map(function (key) {
      return {name: key, points: bins.map(function (bin) {
        if (bin[1] === null) { return [bin[0], null]; }
        var value = bin[1][key];
        return [bin[0], value === undefined ? bin[3] : value];
      })};
    });
  }

  // The value of the newest complete bin that has data (the newest bin is still filling up).
  function newestValue(bins) {
    var fullWidth = bins.length ? Math.max.apply(null, bins.map(function (bin) { return bin[2]; })) : 0;
    for (var i = 0; i < bins.length; i += 1) {
      var value = bins[i][1];
      var empty = value === null || (typeof value === 'object' && Object.keys(value).length === 0);
      if (!empty && bins[i][2] >= fullWidth * 0.999) { return value; }
    }
    return null;
  }

  function chartSection(source) {
    var info = SOURCES[source] || [source, ''];
    var section = P2.make('section', {'class': 'card chart', id: 'chart-' + source}, [
      P2.make('h2', {}, [info[0] + ' ', P2.make('small', {text: source})]),
      P2.make('canvas', {width: '900', height: '220'}),
      P2.make('div', {'class': 'legend'}),
      P2.make('div', {'class': 'latest'}, ['newest: ', P2.make('span', {id: 'latest-' + source, text: '?'})])
    ]);
    P2.el('charts').appendChild(section);
    return section;
  }

  // good, orphan, dead in this order with fixed colours; a kind without data still gets its legend key
  function kindSeries(series) {
    var byName = {};
    series.forEach(function (one) {
      var kind = SHARE_KINDS[one.name];
      if (kind) { byName[kind[0]] = one; }
    });
    var points = series.length ? series[0].points.map(function (point) { return [point[0], null]; }) : [];
    return ['good', 'orphan', 'doa'].map(function (key) {
      var kind = SHARE_KINDS[key];
      var one = byName[kind[0]] || {points: points};
      return {name: kind[0], points: one.points, color: P2Chart.PALETTE[kind[1]]};
    });
  }

  var drawn = {};

  function drawSource(source, multi, bins) {
    drawn[source] = [multi, bins];
    var section = P2.el('chart-' + source) || chartSection(source);
    var unit = (SOURCES[source] || [source, ''])[1];
    var format = formatter(unit);
    var series = toSeries(bins, multi);
    if (KIND_SOURCES[source]) {
      series = kindSeries(series);
    } else {
      series.forEach(function (one, index) { one.color = P2Chart.PALETTE[index % P2Chart.PALETTE.length]; });
    }
    var start = bins.length ? bins[bins.length - 1][0] - bins[bins.length - 1][2] / 2 : 0;
    var end = bins.length ? bins[0][0] + bins[0][2] / 2 : 1;
    P2Chart.draw(section.querySelector('canvas'), series, {start: start, end: end, format: format});
    var legend = P2.clear(section.querySelector('.legend'));
    if (multi) {
      series.forEach(function (one) {
        legend.appendChild(P2.make('span', {'class': 'key'}, [
          P2.make('i', {style: 'background:' + one.color}), one.name]));
      });
    }
    var newest = newestValue(bins);
    var text = newest === null ? 'no data' : (typeof newest === 'object'
      ? Object.keys(newest).sort().map(function (key) { return key + ': ' + format(newest[key]); }).join(', ')
      : format(newest));
    P2.show('latest-' + source, newest, text);
    P2.record('bins-' + source, bins.length);
    P2.record('series-' + source, series.map(function (one) {
      return [one.name, one.points.filter(function (point) { return point[1] !== null && point[1] !== 0; }).length];
    }));
  }

  function currentView() {
    var view = window.location.hash.replace('#', '');
    return VIEW_NAMES[view] ? view : 'last_hour';
  }

  function showViewLinks(view) {
    var holder = P2.clear(P2.el('views'));
    Object.keys(VIEW_NAMES).forEach(function (name) {
      holder.appendChild(P2.make('a', {href: '#' + name, 'class': name === view ? 'current' : '',
                                       text: VIEW_NAMES[name]}));
      holder.appendChild(document.createTextNode(' '));
    });
    P2.show('view-name', view, 'the last ' + VIEW_NAMES[view]);
  }

  function load() {
    var view = currentView();
    showViewLinks(view);
    return Promise.all([P2.api('web/graph_sources'), P2.api('web/currency_info')]).then(function (r) {
      symbol = r[1].symbol;
      var sources = Object.keys(r[0].sources);
      P2.record('sources', sources);
      // all sections first, in a fixed order, so the grid has its final layout before drawing
      sources.forEach(function (source) { if (!P2.el('chart-' + source)) { chartSection(source); } });
      return Promise.all(sources.map(function (source) {
        return P2.api('web/graph_data/' + source + '/' + view).then(function (bins) {
          drawSource(source, r[0].sources[source].multi, bins);
        });
      }));
    });
  }

  window.addEventListener('resize', function () {
    Object.keys(drawn).forEach(function (source) { drawSource(source, drawn[source][0], drawn[source][1]); });
  });
  window.addEventListener('hashchange', function () {
    load().catch(function (error) { window.P2_REPORT_ERROR(String(error.message || error)); });
  });
  P2.run(load, 60);
}());
