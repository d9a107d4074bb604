/* Loaded first by every page: collects JavaScript errors from the start and shows them
 * in a banner (<div id="errors">), so an operator sees when the dashboard broke. The
 * list is also written into the page report (common.js, P2.finish) for tests. */
'use strict';

window.P2_ERRORS = [];

window.P2_REPORT_ERROR = function (message) {
  window.P2_ERRORS.push(message);
  var show = function () {
    var banner = document.getElementById('errors');
    if (!banner) { return; }
    banner.hidden = false;
    var line = document.createElement('div');
    line.textContent = message;
    banner.appendChild(line);
  };
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', show);
  } else {
    show();
  }
};

window.addEventListener('error', function (event) {
  var where = event.filename ? ' (' + event.filename.split('/').pop() + ':' + event.lineno + ')' : '';
  window.P2_REPORT_ERROR((event.message || 'error loading ' + (event.target && event.target.src)) + where);
}, true);

window.addEventListener('unhandledrejection', function (event) {
  var reason = event.reason;
  window.P2_REPORT_ERROR('unhandled rejection: ' + (reason && reason.message ? reason.message : String(reason)));
});

(function () {
  var original = console.error;
  console.error = function () {
    window.P2_REPORT_ERROR('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return original.apply(console, arguments);
  };
}());
