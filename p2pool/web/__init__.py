"""The node's web interface: the original JSON API, graphs history, /metrics, the dashboard.

    service = WebService(node)              # p2pool.web.service: history + stat log
    service.start(reactor)
    root = build_web_root(node, static_dir, service=service)   # a twisted.web Resource

`node` is the facade documented at the top of p2pool.web.api. This package never
imports p2pool.p2p or p2pool.work.
"""
from p2pool.web.server import build_web_root
from p2pool.web.service import WebService

__all__ = ['build_web_root', 'WebService']
