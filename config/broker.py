"""The embedded Celery broker: kombu's filesystem transport, with messages written atomically.

kombu's own `_put` creates the message file and then writes it, while a worker's `_get` moves
away any file whose name matches, so a worker polling at the wrong moment reads an empty file
and stops with "Unrecoverable error: JSONDecodeError". Here a message is written under a name
the worker ignores and renamed into place (`os.replace`, atomic on one filesystem).
"""
from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        # Starts with "tmp-" and has no ".<queue>.msg" ending: `_get` never matches it.
        partial = os.path.join(self.data_folder_out, f"tmp-{uuid.uuid4().hex}")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            try:
                os.remove(partial)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
