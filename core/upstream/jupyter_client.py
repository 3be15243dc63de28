"""jupyter_client: a wait on a kernel's channel that pyzmq never wakes.

Written against jupyter_client 8.10.0, pyzmq 27.3.0 (libzmq 4.3.5), nbclient 0.11.0.

What it replaces, for the whole process: the public ``AsyncZMQSocketChannel.get_msg(timeout)``.
The original awaits one ``zmq.asyncio`` poll of the channel's socket for the whole ``timeout``
(forever when it is ``None``, which is what nbclient and Voila's executor use for a cell's reply).

Why: a ``zmq.asyncio`` socket learns that a message arrived from its file descriptor, which libzmq
signals once per change (edge-triggered) and which any libzmq call on the socket may consume. When
the signal is consumed and pyzmq does not look at the socket again, the message sits in the socket
and the poll waits forever. It happens to nbclient, whose Output-widget mirror sends ``comm_msg``
on the shell socket while the same socket's poll waits for the cell's ``execute_reply``
(nbclient#312, open): a Voila page with an ``Output`` widget then stopped at "Executing 2 of 3"
for good, about 1 render in 25 here, while its kernel sat idle having replied.

The patch keeps every wait but splits it into polls of at most :data:`SLICE` seconds: each new poll
asks libzmq for the socket's state, so a message whose signal was lost is read at the next slice
instead of never. A given ``timeout`` is still honoured as a whole (``queue.Empty`` once it has
passed).
"""

from __future__ import annotations

from queue import Empty
from time import monotonic

#: Longest single poll, in seconds: the most a lost wake-up delays a message.
SLICE = 0.25


def bounded_channel_waits() -> None:
    """Make every ``AsyncZMQSocketChannel.get_msg`` of this process poll in slices. Idempotent."""
    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg
    if getattr(original, "polls_in_slices", False):
        return

    async def get_msg(self, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            left = SLICE if deadline is None else max(0.0, deadline - monotonic())
            try:
                return await original(self, timeout=min(SLICE, left))
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise

    get_msg.polls_in_slices = True
    get_msg.__doc__ = original.__doc__
    AsyncZMQSocketChannel.get_msg = get_msg
