"""What a caller may tell a service about the RPC itself (not about its arguments)."""
from __future__ import annotations

# Header of a request whose reply queue is exclusive to the caller's connection (the
# gateway's): a broker restart takes the queue and anything in it, so the service sends
# the reply transient and without a publisher confirm (docs/decisions/0018).  Without it
# (nameko's proxies, whose reply queues are durable) the reply goes as nameko sends it:
# persistent, confirmed.
EXCLUSIVE_REPLY_QUEUE_HEADER = "crm.exclusive_reply_queue"
