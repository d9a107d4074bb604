"""The parent chain: serialization, hashes, scripts, addresses, RPC and P2P clients.

Nothing in this package knows about shares.
"""
