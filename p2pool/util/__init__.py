"""Small helpers every room may use (p2p, work, web, app): nothing here imports another p2pool package.

* untrusted.py  -- `shown()`: text a peer or miner supplied, made safe for one log line or page
* ratelimit.py  -- token buckets, one per key, for request limits and rate-limited log lines
* strict_json.py -- JSON that strict parsers accept (no NaN or Infinity)
"""
