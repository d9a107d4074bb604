"""The twisted.web resource tree of the worker port's HTTP side (web.md §1-§2).

`build_web_root(node, static_dir)` returns the root Resource: the JSON endpoints,
`/web/...`, `/static/...`, `/metrics` and `/openapi.json`. GET `/` redirects to
`/static/`. p2pool.app.main then attaches getwork to the same root
(p2pool.work.getwork.attach_getwork: POST `/` and `/long-polling`) and serves it on
the worker port (p2pool.work.switch.listen_worker_port).

Every endpoint answers GET (HEAD too); extra path segments are its arguments. A
refused request gets its HTTP code and a one-line text reason.
"""
import logging
import time
from typing import Any

from twisted.web import resource, static, util

from p2pool.util import strict_json
from p2pool.util.untrusted import escape_controls, shown
from p2pool.web import api, localstats, metrics, openapi, shareviews
from p2pool.web.api import HttpError, WebContext
from p2pool.web.patron import DEFAULT_TRUNC, PatronError, parse_coins, sendmany_json, split_total

__all__ = ['build_web_root', 'JsonEndpoint', 'json_bytes']

log = logging.getLogger(__name__)


def json_bytes(value) -> bytes:
    return strict_json.dumps(value).encode()


def _segments(request):
    """Positional arguments: the decoded path segments after the endpoint (empty ones dropped)."""
    return [segment.decode('utf-8', 'replace') for segment in request.postpath if segment]


class JsonEndpoint(resource.Resource):
    """A leaf calling fn(ctx, *args); args come from the path (between min_args and max_args)."""

    isLeaf = True

    def __init__(self, ctx, fn, min_args=0, max_args=0, content_type='application/json', encode=json_bytes) -> None:
        super().__init__()
        self.ctx, self.fn = ctx, fn
        self.min_args, self.max_args = min_args, max_args
        self.content_type, self.encode = content_type, encode

    def render_GET(self, request) -> bytes:
        request.setHeader(b'Access-Control-Allow-Origin', b'*')
        request.setHeader(b'Cache-Control', b'no-cache')
        args = _segments(request)
        try:
            if not self.min_args <= len(args) <= self.max_args:
                raise HttpError(404, 'expected %s path argument(s), got %d' % (
                    self.min_args if self.min_args == self.max_args else
                    '%d to %d' % (self.min_args, self.max_args), len(args)))
            body = self.encode(self.fn(self.ctx, *args))
        except HttpError as refusal:
            return _refuse(request, refusal.code, refusal.reason)
        except Exception:
            log.exception('web endpoint %s failed', _shown(request.path))
            return _refuse(request, 500, 'internal error while answering %s' % _shown(request.path))
        request.setHeader(b'Content-Type', self.content_type.encode())
        return body

    render_HEAD = render_GET

    def render(self, request) -> bytes:
        return _only_get(request) or super().render(request)


def _shown(name, limit=80):
    """A path segment or method for a one-line reason: decoded, control characters escaped, at
    most `limit` characters."""
    return shown(name, limit)


def _refuse(request, code, reason):
    request.setResponseCode(code)
    request.setHeader(b'Content-Type', b'text/plain; charset=utf-8')
    return (escape_controls(' '.join(str(reason).split())) + '\n').encode()


class _Refusal(resource.Resource):
    isLeaf = True

    def __init__(self, code, reason) -> None:
        super().__init__()
        self.code, self.reason = code, reason

    def render(self, request):
        return _refuse(request, self.code, self.reason)


class Directory(resource.Resource):
    """A path level whose unknown children (and itself) get a one-line 404 instead of Twisted's
    HTML pages."""

    def getChild(self, path, request) -> Any:
        if path == b'':
            return _Refusal(404, _NOTHING_HERE)
        return _Refusal(404, 'no such endpoint: %s' % _shown(path))

    def render(self, request) -> bytes:
        return _refuse(request, 404, _NOTHING_HERE)


_NOTHING_HERE = 'nothing here; see /openapi.json for the endpoints'


class Root(Directory):
    """GET / -> /static/ (getwork's POST / is answered by the worker port before this tree)."""

    def getChild(self, path, request) -> Any:
        if path == b'':
            return self
        return super().getChild(path, request)

    def render(self, request) -> bytes:
        return _only_get(request) or util.redirectTo(b'/static/', request)


