"""Job queues: SQLite embedded (default) and Redis with BullMQ's protocol (extra ``redis``).

```python
from agentcron.queue import open_queue, Backoff
q = open_queue("sqlite:///data/scheduler.db", "emails")
job_id = await q.add("send", {"to": "a@b"}, attempts=3, backoff=Backoff("exponential", 1.0))
w = q.worker(handler, concurrency=10, rate_limit=(100, 1.0))
await w.run(burst=True)
```
"""

from __future__ import annotations

from agentcron.queue.base import (
    MAX_PRIORITY,
    Backoff,
    BulkJob,
    Job,
    JobInfo,
    Queue,
    QueueConnectionError,
    QueueError,
    QueueInputError,
    open_queue,
)
from agentcron.queue.dispatch import dispatch_to_queue
from agentcron.queue.worker import JobTimeoutError, UnrecoverableError, Worker

__all__ = [
    "MAX_PRIORITY",
    "Backoff",
    "BulkJob",
    "Job",
    "JobInfo",
    "JobTimeoutError",
    "Queue",
    "QueueConnectionError",
    "QueueError",
    "QueueInputError",
    "UnrecoverableError",
    "Worker",
    "dispatch_to_queue",
    "open_queue",
]
