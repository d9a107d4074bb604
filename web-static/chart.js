/* A small line chart on <canvas>: time on x, one or more series on y, gaps for nulls.
 *
 * P2Chart.draw(canvas, series, options)
 *   series:  [{name, color, points: [[unix time, value or null], ...]}]
 *   options: {unit: 'H/s', start: unix time, end: unix time, format: fn(value) -> text}
 */
'use strict';

var P2Chart = (function () {
  var PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                 '#bcbd22', '#17becf', '#393b79', '#637939', '#8c6d31', '#843c39', '#7b4173', '#3182bd',
                 '#e6550d', '#31a354', '#756bb1', '#636363'];
  var MARGIN = {left: 78, right: 12, top: 10, bottom: 26};

  function niceStep(range, ticks) {
    var rough = range / ticks;
    var power = Math.pow(10, Math.floor(Math.log10(rough)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i += 1) {
      if (steps[i] * power >= rough) { return steps[i] * power; }
    }
    return 10 * power;
  }

  function timeLabel(t, span) {
    var date = new Date(t * 1000);
    var pad = function (n) { return (n < 10 ? '0' : '') + n; };
    var clock = pad(date.getHours()) + ':' + pad(date.getMinutes());
    if (span <= 2 * 86400) { return clock; }
    var day = date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate());
    return span <= 8 * 86400 ? day.slice(5) + ' ' + clock : day;
  }

  function valueRange(series) {
    var low = Infinity;
    var high = -Infinity;
    series.forEach(function (one) {
      one.points.forEach(function (point) {
        if (point[1] !== null && isFinite(point[1])) {
          low = Math.min(low, point[1]);
          high = Math.max(high, point[1]);
        }
      });
    });
    if (low === Infinity) { return null; }
    low = Math.min(0, low);
    if (high <= low) { high = low + 1; }
    return [low, high];
  }

  function draw(canvas, series, options) {
    var ratio = window.devicePixelRatio || 1;
    var cssWidth = canvas.clientWidth || 800;
    var cssHeight = canvas.clientHeight || 220;
    canvas.width = Math.round(cssWidth * ratio);
    canvas.height = Math.round(cssHeight * ratio);
    var ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, cssWidth, cssHeight);
    ctx.font = '11px system-ui, sans-serif';
    var plotWidth = cssWidth - MARGIN.left - MARGIN.right;
    var plotHeight = cssHeight - MARGIN.top - MARGIN.bottom;
    var start = options.start;
    var end = options.end;
    var format = options.format || function (value) { return String(value); };
    var x = function (t) { return MARGIN.left + (t - start) / (end - start) * plotWidth; };

    ctx.strokeStyle = '#c9ced6';
    ctx.strokeRect(MARGIN.left + 0.5, MARGIN.top + 0.5, plotWidth, plotHeight);
    var range = valueRange(series);
    ctx.fillStyle = '#5b6470';
    ctx.textBaseline = 'top';
    var timeStep = (end - start) / 5;
    for (var i = 0; i <= 5; i += 1) {
      var t = start + i * timeStep;
      ctx.textAlign = i === 0 ? 'left' : (i === 5 ? 'right' : 'center');
      ctx.fillText(timeLabel(t, end - start), x(t), MARGIN.top + plotHeight + 6);
    }
    if (range === null) {
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText('no data yet', MARGIN.left + plotWidth / 2, MARGIN.top + plotHeight / 2);
      return;
    }
    var y = function (value) { return MARGIN.top + plotHeight - (value - range[0]) / (range[1] - range[0]) * plotHeight; };
    var step = niceStep(range[1] - range[0], 4);
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (var tick = Math.ceil(range[0] / step) * step; tick <= range[1] + step / 1e6; tick += step) {
      ctx.strokeStyle = '#eef0f3';
      ctx.beginPath();
      ctx.moveTo(MARGIN.left + 1, Math.round(y(tick)) + 0.5);
      ctx.lineTo(MARGIN.left + plotWidth, Math.round(y(tick)) + 0.5);
      ctx.stroke();
      ctx.fillText(format(tick), MARGIN.left - 6, y(tick));
    }
    ctx.save();
    ctx.beginPath();
    ctx.rect(MARGIN.left, MARGIN.top, plotWidth, plotHeight);
    ctx.clip();
    series.forEach(function (one) {
      ctx.strokeStyle = one.color;
      ctx.lineWidth = 1.6;
      ctx.beginPath();
      var drawing = false;
      one.points.forEach(function (point) {
        if (point[1] === null || !isFinite(point[1])) { drawing = false; return; }
        if (drawing) { ctx.lineTo(x(point[0]), y(point[1])); } else { ctx.moveTo(x(point[0]), y(point[1])); }
        drawing = true;
      });
      ctx.stroke();
      // a value between two gaps would be an invisible zero-length line: mark it with a dot
      ctx.fillStyle = one.color;
      one.points.forEach(function (point, index) {
        var known = function (p) { return p && p[1] !== null && isFinite(p[1]); };
        if (known(point) && !known(one.points[index - 1]) && !known(one.points[index + 1])) {
          ctx.beginPath();
          ctx.arc(x(point[0]), y(point[1]), 2, 0, 2 * Math.PI);
          ctx.fill();
        }
      });
    });
    ctx.restore();
  }

  return {draw: draw, PALETTE: PALETTE};
}());
