"""The simulator's memos (relay frames, checksums, decoded payloads) stay bounded, the oldest entries going first."""
from p2pool.sim.caches import FifoMemo


def test_memos_forget_the_oldest_entries_beyond_their_limit():
    frames = FifoMemo(limit=2)
    frames['a'] = [b'1']
    frames['b'] = [b'2']
    frames['a'] = [b'3']       # replaced, still the oldest
    frames['c'] = [b'4']
    assert dict(frames) == {'b': [b'2'], 'c': [b'4']}
