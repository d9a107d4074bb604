"""The jobs of one Stratum connection: what its miner may still submit on.

A connection keeps its jobs in a plain dict, job id -> Job, in the order they were issued.
A new-work event gives 10,000 connections a job each, so issuing one must cost next to
nothing: the Job of a (work, target) is one object shared by every connection that gets
it, and nothing older is rewritten. In particular when a job was replaced (`superseded`,
the start of its stale grace) is not stored but read off the order: it is the issue time
of the job after it on the same connection. Only a job handed over from another process
carries it (Job.superseded), as the jobs between may not have come along.

Job ids are unique per connection, not per node: a new-work event draws one number and
every connection's job of that event has it as its id (so that the notify bytes of a
username and target are the same for all its connections, built once); a single job
(a vardiff step, a first job) draws a number of its own. A miner's submission is looked
up among its own connection's jobs only, so it never reaches another connection's job
(and its target), whatever the id.

Old jobs go: beyond MAX_JOBS at once, the oldest first; over JOB_LIFETIME seconds when
`prune` runs (a submission on such a job is refused anyway).
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterator
from typing import Any

JOB_LIFETIME = 300.0
MAX_JOBS = 500

#: seconds after a newer job replaced a job during which a valid pseudoshare of the older job is
#: still answered `true` (counted as dead work): where new work comes many times a second (on a
#: regtest chain every share is a block, and every block is new work) a fast miner's submissions
#: are always a job behind, and refusing them all would refuse nearly everything it does
STALE_GRACE_SECONDS = 10.0

# superseded: None but for handed-over jobs, see the module docstring
Job = namedtuple('Job', 'record base target issued superseded', defaults=(None,))

Jobs = dict[str, Any]


def superseded(jobs: Jobs, job_id: str, job: Any) -> float | None:
    """When a newer job replaced `job` (id `job_id`) on its connection; None while it is the newest.

    Walks back from the newest job: submissions are nearly always on one of the last few."""
    if job.superseded is not None:
        return float(job.superseded)
    later = None
    for key, entry in reversed(jobs.items()):
        if key == job_id:
            return later
        later = entry.issued
    return None


def with_superseded(jobs: Jobs) -> Iterator[tuple[str, Any, float | None]]:
    """(job id, job, superseded) of every job, oldest first, in one pass."""
    items = list(jobs.items())
    for index, (key, job) in enumerate(items):
        if job.superseded is not None:
            yield key, job, job.superseded
        else:
            yield key, job, items[index + 1][1].issued if index + 1 < len(items) else None


def trim(jobs: Jobs) -> None:
    """Keep the newest MAX_JOBS."""
    while len(jobs) > MAX_JOBS:
        del jobs[next(iter(jobs))]


def prune(jobs: Jobs, now: float) -> None:
    """Drop what is beyond MAX_JOBS and what is over JOB_LIFETIME seconds old."""
    trim(jobs)
    expired = []
    for key, job in jobs.items():
        if now - job.issued <= JOB_LIFETIME:
            break
        expired.append(key)
    for key in expired:
        del jobs[key]
