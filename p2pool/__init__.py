"""p2pool: a decentralized mining pool node speaking the P2Pool protocol (3501)."""

__version__ = '0.1.0'