class StaticFiles(static.File):
    """web-static/ (index.html for a folder, no directory listings, one-line 404s)."""

    childNotFound = _Refusal(404, 'no such file')  # type: ignore[assignment]

    def directoryListing(self) -> Any:
        return _Refusal(403, 'directory listing is off')

    def getChild(self, path, request) -> Any:
        # A NUL makes stat() raise (a 500 with a traceback) and a segment that is not UTF-8 makes
        # twisted.web log one; neither can name one of our files.
        if b'\x00' in path or b'/' in path or b'\\' in path or not _is_utf8(path):
            return self.childNotFound
        return super().getChild(path, request)

    def render(self, request) -> Any:
        return _only_get(request) or super().render(request)


def _is_utf8(raw) -> bool:
    try:
        raw.decode('utf-8')
    except UnicodeDecodeError:
        return False
    return True


def _only_get(request):
    """None for GET and HEAD; else the one-line 405 answer (instead of Twisted's HTML page)."""
    if request.method in (b'GET', b'HEAD'):
        return None
    request.setHeader(b'Allow', b'GET, HEAD')
    return _refuse(request, 405, 'only GET is answered here, not %s' % _shown(request.method))


# --- endpoints with special encodings ------------------------------------------------------

def patron_sendmany(ctx, total=None, trunc=DEFAULT_TRUNC) -> str:
    if total is None:
        return 'need total argument. go to patron_sendmany/<TOTAL>'
    try:
        total_satoshis = parse_coins(total, 'TOTAL')
        trunc_satoshis = parse_coins(trunc, 'TRUNC')
        return sendmany_json(split_total(ctx.expected_payouts(), total_satoshis, trunc_satoshis))
    except PatronError as error:
        raise HttpError(400, str(error)) from None


def payouts(ctx) -> list[Any]:
    """/web/payouts: the facade's payout history (empty without one)."""
    history = getattr(ctx.node, 'payout_history', None)
    return list(history()) if history is not None else []


def _text(value):
    return value.encode() if isinstance(value, str) else value


def _graph_data(ctx, source, view):
    return shareviews.graph_data(ctx, source, view)


def build_web_root(node, static_dir, service=None, clock=None) -> Any:
    """The root Resource for `node` (the facade of p2pool.web.api).

    service: the node's p2pool.web.service.WebService (graph history, stat log);
    without it the graph endpoints answer 404 and /web/log is empty.
    clock: time source (default: the service's, else time.time).
    """
    if clock is None:
        clock = service.clock if service is not None else time.time
    ctx = service.context if service is not None and clock is service.clock else WebContext(node, service, clock)
    # Twisted's resources implement IResource through zope.interface, which mypy does not see
    root: Any = Root()
    fn: Any
    for name, fn in api.ROOT_ENDPOINTS.items():
        root.putChild(name.encode(), JsonEndpoint(ctx, fn))
    root.putChild(b'global_stats', JsonEndpoint(ctx, localstats.global_stats))
    root.putChild(b'local_stats', JsonEndpoint(ctx, localstats.local_stats))
    root.putChild(b'patron_sendmany', JsonEndpoint(ctx, patron_sendmany, 0, 2, 'text/plain', _text))
    root.putChild(b'metrics', JsonEndpoint(ctx, metrics.render, content_type=metrics.CONTENT_TYPE,
                                           encode=_text))
    root.putChild(b'openapi.json', JsonEndpoint(ctx, lambda _ctx: openapi.description()))

    web: Any = Directory()
    root.putChild(b'web', web)
    for name, fn in shareviews.WEB_ENDPOINTS.items():
        web.putChild(name.encode(), JsonEndpoint(ctx, fn))
    for name, fn in shareviews.WEB_HASH_ENDPOINTS.items():
        web.putChild(name.encode(), JsonEndpoint(ctx, fn, 1, 1))
    web.putChild(b'share_data', JsonEndpoint(ctx, shareviews.share_data, 1, 1, 'application/octet-stream',
                                             encode=lambda data: data))
    web.putChild(b'graph_data', JsonEndpoint(ctx, _graph_data, 2, 2))
    web.putChild(b'warnings', JsonEndpoint(ctx, lambda c: localstats.warnings(c)))
    web.putChild(b'payouts', JsonEndpoint(ctx, payouts))
    web.putChild(b'bitcoinds', JsonEndpoint(ctx, lambda c: getattr(c.node, 'bitcoind_daemons', lambda: [])()))

    if static_dir is not None:
        root.putChild(b'static', StaticFiles(static_dir))
    root.context = ctx
    return root
